"""Profile trigraph on one workload of the suite.

    python benchmarks/profile_trigraph.py WORKLOAD [--repeat N] [--tool cprofile|pyinstrument]
        [--sort tottime|cumtime] [--limit 30] [--out FILE]

Runs the workload's sample function (from ``bench_trigraph``) once to warm
up, then *N* times under the profiler, and prints the hot spots. cProfile
gives exact call counts and own time per function (its overhead inflates
tiny functions, so read shares, not absolute times); pyinstrument (``pip
install pyinstrument``) samples the call stacks and shows where the wall
time goes, including time spent inside Trio's scheduler.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_trigraph
from _common import Sampler


class _Capture(Sampler):
    """A sampler that hands the sample function back instead of timing it."""

    def __init__(self) -> None:
        super().__init__(0, 0)
        self.fn: Any = None
        self.profile: Any = None
        self.repeat = 1

    async def run(self, sample: Any) -> None:
        await sample()  # warm-up
        self.profile.enable()
        for _ in range(self.repeat):
            await sample()
        self.profile.disable()


class _CProfile:
    def __init__(self) -> None:
        self.prof = cProfile.Profile()

    def enable(self) -> None:
        self.prof.enable()

    def disable(self) -> None:
        self.prof.disable()


class _Pyinstrument:
    def __init__(self, interval: float) -> None:
        from pyinstrument import Profiler

        self.prof = Profiler(interval=interval, async_mode="disabled")

    def enable(self) -> None:
        self.prof.start()

    def disable(self) -> None:
        self.prof.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(bench_trigraph.WORKLOADS))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--tool", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--limit", type=int, default=35)
    parser.add_argument("--interval", type=float, default=0.0001)
    parser.add_argument("--out", help="write the report here instead of stdout")
    args = parser.parse_args()

    cap = _Capture()
    cap.repeat = args.repeat
    cap.profile = _CProfile() if args.tool == "cprofile" else _Pyinstrument(args.interval)
    t0 = time.perf_counter()
    bench_trigraph.RUN(bench_trigraph.WORKLOADS[args.workload], cap)
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    buf.write(f"# {args.workload} x{args.repeat} under {args.tool}: {wall:.2f} s wall "
              f"(load {os.getloadavg()[0]:.2f})\n")
    if args.tool == "cprofile":
        stats = pstats.Stats(cap.profile.prof, stream=buf)
        stats.sort_stats(args.sort).print_stats(args.limit)
    else:
        buf.write(cap.profile.prof.output_text(unicode=True, color=False, show_all=False))
    text = buf.getvalue()
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

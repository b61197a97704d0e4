"""Shared plumbing of the benchmark children: sizes, the sampler, the JSON report.

Every engine module (``bench_trigraph``, ``bench_langgraph``, ``bench_trio``)
defines ``WORKLOADS``: name -> ``async def workload(sampler)``. A workload
builds its graph (untimed), then hands one async *sample* function to
``await sampler.run(sample)``; the sampler runs the warm-up, then the timed
samples, each after a ``gc.collect()``. A sample returns ``None`` (the sampler
times it) or a dict of its own figures; a ``"time"`` entry there replaces the
wall time (used where the interesting interval is inside the sample, e.g.
from a cancel to control coming back).

Nothing here imports trio, asyncio-based libraries or trigraph, so that an
engine's child process pays only for its own imports.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CHAIN_LEN = 100
"""Workloads 1 and 5: nodes in the linear chain."""
FANOUT_SMALL = 1_000
FANOUT_LARGE = 10_000
"""Workload 2 (and 7): Send tasks in the one fan-out step."""
LOOP_STEPS = 100
LOOP_KEYS = 100
"""Workloads 3 and 6: supersteps, and int keys in the state."""
CUSTOM_CHUNKS = 100_000
"""Workload 4: custom chunks one node emits."""
CANCEL_TASKS = 10_000
"""Workload 8: tasks blocked in the step that gets cancelled."""
CHANNEL_BUFFER = 64
"""The bare-Trio channel of workload 4 (trigraph's default stream buffer too)."""

KEYS = [f"k{i}" for i in range(LOOP_KEYS)]
REPO = Path(__file__).resolve().parent.parent


def use_checkout() -> None:
    """Import trigraph from this checkout's ``src/`` whatever is installed."""
    src = str(REPO / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


def maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Sample = Callable[[], Awaitable[dict[str, float] | None]]


class Sampler:
    """Runs one workload's samples and keeps what they measured."""

    def __init__(self, samples: int, warmup: int, memory: bool = False) -> None:
        self.samples = samples
        self.warmup = warmup
        self.memory = memory
        self.times: list[float] = []
        self.extra: dict[str, list[float]] = {}
        self.rss_before: float | None = None
        self.rss_after: float | None = None

    async def run(self, sample: Sample) -> None:
        if self.memory:
            # Workload 7: the import's (and graph's) own peak, then one run.
            gc.collect()
            self.rss_before = maxrss_mb()
            t0 = time.perf_counter()
            got = await sample()
            self._keep(time.perf_counter() - t0, got)
            self.rss_after = maxrss_mb()
            return
        for _ in range(self.warmup):
            await sample()
        for _ in range(self.samples):
            gc.collect()
            t0 = time.perf_counter()
            got = await sample()
            self._keep(time.perf_counter() - t0, got)

    def _keep(self, wall: float, got: dict[str, float] | None) -> None:
        got = dict(got or {})
        self.times.append(got.pop("time", wall))
        for key, value in got.items():
            self.extra.setdefault(key, []).append(value)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "times": self.times,
            "median": median(self.times),
            "extra": {k: median(v) for k, v in self.extra.items()},
            "maxrss_mb": maxrss_mb(),
        }
        if self.memory:
            out["rss_before_mb"] = self.rss_before
            out["rss_after_mb"] = self.rss_after
        return out


def median(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def load1() -> float:
    return os.getloadavg()[0]

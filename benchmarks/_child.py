"""One engine, one workload, in this (fresh) process; prints one JSON line.

    python benchmarks/_child.py ENGINE WORKLOAD [--samples N] [--warmup K] [--memory]

ENGINE is ``trigraph``, ``langgraph`` or ``trio``. Exit status 3 (with a
JSON ``{"unavailable": ...}`` line) when the engine cannot be imported or has
no such workload; ``run.py`` shows "n/a" or "—" for those.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Sampler, load1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=("trigraph", "langgraph", "trio"))
    parser.add_argument("workload")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    load = load1()
    try:
        module = importlib.import_module(f"bench_{args.engine}")
    except ImportError as exc:
        print(json.dumps({"unavailable": f"cannot import: {exc}"}))
        return 3
    workload = module.WORKLOADS.get(args.workload)
    if workload is None:
        print(json.dumps({"unavailable": "no such workload for this engine"}))
        return 3
    sampler = Sampler(args.samples, args.warmup, memory=args.memory)
    module.RUN(functools.partial(workload, sampler))
    report = sampler.report()
    report["load1"] = load
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""trigraph vs LangGraph vs bare Trio: the whole suite in one command.

    python benchmarks/run.py            # full run, a few minutes
    python benchmarks/run.py --quick    # fewer repetitions, about a minute
    python benchmarks/run.py --only chain,cancel --json out.json

Every (engine, workload) pair runs in a fresh child process
(``benchmarks/_child.py``): warm-up runs first, then the timed samples; each
figure in the table is their median. LangGraph runs under ``asyncio`` (its
native loop), trigraph and the bare-Trio baselines under ``trio``. When
LangGraph cannot be imported by the child interpreter its columns read
"n/a" and its targets are judged against the reference figures of issue #9
(marked "ref").

Run it with the interpreter of the benchmark venv (see README.md), or pass
``--python`` to choose the interpreter of the children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CUSTOM_CHUNKS, median  # noqa: E402

ENGINES = ("trigraph", "langgraph", "trio")

# workload -> (samples, warm-up runs); LangGraph's slow workloads get fewer.
PLAN: dict[str, tuple[int, int]] = {
    "chain": (30, 5),
    "fanout_1k": (15, 3),
    "fanout_10k": (7, 1),
    "loop": (20, 3),
    "custom": (5, 1),
    "updates": (30, 5),
    "sqlite": (10, 2),
    "cancel": (9, 1),
}
LANGGRAPH_SAMPLES = {"fanout_1k": 7, "fanout_10k": 3, "sqlite": 7, "cancel": 3}
MEMORY_PROCESSES = 3
QUICK_SAMPLES = 3

# Issue #9's LangGraph figures, used for the targets when LangGraph is absent.
REFERENCE = {
    "chain": 0.019,
    "fanout_1k": 0.233,
    "fanout_10k": 5.1,
    "loop": 0.052,
    "custom": 0.786,
    "first_event": 0.730,
    "updates": 0.022,
    "sqlite": 0.233,
    "memory": 138.0,
    "cancel": 2.7,
}


@dataclass
class Result:
    """One engine's figures for one workload (``None``: not available)."""

    time: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    maxrss: float | None = None
    load: float | None = None
    note: str = ""
    raw: list[dict[str, Any]] = field(default_factory=list)


def child(python: str, engine: str, workload: str, samples: int, warmup: int,
          memory: bool = False) -> dict[str, Any]:
    cmd = [python, str(HERE / "_child.py"), engine, workload,
           "--samples", str(samples), "--warmup", str(warmup)]
    if memory:
        cmd.append("--memory")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"unavailable": f"failed: {tail}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def measure(python: str, engine: str, workload: str, quick: bool,
            samples_override: int | None = None) -> Result:
    if workload == "memory":
        return measure_memory(python, engine, quick)
    samples, warmup = PLAN[workload]
    if engine == "langgraph":
        samples = min(samples, LANGGRAPH_SAMPLES.get(workload, samples))
    if quick:
        samples, warmup = min(samples, QUICK_SAMPLES), 1
    if samples_override is not None:
        samples = samples_override
    got = child(python, engine, workload, samples, warmup)
    if "unavailable" in got:
        return Result(note=got["unavailable"], raw=[got])
    return Result(got["median"], got["extra"], got["maxrss_mb"], got["load1"], raw=[got])


def measure_memory(python: str, engine: str, quick: bool) -> Result:
    runs = []
    for _ in range(1 if quick else MEMORY_PROCESSES):
        got = child(python, engine, "memory", 1, 0, memory=True)
        if "unavailable" in got:
            return Result(note=got["unavailable"], raw=[got])
        runs.append(got)
    growth = median([r["rss_after_mb"] - r["rss_before_mb"] for r in runs])
    base = median([r["rss_before_mb"] for r in runs])
    return Result(growth, {"import_mb": base}, max(r["maxrss_mb"] for r in runs),
                  runs[0]["load1"], raw=runs)


# -- formatting -----------------------------------------------------------


def fmt_time(t: float | None) -> str:
    if t is None:
        return "n/a"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def fmt_mb(m: float | None) -> str:
    return "n/a" if m is None else f"+{m:.1f} MB"


def fmt_rate(r: float | None) -> str:
    return "n/a" if r is None else f"{r / 1e3:.0f} k/s"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


@dataclass
class Row:
    label: str
    tg: float | None
    lg: float | None
    trio: float | None
    fmt: Callable[[float | None], str]
    target: str
    check: Callable[[float | None, float | None, float | None], bool | None]
    rss: str = ""
    load: str = ""
    lg_is_ref: bool = False


def _ok(*conds: bool | None) -> bool | None:
    if any(c is None for c in conds):
        return None
    return all(conds)


def _le(a: float | None, b: float | None, factor: float = 1.0) -> bool | None:
    if a is None or b is None:
        return None
    return a <= b * factor


def build_rows(res: dict[str, dict[str, Result]]) -> list[Row]:
    rows: list[Row] = []

    def get(workload: str, engine: str, key: str | None = None) -> float | None:
        r = res.get(workload, {}).get(engine)
        if r is None:
            return None
        return r.time if key is None else r.extra.get(key)

    def lg_or_ref(workload: str, key: str | None = None) -> tuple[float | None, bool]:
        v = get(workload, "langgraph", key)
        if v is None:
            ref = REFERENCE.get(key or workload)
            return ref, ref is not None
        return v, False

    def rss(workload: str) -> str:
        cells = []
        for engine in ENGINES:
            r = res.get(workload, {}).get(engine)
            cells.append("—" if r is None or r.maxrss is None else f"{r.maxrss:.0f}")
        return " / ".join(cells)

    def load(workload: str) -> str:
        loads = [r.load for r in res.get(workload, {}).values() if r.load is not None]
        return f"{max(loads):.2f}" if loads else ""

    def add(label: str, workload: str, fmt: Callable[[float | None], str], target: str,
            check: Callable[[float | None, float | None, float | None], bool | None],
            key: str | None = None, trio_key: str | None = None) -> None:
        if workload not in res:
            return
        lg, is_ref = lg_or_ref(workload, key)
        rows.append(Row(label, get(workload, "trigraph", key), lg,
                        get(workload, "trio", trio_key or key), fmt, target, check,
                        rss(workload), load(workload), is_ref))

    # Targets: issue #9, raised by issue #13 for (1), (4), (5), (6) and (8).
    add("(1) chain of 100 async nodes, ainvoke", "chain", fmt_time,
        "≥20x LG, ≤3x Trio",
        lambda t, lg, tr: _ok(_le(t * 20 if t else None, lg), _le(t, tr, 3)))
    add("(2) fan-out 1,000 Send", "fanout_1k", fmt_time, "≤5x Trio",
        lambda t, lg, tr: _le(t, tr, 5))
    add("(2) fan-out 10,000 Send", "fanout_10k", fmt_time, "≥25x LG, ≤5x Trio",
        lambda t, lg, tr: _ok(_le(t * 25 if t else None, lg), _le(t, tr, 5)))
    if "fanout_1k" in res and "fanout_10k" in res:
        def scale(engine: str) -> float | None:
            return ratio(get("fanout_10k", engine), get("fanout_1k", engine))
        lg_scale = scale("langgraph")
        rows.append(Row("(2) scaling: time(10k) / time(1k)", scale("trigraph"), lg_scale,
                        scale("trio"), lambda v: "n/a" if v is None else f"{v:.1f}",
                        "≤12 (linear ±20%)", lambda t, lg, tr: _le(t, 12.0)))
    add("(3) loop: 100 steps, 100 int keys", "loop", fmt_time, "≥10x LG",
        lambda t, lg, tr: _le(t * 10 if t else None, lg))
    add("(4) custom stream, 100,000 chunks", "custom", fmt_time,
        "≥1.3x LG's throughput",
        lambda t, lg, tr: _le(t * 1.3 if t else None, lg))
    add("(4) events/s in the consumer", "custom", fmt_rate, "(info)",
        lambda t, lg, tr: None, key="events_per_s")
    add("(4) time to first event", "custom", fmt_time, "≤1 ms",
        lambda t, lg, tr: _le(t, 1e-3), key="first_event")
    add("(5) 'updates' stream of the chain", "updates", fmt_time, "≥15x LG",
        lambda t, lg, tr: _le(t * 15 if t else None, lg))
    add("(6) loop (3) checkpointed to SQLite", "sqlite", fmt_time, "≥15x LG",
        lambda t, lg, tr: _le(t * 15 if t else None, lg))
    add("(7) peak RSS growth, fan-out 10,000", "memory", fmt_mb, "≤¼ of LG",
        lambda t, lg, tr: _le(t, lg, 0.25))
    add("(8) cancel 10,000 blocked tasks", "cancel", fmt_time, "≥8x LG, ≤1.3x Trio",
        lambda t, lg, tr: _ok(_le(t * 8 if t else None, lg), _le(t, tr, 1.3)))
    return rows


def render(rows: list[Row]) -> str:
    head = ["workload", "trigraph", "LangGraph", "LG / tg", "bare Trio", "tg / Trio",
            "peak RSS MB (tg / LG / Trio)", "target", "met", "load"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lg = r.fmt(r.lg) + (" (ref)" if r.lg_is_ref and r.lg is not None else "")
        if r.fmt is fmt_rate or r.label.startswith("(2) scaling"):
            vs_lg, vs_trio = "—", "—"
        elif r.fmt is fmt_mb:
            vs_lg = f"{r.tg / r.lg:.2f} of LG" if r.tg is not None and r.lg else "—"
            vs_trio = fmt_ratio(ratio(r.tg, r.trio))
        else:
            vs_lg, vs_trio = fmt_ratio(ratio(r.lg, r.tg)), fmt_ratio(ratio(r.tg, r.trio))
        met = r.check(r.tg, r.lg, r.trio)
        cells = [r.label, r.fmt(r.tg), lg, vs_lg,
                 "—" if r.trio is None else r.fmt(r.trio), vs_trio, r.rss, r.target,
                 "—" if met is None else "yes" if met else "**NO**", r.load]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def machine(python: str) -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    probe = ("import sys, importlib.metadata as m\n"
             "def v(n):\n"
             "    try: return m.version(n)\n"
             "    except Exception: return 'not installed'\n"
             "print(sys.version.split()[0], v('trio'), v('langgraph'),"
             " v('langgraph-checkpoint-sqlite'))")
    try:
        py, trio_v, lg_v, lgs_v = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split(" ", 3)
    except (subprocess.CalledProcessError, ValueError):
        py, trio_v, lg_v, lgs_v = platform.python_version(), "?", "?", "?"
    return (f"{cpu}, {os.cpu_count()} CPUs; Python {py}; trio {trio_v}; "
            f"langgraph {lg_v}; langgraph-checkpoint-sqlite {lgs_v.strip()}")


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


ALL = ["chain", "fanout_1k", "fanout_10k", "loop", "custom", "updates", "sqlite",
       "memory", "cancel"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", help=f"comma-separated workloads of: {','.join(ALL)}")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help="comma-separated engines (default: all three)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the child processes (default: this one)")
    parser.add_argument("--samples", type=int,
                        help="timed samples per engine and workload (default: per workload)")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args()
    workloads = args.only.split(",") if args.only else ALL
    unknown = set(workloads) - set(ALL)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    engines = [e for e in ENGINES if e in args.engines.split(",")]

    print(f"# machine: {machine(args.python)}")
    print(f"# start: {time.strftime('%Y-%m-%d %H:%M:%S')}, {uptime()}")
    started = time.perf_counter()
    res: dict[str, dict[str, Result]] = {}
    for workload in workloads:
        for engine in engines:
            t0 = time.perf_counter()
            r = measure(args.python, engine, workload, args.quick, args.samples)
            shown = r.note or (fmt_mb(r.time) if workload == "memory" else fmt_time(r.time))
            print(f"#   {workload:<11} {engine:<9} {shown:<40} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
            if r.time is not None:
                res.setdefault(workload, {})[engine] = r
            else:
                res.setdefault(workload, {})
    print(f"# end: {time.strftime('%H:%M:%S')}, {uptime()}, "
          f"suite took {time.perf_counter() - started:.0f} s")
    print()
    print(render(build_rows(res)))
    print()
    print(f"Median of the samples after warm-up; fresh process per engine and workload; "
          f"(4) has {CUSTOM_CHUNKS:,} chunks. LG / tg: how many times faster trigraph is; "
          "tg / Trio: trigraph's cost over the bare-Trio baseline. "
          "load: highest 1-minute load average seen when a row's processes started.")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {w: {e: r.__dict__ for e, r in per.items()} for w, per in res.items()}, indent=1
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Checkpoints per second into SQLite, and their cost over no checkpointer.

    python benchmarks/checkpoint_sqlite.py [--quick] [--json out.json]

The graph: a chain of 100 nodes over a state of 100 string keys of 100
characters (~10 KB). Two write patterns:

- ``all``: every node rewrites all 100 keys (10 KB of new state per step);
- ``one``: node *i* rewrites key *i* only (100 bytes per step, 10 KB state).

Each configuration runs in a fresh child process: the same graph without a
checkpointer, then with a SQLite file on disk (a new thread per run), both
after a warm-up; the medians give checkpoints/s (checkpoints the run stored,
counted in the database, over its wall time), the overhead per run and per
checkpoint, and the database bytes per run.

Engines and modes: trigraph's ``SqliteCheckpointer`` under trio
(``durability="sync"``, its default, and ``"async"``); LangGraph's
``AsyncSqliteSaver`` under asyncio with ``ainvoke`` (``durability="sync"``
and ``"async"``, its default), and its ``SqliteSaver`` with the sync
``invoke`` (sync nodes; ``SqliteSaver`` has no async API).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import load1, maxrss_mb, median, use_checkout  # noqa: E402

STEPS = 100
NKEYS = 100
KEYS = [f"s{i}" for i in range(NKEYS)]
# A different 100-character value per step, so nothing is stored as a suffix.
VALUES = [f"{i:04d}" + "v" * 96 for i in range(STEPS + 1)]
CONFIGS = [
    ("trigraph", "sync"),
    ("trigraph", "async"),
    ("langgraph-async", "sync"),
    ("langgraph-async", "async"),
    ("langgraph-sync", "sync"),
    ("langgraph-sync", "async"),
]
PATTERNS = ("all", "one")


def _initial() -> dict[str, str]:
    return {k: VALUES[0] for k in KEYS}


def _update(i: int, pattern: str) -> dict[str, str]:
    if pattern == "all":
        value = VALUES[i + 1]
        return {k: value for k in KEYS}
    return {KEYS[i]: VALUES[i + 1]}


State = TypedDict("State", {k: str for k in KEYS})  # type: ignore[misc]


def _nodes(pattern: str, sync: bool) -> list[Any]:
    fns = []
    for i in range(STEPS):
        update = _update(i, pattern)
        if sync:
            def fn(state: Any, _u: dict[str, str] = update) -> dict[str, str]:
                return _u
        else:
            async def fn(state: Any, _u: dict[str, str] = update) -> dict[str, str]:  # type: ignore[misc]
                return _u
        fns.append(fn)
    return fns


def _chain(builder: Any, start: str, end: str, fns: list[Any]) -> Any:
    prev = start
    for i, fn in enumerate(fns):
        builder.add_node(f"n{i}", fn)
        builder.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    builder.add_edge(prev, end)
    return builder


def _count(db: Path, table: str, column: str, thread: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(  # type: ignore[no-any-return]
            f"SELECT COUNT(*) FROM {table} WHERE {column}=?", (thread,)
        ).fetchone()[0]


def _db_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * size)


# -- children -------------------------------------------------------------


def child_trigraph(pattern: str, durability: str, samples: int, warmup: int,
                   db: Path) -> dict[str, Any]:
    use_checkout()
    import trio

    from trigraph import END, START, SqliteCheckpointer, StateGraph

    builder = _chain(StateGraph(State), START, END, _nodes(pattern, sync=False))
    out: dict[str, Any] = {}

    async def main() -> None:
        plain = builder.compile()
        for _ in range(warmup):
            await plain.ainvoke(_initial())
        out["plain"] = await _time(lambda: plain.ainvoke(_initial()), samples)
        async with SqliteCheckpointer(db) as cp:
            graph = builder.compile(checkpointer=cp)
            n = 0

            async def one() -> None:
                nonlocal n
                n += 1
                await graph.ainvoke(_initial(), thread=f"t{n}", durability=durability)

            for _ in range(warmup):
                await one()
            before = _db_bytes(db)
            out["durable"] = await _time(one, samples)
            out["bytes_per_run"] = (_db_bytes(db) - before) / samples
        out["checkpoints"] = _count(db, "trigraph_checkpoints", "thread", "t1")

    trio.run(main)
    return out


def child_langgraph(pattern: str, durability: str, samples: int, warmup: int, db: Path,
                    sync_api: bool) -> dict[str, Any]:
    from langgraph.graph import END, START, StateGraph

    builder = _chain(StateGraph(State), START, END, _nodes(pattern, sync=sync_api))
    cfg: dict[str, Any] = {"recursion_limit": 10_000}
    out: dict[str, Any] = {}

    def config(n: int) -> dict[str, Any]:
        return {**cfg, "configurable": {"thread_id": f"t{n}"}}

    if sync_api:
        from langgraph.checkpoint.sqlite import SqliteSaver

        plain = builder.compile()
        for _ in range(warmup):
            plain.invoke(_initial(), cfg)
        out["plain"] = _time_sync(lambda: plain.invoke(_initial(), cfg), samples)
        with SqliteSaver.from_conn_string(str(db)) as saver:
            graph = builder.compile(checkpointer=saver)
            n = 0

            def one() -> None:
                nonlocal n
                n += 1
                graph.invoke(_initial(), config(n), durability=durability)

            for _ in range(warmup):
                one()
            before = _db_bytes(db)
            out["durable"] = _time_sync(one, samples)
            out["bytes_per_run"] = (_db_bytes(db) - before) / samples
    else:
        import asyncio

        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async def main() -> None:
            plain = builder.compile()
            for _ in range(warmup):
                await plain.ainvoke(_initial(), cfg)
            out["plain"] = await _time(lambda: plain.ainvoke(_initial(), cfg), samples)
            async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
                graph = builder.compile(checkpointer=saver)
                n = 0

                async def one() -> None:
                    nonlocal n
                    n += 1
                    await graph.ainvoke(_initial(), config(n), durability=durability)

                for _ in range(warmup):
                    await one()
                before = _db_bytes(db)
                out["durable"] = await _time(one, samples)
                out["bytes_per_run"] = (_db_bytes(db) - before) / samples

        asyncio.run(main())
    out["checkpoints"] = _count(db, "checkpoints", "thread_id", "t1")
    return out


async def _time(fn: Any, samples: int) -> float:
    times = []
    for _ in range(samples):
        gc.collect()
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def _time_sync(fn: Any, samples: int) -> float:
    times = []
    for _ in range(samples):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def child(engine: str, pattern: str, durability: str, samples: int, warmup: int) -> int:
    load = load1()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        try:
            if engine == "trigraph":
                out = child_trigraph(pattern, durability, samples, warmup, db)
            else:
                out = child_langgraph(pattern, durability, samples, warmup, db,
                                      sync_api=engine == "langgraph-sync")
        except ImportError as exc:
            print(json.dumps({"unavailable": f"cannot import: {exc}"}))
            return 3
    out["load1"] = load
    out["maxrss_mb"] = maxrss_mb()
    print(json.dumps(out))
    return 0


# -- parent ---------------------------------------------------------------


def run_child(python: str, engine: str, pattern: str, durability: str, samples: int,
              warmup: int) -> dict[str, Any]:
    proc = subprocess.run(
        [python, __file__, "--child", engine, pattern, durability,
         "--samples", str(samples), "--warmup", str(warmup)],
        capture_output=True, text=True, timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"unavailable": f"failed: {tail}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "PATTERN", "DURABILITY"))
    parser.add_argument("--samples", type=int)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.samples or 10, args.warmup)
    samples = args.samples or (3 if args.quick else 10)
    warmup = 1 if args.quick else args.warmup
    one, five, fifteen = os.getloadavg()
    print(f"# start {time.strftime('%H:%M:%S')}, load average {one:.2f}, {five:.2f}, "
          f"{fifteen:.2f}; {samples} samples after {warmup} warm-up(s), medians")
    results: list[tuple[str, str, str, dict[str, Any]]] = []
    for pattern in PATTERNS:
        for engine, durability in CONFIGS:
            got = run_child(args.python, engine, pattern, durability, samples, warmup)
            results.append((pattern, engine, durability, got))
            shown = got.get("unavailable") or f"{got['durable'] * 1e3:.1f} ms"
            print(f"#   {pattern} {engine} {durability}: {shown}", flush=True)
    one, five, fifteen = os.getloadavg()
    print(f"# end {time.strftime('%H:%M:%S')}, load average {one:.2f}, {five:.2f}, {fifteen:.2f}")
    print()
    head = ["writes per step", "engine (API)", "durability", "no checkpointer",
            "SQLite", "checkpoints", "checkpoints/s", "overhead", "per checkpoint",
            "DB bytes / run", "load"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    names = {"trigraph": "trigraph (ainvoke, trio)",
             "langgraph-async": "LangGraph AsyncSqliteSaver (ainvoke)",
             "langgraph-sync": "LangGraph SqliteSaver (invoke)"}
    for pattern, engine, durability, got in results:
        label = "all 100 keys (10 KB)" if pattern == "all" else "1 key (100 B)"
        if "unavailable" in got:
            cells = [label, names[engine], durability] + ["n/a"] * 7 + [""]
        else:
            plain, durable, count = got["plain"], got["durable"], got["checkpoints"]
            over = durable - plain
            cells = [
                label, names[engine], durability,
                f"{plain * 1e3:.2f} ms", f"{durable * 1e3:.1f} ms", str(count),
                f"{count / durable:,.0f}",
                f"+{over * 1e3:.1f} ms ({durable / plain:.1f}x)",
                f"{over / count * 1e6:.0f} µs",
                f"{got['bytes_per_run'] / 1024:.0f} KiB", f"{got['load1']:.2f}",
            ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

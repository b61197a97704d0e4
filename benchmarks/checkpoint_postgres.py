"""Checkpoints into PostgreSQL: trigraph's PostgresCheckpointer vs LangGraph's
AsyncPostgresSaver, on the same disposable server.

    python benchmarks/checkpoint_postgres.py [--quick] [--dsn DSN] [--json out.json]

Without ``--dsn`` (or ``$TRIGRAPH_BENCH_PG_DSN``) it starts a disposable
PostgreSQL (initdb + pg_ctl into a temporary folder, as ``tests/_pg.py``
does; as root through ``runuser -u postgres``) and stops it at the end. The
server runs on a Unix socket with ``fsync=off``, ``synchronous_commit=off``
and ``full_page_writes=off`` (a throwaway server; both engines pay the same,
and commits cost round trips and CPU rather than disk flushes).

Measured, each configuration in a fresh child process, medians:

- ``loop``: workload (6) of ``run.py``: one node updating 100 int keys (and a
  counter) loops for 100 supersteps, a checkpoint per step,
  ``durability="sync"``, a new thread per run. Time per run, and the bytes
  the thread's rows take (``pg_column_size`` of its rows in every table the
  saver writes) and what the tables grow on disk per thread, indexes
  included (``pg_total_relation_size``).
- ``concurrent``: the same run on 1, 4 and 16 threads at once; checkpoints
  per second (checkpoints stored / wall time).
- ``get_state``: ``get_state`` of a thread with 1,000 checkpoints (after an
  ``ANALYZE``, as autovacuum does on a database in use).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import KEYS, LOOP_STEPS, load1, median, use_checkout  # noqa: E402

CONCURRENCY = (1, 4, 16)
LONG_THREAD = 1_000
LG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
TG_TABLES = ("checkpoints",)


def _sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def _with_db(dsn: str, dbname: str) -> str:
    return " ".join(p for p in dsn.split() if not p.startswith("dbname=")) + f" dbname={dbname}"


def _table_bytes(dsn: str, schema: str, tables: tuple[str, ...]) -> int:
    return sum(
        _sql(dsn, "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)",
             f'"{schema}".{t}')[0][0]
        for t in tables
    )


def _row_bytes(dsn: str, schema: str, tables: tuple[str, ...], column: str, thread: str) -> int:
    total = 0
    for t in tables:
        total += _sql(dsn, f'SELECT coalesce(sum(pg_column_size(x.*)), 0) FROM "{schema}".{t} x '
                           f"WHERE {column} = %s", thread)[0][0]
    return int(total)


# -- children ---------------------------------------------------------------


def child_trigraph(kind: str, dsn: str, samples: int, warmup: int) -> dict[str, Any]:
    use_checkout()
    import trio
    from bench_trigraph import loop_builder, loop_input

    from trigraph import PostgresCheckpointer

    out: dict[str, Any] = {}
    schema = f"bench_{os.getpid()}"

    async def main() -> None:
        async with PostgresCheckpointer(dsn, schema=schema, max_connections=16) as cp:
            graph = loop_builder().compile(checkpointer=cp)
            n = 0

            async def one(thread: str | None = None, limit: int = 10_000) -> None:
                nonlocal n
                n += 1
                await graph.ainvoke(loop_input(), thread=thread or f"t{n}",
                                    durability="sync", recursion_limit=limit)

            if kind == "loop":
                for _ in range(warmup):
                    await one()
                before = _table_bytes(dsn, schema, TG_TABLES)
                out["times"] = [await _timed(one) for _ in range(samples)]
                out["disk_per_thread"] = (_table_bytes(dsn, schema, TG_TABLES) - before) / samples
                out["row_bytes"] = _row_bytes(dsn, schema, TG_TABLES, "thread", f"t{n}")
                out["checkpoints"] = len(await cp.history(f"t{n}", ""))
            elif kind == "concurrent":
                for width in CONCURRENCY:
                    async def batch(width: int = width) -> None:
                        async with trio.open_nursery() as nursery:
                            for _ in range(width):
                                nursery.start_soon(one)

                    await batch()
                    times = [await _timed(batch) for _ in range(samples)]
                    out[str(width)] = median(times)
                out["checkpoints"] = len(await cp.history(f"t{n}", ""))
            else:
                await graph.ainvoke(loop_input(), thread="long", durability="sync",
                                    recursion_limit=LONG_THREAD + 1)
                # ... then 900 more steps on the same thread, 100 at a time.
                for _ in range(LONG_THREAD // LOOP_STEPS - 1):
                    await graph.update_state("long", {"i": 0}, as_node="bump")
                    await graph.ainvoke(None, thread="long", durability="sync")
                out["checkpoints"] = len(await cp.history("long", ""))
                # A long-lived database has statistics (autovacuum analyzes a
                # table after 10% of it changed); this one is seconds old.
                _sql(dsn, f'ANALYZE "{schema}".checkpoints')
                for _ in range(20):
                    await graph.get_state("long")
                out["times"] = [await _timed(lambda: graph.get_state("long"))
                                for _ in range(samples * 10)]

    trio.run(main)
    return out


def child_langgraph(kind: str, dsn: str, samples: int, warmup: int) -> dict[str, Any]:
    import asyncio

    from bench_langgraph import loop_builder, loop_input
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg_pool import AsyncConnectionPool

    out: dict[str, Any] = {}
    config: dict[str, Any] = {"recursion_limit": 10_000}

    async def main() -> None:
        # LangGraph's documented setup: autocommit, dict rows, prepared statements.
        from psycopg.rows import dict_row

        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(dsn, min_size=1, max_size=16, kwargs=kwargs,
                                       open=False) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            graph = loop_builder().compile(checkpointer=saver)
            n = 0

            async def one(thread: str | None = None) -> None:
                nonlocal n
                n += 1
                cfg = {**config, "configurable": {"thread_id": thread or f"t{n}"}}
                await graph.ainvoke(loop_input(), cfg, durability="sync")

            if kind == "loop":
                for _ in range(warmup):
                    await one()
                before = _table_bytes(dsn, "public", LG_TABLES)
                out["times"] = [await _atimed(one) for _ in range(samples)]
                out["disk_per_thread"] = (_table_bytes(dsn, "public", LG_TABLES) - before) / samples
                out["row_bytes"] = _row_bytes(dsn, "public", LG_TABLES, "thread_id", f"t{n}")
                out["checkpoints"] = _sql(
                    dsn, "SELECT count(*) FROM checkpoints WHERE thread_id = %s", f"t{n}")[0][0]
            elif kind == "concurrent":
                for width in CONCURRENCY:
                    async def batch(width: int = width) -> None:
                        await asyncio.gather(*(one() for _ in range(width)))

                    await batch()
                    out[str(width)] = median([await _atimed(batch) for _ in range(samples)])
                out["checkpoints"] = _sql(
                    dsn, "SELECT count(*) FROM checkpoints WHERE thread_id = %s", f"t{n}")[0][0]
            else:
                cfg = {"recursion_limit": 10_000, "configurable": {"thread_id": "long"}}
                await graph.ainvoke(loop_input(), cfg, durability="sync")
                for _ in range(LONG_THREAD // LOOP_STEPS - 1):
                    await graph.aupdate_state(cfg, {"i": 0}, as_node="bump")
                    await graph.ainvoke(None, cfg, durability="sync")
                out["checkpoints"] = _sql(
                    dsn, "SELECT count(*) FROM checkpoints WHERE thread_id = 'long'")[0][0]
                for table in LG_TABLES:
                    _sql(dsn, f"ANALYZE {table}")
                for _ in range(20):
                    await graph.aget_state(cfg)
                out["times"] = [await _atimed(lambda: graph.aget_state(cfg))
                                for _ in range(samples * 10)]

    asyncio.run(main())
    return out


async def _timed(fn: Any) -> float:
    gc.collect()
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


_atimed = _timed


def child(engine: str, kind: str, dsn: str, samples: int, warmup: int) -> int:
    out = {"load1": load1()}
    try:
        if engine == "trigraph":
            out.update(child_trigraph(kind, dsn, samples, warmup))
        else:
            out.update(child_langgraph(kind, dsn, samples, warmup))
    except ImportError as exc:
        print(json.dumps({"unavailable": f"cannot import: {exc}"}))
        return 3
    print(json.dumps(out))
    return 0


# -- parent -------------------------------------------------------------------


def run_child(python: str, engine: str, kind: str, dsn: str, samples: int,
              warmup: int) -> dict[str, Any]:
    proc = subprocess.run(
        [python, __file__, "--child", engine, kind, "--dsn", dsn,
         "--samples", str(samples), "--warmup", str(warmup)],
        capture_output=True, text=True, timeout=1800,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"unavailable": f"failed: {tail}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _ms(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x >= 0.01 else f"{x * 1e3:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--dsn", default=os.environ.get("TRIGRAPH_BENCH_PG_DSN"))
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "KIND"))
    parser.add_argument("--samples", type=int)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.dsn, args.samples or 10, args.warmup)
    samples = args.samples or (3 if args.quick else 10)
    warmup = 1 if args.quick else args.warmup
    server = None
    dsn = args.dsn
    if dsn is None:
        from _pg import PgServer

        server = PgServer.start()
        dsn = server.dsn
    try:
        return _parent(args, dsn, samples, warmup)
    finally:
        if server is not None:
            server.stop()


def _parent(args: argparse.Namespace, dsn: str, samples: int, warmup: int) -> int:
    version = _sql(dsn, "SHOW server_version")[0][0]
    one, five, fifteen = os.getloadavg()
    print(f"# PostgreSQL {version}; start {time.strftime('%H:%M:%S')}, load average "
          f"{one:.2f}, {five:.2f}, {fifteen:.2f}; {samples} samples after {warmup} warm-up(s)")
    results: dict[str, dict[str, Any]] = {}
    for kind in ("loop", "concurrent", "get_state"):
        for engine in ("trigraph", "langgraph"):
            db = f"bench_{engine}_{kind}"
            _sql(dsn, f"DROP DATABASE IF EXISTS {db}")
            _sql(dsn, f"CREATE DATABASE {db}")
            got = run_child(args.python, engine, kind, _with_db(dsn, db), samples, warmup)
            _sql(dsn, f"DROP DATABASE IF EXISTS {db}")
            results[f"{engine}/{kind}"] = got
            print(f"#   {engine} {kind}: {got.get('unavailable') or 'done'}", flush=True)
    print()
    _table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _table(results: dict[str, dict[str, Any]]) -> None:
    tg, lg = results["trigraph/loop"], results["langgraph/loop"]
    print("| measure | trigraph PostgresCheckpointer | LangGraph AsyncPostgresSaver | "
          "LG / tg | target | met |")
    print("|---|---|---|---|---|---|")
    if "unavailable" in tg or "unavailable" in lg:
        print(f"| loop | {tg.get('unavailable', '')} | {lg.get('unavailable', '')} | | | |")
        return
    t_tg, t_lg = median(tg["times"]), median(lg["times"])
    print(f"| (6) 100 steps x 100 keys, sync, per run | {_ms(t_tg)} | {_ms(t_lg)} | "
          f"{t_lg / t_tg:.1f}x | >= 5x | {'yes' if t_lg / t_tg >= 5 else '**NO**'} |")
    print(f"| checkpoints per run | {tg['checkpoints']} | {lg['checkpoints']} | | | |")
    print(f"| row bytes per thread | {tg['row_bytes'] / 1024:.0f} KiB | "
          f"{lg['row_bytes'] / 1024:.0f} KiB | {lg['row_bytes'] / tg['row_bytes']:.1f}x | "
          f"<= 1/4 of LG | {'yes' if tg['row_bytes'] * 4 <= lg['row_bytes'] else '**NO**'} |")
    print(f"| disk per thread, indexes included | {tg['disk_per_thread'] / 1024:.0f} KiB | "
          f"{lg['disk_per_thread'] / 1024:.0f} KiB | "
          f"{lg['disk_per_thread'] / max(tg['disk_per_thread'], 1):.1f}x | <= 1/4 of LG | "
          f"{'yes' if tg['disk_per_thread'] * 4 <= lg['disk_per_thread'] else '**NO**'} |")
    ctg, clg = results["trigraph/concurrent"], results["langgraph/concurrent"]
    for width in CONCURRENCY:
        if "unavailable" in ctg:
            break
        rate_tg = width * ctg["checkpoints"] / ctg[str(width)]
        rate_lg = (width * clg["checkpoints"] / clg[str(width)]) if "unavailable" not in clg \
            else float("nan")
        print(f"| checkpoints/s, {width} thread(s) at once | {rate_tg:,.0f} | {rate_lg:,.0f} | "
              f"{rate_tg / rate_lg:.1f}x faster | (scaling) | |")
    gtg, glg = results["trigraph/get_state"], results["langgraph/get_state"]
    if "unavailable" not in gtg:
        g_tg = median(gtg["times"])
        g_lg = median(glg["times"]) if "unavailable" not in glg else float("nan")
        print(f"| get_state, thread of {gtg['checkpoints']:,} checkpoints | {_ms(g_tg)} | "
              f"{_ms(g_lg)} | {g_lg / g_tg:.1f}x | < 5 ms | {'yes' if g_tg < 0.005 else '**NO**'} |")


if __name__ == "__main__":
    sys.exit(main())

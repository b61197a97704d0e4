"""An agent of N turns, trigraph's create_agent against LangGraph's, side by side.

Each turn is one model call answered with two parallel tool calls (then one
last call answers in text), against the shipped OpenAI-compatible token
server (``trigraph.llm.testing``) running in a child process of its own, with
a SQLite checkpointer on a file. trigraph: ``create_agent`` with
``ChatModel`` and ``SqliteCheckpointer``, under Trio. LangGraph:
``langchain.agents.create_agent`` with ``langchain_openai.ChatOpenAI``
(``streaming=True``, pointed at the same server) and ``AsyncSqliteSaver``,
under asyncio. Both stream every answer and commit every step's checkpoint
before the next (``durability="sync"``). Each engine runs in a fresh child
process, R times (a fresh database each time); the table shows the median.

Then the per-write cost of ``add_messages`` on histories of 100, 1,000 and
10,000 messages (one new message appended; median of many calls): LangGraph's,
and trigraph's in a run (appending to the list it returned before) and cold
(a list it has not seen, e.g. just read from a checkpoint).

    .bench-venv/bin/python benchmarks/agent.py [--turns 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

TEXT = "Looking it up."
_COUNTER = itertools.count()  # fresh message ids for the add_messages timings


def script_for(turns: int) -> Any:
    from trigraph.llm.testing import Script
    from trigraph.llm.testing._answers import turn_of

    def script(chat: dict[str, Any]) -> Script:
        turn = turn_of(chat)
        if turn >= turns:
            return Script(answer="All done.")
        return Script(answer=TEXT, tool_calls=[("lookup", {"query": f"t{turn}a"}),
                                               ("lookup", {"query": f"t{turn}b"})])

    return script


async def serve_child(turns: int) -> None:
    import trio

    from trigraph.llm.testing import serve

    async with trio.open_nursery() as nursery:
        server = await nursery.start(lambda task_status: serve(
            script=script_for(turns), task_status=task_status))
        print(server.base_url, flush=True)


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def run_trigraph(url: str, db: Path, turns: int) -> dict[str, Any]:
    from trigraph import SqliteCheckpointer
    from trigraph.agents import create_agent
    from trigraph.llm import ChatModel

    async def lookup(query: str) -> str:
        """Look something up.

        Args:
            query: what to look up.
        """
        return f"result for {query}"

    async with SqliteCheckpointer(db) as cp, ChatModel(url, "bench", api_key="") as model:
        agent = create_agent(model, [lookup], checkpointer=cp)
        start = time.perf_counter()
        final = await agent.ainvoke({"messages": ["go"]}, thread="t")
        elapsed = time.perf_counter() - start
    return {"time": elapsed, "messages": len(final["messages"]), "db": db_size(db)}


async def run_langgraph(url: str, db: Path, turns: int) -> dict[str, Any]:
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    @tool
    async def lookup(query: str) -> str:
        """Look something up.

        Args:
            query: what to look up.
        """
        return f"result for {query}"

    model = ChatOpenAI(base_url=url, api_key="unused", model="bench", streaming=True,
                       stream_usage=True, max_retries=0)
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        agent = create_agent(model, [lookup], checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}, "recursion_limit": 10_000}
        start = time.perf_counter()
        final = await agent.ainvoke({"messages": [("user", "go")]}, config, durability="sync")
        elapsed = time.perf_counter() - start
    return {"time": elapsed, "messages": len(final["messages"]), "db": db_size(db)}


def engine_child(engine: str, url: str, turns: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "agent.db"
        if engine == "trigraph":
            import trio

            result = trio.run(run_trigraph, url, db, turns)
        else:
            import asyncio

            result = asyncio.run(run_langgraph(url, db, turns))
    print(json.dumps(result), flush=True)


# -- add_messages per write ----------------------------------------------------

def per_write(sizes: tuple[int, ...] = (100, 1_000, 10_000)) -> dict[str, dict[int, float]]:
    from trigraph.messages import AIMessage, HumanMessage, add_messages as tg_add

    out: dict[str, dict[int, float]] = {"trigraph (in a run)": {}, "trigraph (cold)": {}}
    try:
        from langchain_core.messages import AIMessage as LcAI, HumanMessage as LcHuman
        from langgraph.graph.message import add_messages as lg_add
    except ImportError:
        lg_add = None
    else:
        out = {"LangGraph": {}, **out}

    def median_per_call(run: Any, reps: int) -> float:
        """*run(reps)* returns its own elapsed time (setup left out); median of 5."""
        return statistics.median(run(reps) for _ in range(5)) / reps

    for n in sizes:
        reps = max(20, 200_000 // n)
        base = [HumanMessage(f"m{i}", id=f"id-{i}") if i % 2 else
                AIMessage(f"m{i}", id=f"id-{i}") for i in range(n)]

        def fresh(reps: int, cls: Any = AIMessage) -> list[Any]:
            return [[cls("new", id=f"new-{next(_COUNTER)}")] for _ in range(reps)]

        def in_run(reps: int, base: list[Any] = base) -> float:
            # As in a run: each write appends to the list the reducer returned before.
            history = tg_add(base, [])
            new = fresh(reps)
            start = time.perf_counter()
            for i in range(reps):
                history = tg_add(history, new[i])
            return time.perf_counter() - start

        def cold(reps: int, base: list[Any] = base) -> float:
            # A list the reducer has not seen (e.g. just read from a checkpoint).
            copies = [list(base) for _ in range(reps)]
            new = fresh(reps)
            start = time.perf_counter()
            for i in range(reps):
                tg_add(copies[i], new[i])
            return time.perf_counter() - start

        out["trigraph (in a run)"][n] = median_per_call(in_run, reps)
        out["trigraph (cold)"][n] = median_per_call(cold, max(5, reps // 4))
        if lg_add is not None:
            lc_base = [LcHuman(content=f"m{i}", id=f"id-{i}") if i % 2 else
                       LcAI(content=f"m{i}", id=f"id-{i}") for i in range(n)]

            def langgraph(reps: int, base: list[Any] = lc_base) -> float:
                new = [[LcAI(content="new", id=f"new-{next(_COUNTER)}")] for _ in range(reps)]
                history = lg_add(base, [])
                start = time.perf_counter()
                for i in range(reps):
                    history = lg_add(history, new[i])
                return time.perf_counter() - start

            out["LangGraph"][n] = median_per_call(langgraph, max(5, reps // 4))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import trio

        trio.run(serve_child, args.turns)
        return
    if args.engine:
        engine_child(args.engine, args.url, args.turns)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--turns", str(args.turns)],
                              stdout=subprocess.PIPE, text=True)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        engines = ["trigraph"]
        try:
            import langchain_openai  # noqa: F401
            import langgraph  # noqa: F401
        except ImportError:
            print("LangGraph/langchain-openai are not installed: its column reads n/a")
        else:
            engines.append("langgraph")
        for _ in range(args.runs):  # interleaved, so drift in the machine hits both alike
            for engine in engines:
                env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
                done = subprocess.run(
                    [sys.executable, __file__, "--engine", engine, "--url", url,
                     "--turns", str(args.turns)], capture_output=True, text=True, env=env,
                    timeout=900)
                if done.returncode:
                    raise SystemExit(f"{engine} failed:\n{done.stderr}")
                results.setdefault(engine, []).append(json.loads(done.stdout.splitlines()[-1]))
    finally:
        server.terminate()
        server.wait()
    print(f"agent of {args.turns} turns (2 parallel tool calls each), SQLite, "
          f"median of {args.runs} runs; the server runs in a child process")
    row: dict[str, tuple[float, float, int, int]] = {}
    for engine, runs in results.items():
        t = statistics.median(r["time"] for r in runs)
        size = int(statistics.median(r["db"] for r in runs))
        row[engine] = (t, args.turns / t, size, runs[0]["messages"])
    print(f"{'engine':<10} {'time':>9} {'turns/s':>9} {'DB size':>12} {'messages':>9}")
    for engine, (t, rate, size, count) in row.items():
        print(f"{engine:<10} {t:>8.2f}s {rate:>9.1f} {size / 1024:>9.0f} KiB {count:>9}")
    if "langgraph" in row:
        tg, lg = row["trigraph"], row["langgraph"]
        print(f"trigraph/LangGraph: {tg[1] / lg[1]:.1f}x the turns/s (target >= 5x), "
              f"{tg[2] / lg[2]:.3f} of the DB size (target <= 0.2)")
    print("\nadd_messages, one message appended, per write:")
    table = per_write()
    sizes = (100, 1_000, 10_000)
    print(f"{'':<22}" + "".join(f"{n:>12,}" for n in sizes))
    for name, by_size in table.items():
        print(f"{name:<22}" + "".join(f"{by_size[n] * 1e3:>10.4f}ms" for n in sizes))


if __name__ == "__main__":
    main()

"""The benchmark workloads in LangGraph (run under ``asyncio.run``, its native loop).

Each graph mirrors the one in ``bench_trigraph.py``: same state keys, same
reducers, same number of supersteps and tasks. Importing this module raises
``ImportError`` when LangGraph is not installed (the runner then shows "n/a").
Durable runs use ``durability="sync"`` (each step's checkpoint committed
before the next step starts), trigraph's default, so both engines do the same
work; LangGraph's own default is ``"async"`` (see ``checkpoint_sqlite.py`` for
both modes).
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from _common import (
    CANCEL_TASKS,
    CHAIN_LEN,
    CUSTOM_CHUNKS,
    FANOUT_LARGE,
    FANOUT_SMALL,
    KEYS,
    LOOP_STEPS,
    Sampler,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


def RUN(fn: Any) -> None:
    asyncio.run(fn())


NAME = "langgraph"
CONFIG: dict[str, Any] = {"recursion_limit": 100_000}


# -- graphs ---------------------------------------------------------------


class ChainState(TypedDict):
    n: int


async def _inc(state: ChainState) -> dict[str, Any]:
    return {"n": state["n"] + 1}


def chain_builder(length: int = CHAIN_LEN) -> StateGraph:
    g = StateGraph(ChainState)
    prev = START
    for i in range(length):
        name = f"n{i}"
        g.add_node(name, _inc)
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, END)
    return g


class FanState(TypedDict):
    n: int
    results: Annotated[list[int], operator.add]


async def _work(arg: dict[str, int]) -> dict[str, Any]:
    return {"results": [arg["i"]]}


def _fan(state: FanState) -> list[Send]:
    return [Send("work", {"i": i}) for i in range(state["n"])]


def fanout_builder() -> StateGraph:
    g = StateGraph(FanState)
    g.add_node("work", _work)
    g.add_conditional_edges(START, _fan)
    g.add_edge("work", END)
    return g


LoopState = TypedDict("LoopState", {**{k: int for k in KEYS}, "i": int})  # type: ignore[misc]


async def _bump(state: dict[str, int]) -> dict[str, int]:
    update = {k: state[k] + 1 for k in KEYS}
    update["i"] = state["i"] + 1
    return update


def _again(state: dict[str, int]) -> str:
    return "bump" if state["i"] < LOOP_STEPS else END


def loop_builder() -> StateGraph:
    g = StateGraph(LoopState)
    g.add_node("bump", _bump)
    g.add_edge(START, "bump")
    g.add_conditional_edges("bump", _again)
    return g


def loop_input() -> dict[str, int]:
    return {**{k: 0 for k in KEYS}, "i": 0}


class EmitState(TypedDict):
    n: int


async def _emit(state: EmitState) -> dict[str, Any]:
    write = get_stream_writer()  # LangGraph's writer is a plain (sync) call
    for i in range(CUSTOM_CHUNKS):
        write(i)
    return {"n": 1}


def custom_builder() -> StateGraph:
    g = StateGraph(EmitState)
    g.add_node("emit", _emit)
    g.add_edge(START, "emit")
    g.add_edge("emit", END)
    return g


_blocked = 0
_all_blocked: asyncio.Event | None = None


async def _block(arg: dict[str, int]) -> dict[str, Any]:
    global _blocked
    _blocked += 1
    if _blocked == CANCEL_TASKS and _all_blocked is not None:
        _all_blocked.set()
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _fan_block(state: FanState) -> list[Send]:
    return [Send("block", {"i": i}) for i in range(state["n"])]


def cancel_builder() -> StateGraph:
    g = StateGraph(FanState)
    g.add_node("block", _block)
    g.add_conditional_edges(START, _fan_block)
    g.add_edge("block", END)
    return g


# -- workloads ------------------------------------------------------------


async def chain(sampler: Sampler) -> None:
    graph = chain_builder().compile()

    async def sample() -> None:
        out = await graph.ainvoke({"n": 0}, CONFIG)
        assert out["n"] == CHAIN_LEN, out

    await sampler.run(sample)


def _fanout(size: int) -> Any:
    async def workload(sampler: Sampler) -> None:
        graph = fanout_builder().compile()

        async def sample() -> None:
            out = await graph.ainvoke({"n": size}, CONFIG)
            assert len(out["results"]) == size

        await sampler.run(sample)

    return workload


async def loop(sampler: Sampler) -> None:
    graph = loop_builder().compile()

    async def sample() -> None:
        out = await graph.ainvoke(loop_input(), CONFIG)
        assert out["i"] == LOOP_STEPS, out
        assert out["k0"] == LOOP_STEPS, out

    await sampler.run(sample)


async def custom(sampler: Sampler) -> None:
    graph = custom_builder().compile()

    async def sample() -> dict[str, float]:
        count = 0
        first = 0.0
        t0 = time.perf_counter()
        async for _chunk in graph.astream({"n": 0}, CONFIG, stream_mode="custom"):
            if count == 0:
                first = time.perf_counter() - t0
            count += 1
        total = time.perf_counter() - t0
        assert count == CUSTOM_CHUNKS, count
        return {"time": total, "first_event": first, "events_per_s": count / total}

    await sampler.run(sample)


async def updates(sampler: Sampler) -> None:
    graph = chain_builder().compile()

    async def sample() -> None:
        count = 0
        async for _chunk in graph.astream({"n": 0}, CONFIG, stream_mode="updates"):
            count += 1
        assert count == CHAIN_LEN, count

    await sampler.run(sample)


async def sqlite(sampler: Sampler) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncSqliteSaver.from_conn_string(str(Path(tmp) / "lg.db")) as saver:
            graph = loop_builder().compile(checkpointer=saver)
            thread = 0

            async def sample() -> None:
                nonlocal thread
                thread += 1
                config = {**CONFIG, "configurable": {"thread_id": f"t{thread}"}}
                out = await graph.ainvoke(loop_input(), config, durability="sync")
                assert out["i"] == LOOP_STEPS, out

            await sampler.run(sample)


async def cancel(sampler: Sampler) -> None:
    graph = cancel_builder().compile()

    async def sample() -> dict[str, float]:
        global _blocked, _all_blocked
        _blocked = 0
        _all_blocked = asyncio.Event()
        task = asyncio.create_task(graph.ainvoke({"n": CANCEL_TASKS}, CONFIG))
        await _all_blocked.wait()
        t0 = time.perf_counter()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return {"time": time.perf_counter() - t0}

    await sampler.run(sample)


WORKLOADS = {
    "chain": chain,
    "fanout_1k": _fanout(FANOUT_SMALL),
    "fanout_10k": _fanout(FANOUT_LARGE),
    "loop": loop,
    "custom": custom,
    "updates": updates,
    "sqlite": sqlite,
    "memory": _fanout(FANOUT_LARGE),
    "cancel": cancel,
}

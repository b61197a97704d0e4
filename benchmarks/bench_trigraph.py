"""The benchmark workloads in trigraph (run under ``trio.run``).

Each graph mirrors the one in ``bench_langgraph.py`` node for node: same
state keys, same reducers, same number of supersteps and tasks.
"""

from __future__ import annotations

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
    use_checkout,
)

use_checkout()

import trio  # noqa: E402

from trigraph import (  # noqa: E402
    END,
    START,
    Send,
    SqliteCheckpointer,
    StateGraph,
    get_stream_writer,
)

RUN = trio.run
NAME = "trigraph"


# -- graphs ---------------------------------------------------------------


class ChainState(TypedDict):
    n: int


async def _inc(state: ChainState) -> dict[str, Any]:
    return {"n": state["n"] + 1}


def chain_builder(length: int = CHAIN_LEN) -> StateGraph[Any]:
    """Workloads 1 and 5: START -> n0 -> n1 -> ... -> n99 -> END."""
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


def fanout_builder() -> StateGraph[Any]:
    """Workload 2: a router on START sends ``n`` tasks into one step."""
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


def loop_builder() -> StateGraph[Any]:
    """Workloads 3 and 6: one node looping back through a conditional edge."""
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
    write = get_stream_writer()
    for i in range(CUSTOM_CHUNKS):
        await write(i)
    return {"n": 1}


def custom_builder() -> StateGraph[Any]:
    """Workload 4: one node writing 100,000 custom chunks."""
    g = StateGraph(EmitState)
    g.add_node("emit", _emit)
    g.add_edge(START, "emit")
    g.add_edge("emit", END)
    return g


_blocked = 0
_all_blocked: trio.Event | None = None


async def _block(arg: dict[str, int]) -> dict[str, Any]:
    global _blocked
    _blocked += 1
    if _blocked == CANCEL_TASKS and _all_blocked is not None:
        _all_blocked.set()
    await trio.sleep_forever()
    raise AssertionError("unreachable")


def _fan_block(state: FanState) -> list[Send]:
    return [Send("block", {"i": i}) for i in range(state["n"])]


def cancel_builder() -> StateGraph[Any]:
    """Workload 8: ``CANCEL_TASKS`` Send tasks all blocked in one step."""
    g = StateGraph(FanState)
    g.add_node("block", _block)
    g.add_conditional_edges(START, _fan_block)
    g.add_edge("block", END)
    return g


# -- workloads ------------------------------------------------------------


async def chain(sampler: Sampler) -> None:
    graph = chain_builder().compile()

    async def sample() -> None:
        out = await graph.ainvoke({"n": 0})
        assert out["n"] == CHAIN_LEN, out

    await sampler.run(sample)


def _fanout(size: int) -> Any:
    async def workload(sampler: Sampler) -> None:
        graph = fanout_builder().compile()

        async def sample() -> None:
            out = await graph.ainvoke({"n": size})
            assert len(out["results"]) == size

        await sampler.run(sample)

    return workload


async def loop(sampler: Sampler) -> None:
    graph = loop_builder().compile()

    async def sample() -> None:
        out = await graph.ainvoke(loop_input())
        assert out["i"] == LOOP_STEPS, out
        assert out["k0"] == LOOP_STEPS, out

    await sampler.run(sample)


async def custom(sampler: Sampler) -> None:
    graph = custom_builder().compile()

    async def sample() -> dict[str, float]:
        count = 0
        first = 0.0
        t0 = time.perf_counter()
        async with graph.stream({"n": 0}, modes=("custom",)) as events:
            async for _event in events:
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
        async with graph.stream({"n": 0}, modes=("updates",)) as events:
            async for _event in events:
                count += 1
        assert count == CHAIN_LEN, count

    await sampler.run(sample)


async def sqlite(sampler: Sampler) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteCheckpointer(Path(tmp) / "trigraph.db") as cp:
            graph = loop_builder().compile(checkpointer=cp)
            thread = 0

            async def sample() -> None:
                nonlocal thread
                thread += 1
                out = await graph.ainvoke(loop_input(), thread=f"t{thread}")
                assert out["i"] == LOOP_STEPS, out

            await sampler.run(sample)


async def cancel(sampler: Sampler) -> None:
    graph = cancel_builder().compile()

    async def sample() -> dict[str, float]:
        global _blocked, _all_blocked
        _blocked = 0
        _all_blocked = trio.Event()
        scope = trio.CancelScope()
        returned = 0.0

        async def runner() -> None:
            nonlocal returned
            with scope:
                await graph.ainvoke({"n": CANCEL_TASKS})
            returned = time.perf_counter()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner)
            await _all_blocked.wait()
            t0 = time.perf_counter()
            scope.cancel()
        assert returned, "ainvoke did not return"
        return {"time": returned - t0}

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

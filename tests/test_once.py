"""``once()``: a node's side effect happens once per task, across interrupts,
errors, cancellations and crashes; ``GraphInterrupt`` combining; and the
reducer ``prepare`` hook that fixes a write when it is made.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.lowlevel
import trio.testing

from trigraph import (
    END,
    START,
    Command,
    GraphInterrupt,
    MemoryCheckpointer,
    SerializationError,
    StateGraph,
    interrupt,
    once,
)
from trigraph.abc import Checkpointer
from trigraph.events import Update


class S(TypedDict, total=False):
    out: Annotated[list[str], operator.add]


def single(node: Any, cp: Checkpointer | None = None) -> Any:
    g = StateGraph(S)
    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    return g.compile(checkpointer=cp)


async def test_once_outside_a_node_is_an_error() -> None:
    async def f() -> int:
        return 1

    with pytest.raises(RuntimeError, match="inside a running trigraph node"):
        await once("k", f)


async def test_without_a_checkpointer_once_just_runs() -> None:
    calls = Counter[str]()

    def effect(x: str) -> str:  # sync: runs in a worker thread
        calls[x] += 1
        return x.upper()

    async def node(state: S) -> dict[str, Any]:
        return {"out": [await once("a", effect, "a"), await once("b", effect, "b")]}

    assert await single(node).ainvoke({}) == {"out": ["A", "B"]}
    assert calls == Counter(a=1, b=1)


async def test_a_finished_call_is_not_rerun_after_an_interrupt(cp: Checkpointer) -> None:
    calls = Counter[str]()

    async def effect(x: str) -> str:
        calls[x] += 1
        return f"did {x}"

    async def node(state: S) -> dict[str, Any]:
        first = await once("first", effect, "1")
        answer = interrupt("go on?")
        second = await once("second", effect, "2")
        return {"out": [first, answer, second]}

    graph = single(node, cp)
    paused = await graph.ainvoke({}, thread="t")
    assert "__interrupt__" in paused
    assert calls == Counter({"1": 1})
    done = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert done == {"out": ["did 1", "yes", "did 2"]}
    assert calls == Counter({"1": 1, "2": 1})


async def test_concurrent_calls_interrupt_with_stable_ids_and_finished_ones_stay_done(
    cp: Checkpointer,
) -> None:
    calls = Counter[str]()

    async def call(name: str) -> str:
        calls[name] += 1
        if name.startswith("ask"):
            return f"{name}={interrupt(name + '?')}"
        await trio.lowlevel.checkpoint()
        return f"{name} ok"

    async def node(state: S) -> dict[str, Any]:
        names = ["ask1", "plain", "ask2"]
        results: dict[str, str] = {}
        pending: list[GraphInterrupt] = []

        async def one(name: str) -> None:
            try:
                results[name] = await once(name, call, name)
            except GraphInterrupt as gi:
                pending.append(gi)

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)
        if pending:
            raise GraphInterrupt(*[i for gi in pending for i in gi.interrupts])
        return {"out": [results[n] for n in names]}

    graph = single(node, cp)
    paused = await graph.ainvoke({}, thread="t")
    ids = {i.value: i.id for i in paused["__interrupt__"]}
    assert sorted(ids) == ["ask1?", "ask2?"]
    assert len(set(ids.values())) == 2
    snap = await graph.get_state("t")
    assert {i.value: i.id for i in snap.interrupts} == ids
    # Answer one: the other pauses again under the same id; "plain" never re-runs.
    again = await graph.ainvoke(Command(resume={ids["ask1?"]: "A"}), thread="t")
    assert [(i.value, i.id) for i in again["__interrupt__"]] == [("ask2?", ids["ask2?"])]
    final = await graph.ainvoke(Command(resume="B"), thread="t")
    assert final == {"out": ["ask1=A", "plain ok", "ask2=B"]}
    assert calls == Counter({"plain": 1, "ask1": 2, "ask2": 3})


@pytest.mark.parametrize("how", ["error", "cancel"])
async def test_a_finished_call_is_not_rerun_after_an_error_or_a_cancellation(
    cp: Checkpointer, how: str
) -> None:
    calls = Counter[str]()
    fail = True

    async def effect() -> str:
        calls["effect"] += 1
        return "done"

    async def node(state: S) -> dict[str, Any]:
        result = await once("effect", effect)
        if fail:
            if how == "error":
                raise RuntimeError("after the effect")
            await trio.sleep_forever()
        return {"out": [result]}

    graph = single(node, cp)
    if how == "error":
        with pytest.raises(RuntimeError, match="after the effect"):
            await graph.ainvoke({}, thread="t")
    else:
        with trio.move_on_after(0.05):
            await graph.ainvoke({}, thread="t")
    fail = False
    assert await graph.ainvoke(None, thread="t") == {"out": ["done"]}
    assert calls == Counter(effect=1)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_the_result_is_stored_as_soon_as_the_call_finishes(
    cp: Checkpointer, durability: str
) -> None:
    reached = trio.Event()

    async def effect() -> str:
        return "stored"

    async def first(state: S) -> dict[str, Any]:
        return {"out": ["first"]}

    async def node(state: S) -> dict[str, Any]:
        await once("fx", effect)
        reached.set()
        await trio.sleep_forever()
        raise AssertionError

    g = StateGraph(S)
    g.add_node(first).add_node("node", node)
    g.add_edge(START, "first").add_edge("first", "node").add_edge("node", END)
    graph = g.compile(checkpointer=cp)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: graph.ainvoke({}, thread="t", durability=durability))
        await reached.wait()
        # What another process would read right now, while the step runs.
        record = await cp.get("t", "")
        assert record is not None
        assert record.step == 1
        assert record.pending is not None
        assert b'"stored"' in record.pending
        nursery.cancel_scope.cancel()


async def test_a_result_a_checkpoint_cannot_hold_is_refused(cp: Checkpointer) -> None:
    async def effect() -> object:
        return object()

    async def node(state: S) -> dict[str, Any]:
        await once("fx", effect)
        return {}

    with pytest.raises(SerializationError):
        await single(node, cp).ainvoke({}, thread="t")


# -- the reducer prepare hook -------------------------------------------------


def tagged(old: list[str], new: list[str]) -> list[str]:
    return old + new


tagged.prepare = lambda value: [v if v.startswith("#") else f"#{v}" for v in value]  # type: ignore[attr-defined]


class Tagged(TypedDict, total=False):
    tags: Annotated[list[str], tagged]
    plain: str


async def test_prepare_fixes_writes_when_they_are_made() -> None:
    cp = MemoryCheckpointer()
    g = StateGraph(Tagged)

    async def node(state: Tagged) -> dict[str, Any]:
        return {"tags": ["b", "#c"], "plain": "p"}

    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    graph = g.compile(checkpointer=cp)
    events = []
    async with graph.stream({"tags": ["a"]}, thread="t", modes="updates") as stream:
        events = [e async for e in stream]
    assert [e.update for e in events if isinstance(e, Update)] == [
        {"tags": ["#b", "#c"], "plain": "p"}
    ]
    assert (await graph.get_state("t")).values == {"tags": ["#a", "#b", "#c"], "plain": "p"}
    await graph.update_state("t", {"tags": ["d"]})
    assert (await graph.get_state("t")).values["tags"] == ["#a", "#b", "#c", "#d"]


async def test_a_call_that_finishes_as_the_run_is_cancelled_is_still_recorded(
    cp: Checkpointer,
) -> None:
    calls = Counter[str]()
    scope = trio.CancelScope()

    async def effect() -> str:
        calls["effect"] += 1
        scope.cancel()  # the run is cancelled just as the side effect completes
        return "done"

    async def node(state: S) -> dict[str, Any]:
        return {"out": [await once("effect", effect)]}

    graph = single(node, cp)
    with scope:
        await graph.ainvoke({}, thread="t")
    assert scope.cancelled_caught
    assert await graph.ainvoke(None, thread="t") == {"out": ["done"]}
    assert calls == Counter(effect=1)


async def test_an_unstorable_result_names_the_call_and_keeps_finished_siblings(
    cp: Checkpointer,
) -> None:
    async def fine(state: S) -> dict[str, Any]:
        return {"out": ["fine"]}

    async def bad(state: S) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        await once("k", _returns_an_object)
        return {}

    g = StateGraph(S)
    g.add_node("fine", fine).add_node("bad", bad)
    g.add_edge(START, "fine").add_edge(START, "bad").add_edge("fine", END).add_edge("bad", END)
    graph = g.compile(checkpointer=cp)
    with pytest.raises(SerializationError, match=r"result of once\('k'\) in node 'bad'") as info:
        await graph.ainvoke({}, thread="t")
    assert info.value.__notes__ == ["in node 'bad', step 1"]
    record = await cp.get("t", "")
    assert record is not None
    assert record.pending is not None
    assert b'"fine"' in record.pending  # the sibling's finished write was kept


async def _returns_an_object() -> object:
    return object()

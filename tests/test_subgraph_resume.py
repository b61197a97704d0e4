"""Subgraphs on a durable thread resume from their own last checkpoint after an
error, a cancellation or a fork's answers; a fork re-runs them; and a run's
``max_concurrency`` bounds its subgraphs' node tasks too.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.testing

from trigraph import END, START, Command, CompiledGraph, StateGraph, interrupt
from trigraph.abc import Checkpointer


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def chain(names: list[str], behave: Any, *, checkpointer: Checkpointer | None = None,
          name: str = "graph") -> CompiledGraph:
    g = StateGraph(S)
    prev = START
    for n in names:
        async def node(state: S, n: str = n) -> dict[str, Any]:
            await behave(n)
            return {"log": [n]}

        g.add_node(n, node).add_edge(prev, n)
        prev = n
    g.add_edge(prev, END)
    return g.compile(checkpointer=checkpointer, name=name)


def parent_of(sub: CompiledGraph, cp: Checkpointer, behave: Any) -> CompiledGraph:
    g = StateGraph(S)

    async def before(state: S) -> dict[str, Any]:
        await behave("before")
        return {"log": ["before"]}

    async def after(state: S) -> dict[str, Any]:
        await behave("after")
        return {"log": ["after"]}

    g.add_node("before", before).add_node("sub", sub).add_node("after", after)
    g.add_edge(START, "before").add_edge("before", "sub").add_edge("sub", "after")
    g.add_edge("after", END)
    return g.compile(checkpointer=cp)


EXPECTED = {"log": ["before", "s1", "s2", "s3", "after"]}


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
@pytest.mark.parametrize("how", ["error", "cancel"])
async def test_a_subgraph_resumes_from_its_own_last_checkpoint(
    cp: Checkpointer, how: str, durability: str
) -> None:
    runs = Counter[str]()
    failing = True
    scope = trio.CancelScope()

    async def behave(name: str) -> None:
        runs[name] += 1
        if name == "s3" and failing:
            if how == "error":
                raise RuntimeError("s3 failed")
            scope.cancel()
            await trio.sleep_forever()

    graph = parent_of(chain(["s1", "s2", "s3"], behave), cp, behave)
    if how == "error":
        with pytest.raises(RuntimeError, match="s3 failed"):
            await graph.ainvoke({"log": []}, thread="t", durability=durability)
    else:
        with scope:
            await graph.ainvoke({"log": []}, thread="t", durability=durability)
    assert runs == Counter(before=1, s1=1, s2=1, s3=1)
    failing = False
    assert await graph.ainvoke(None, thread="t", durability=durability) == EXPECTED
    # s1 and s2 finished in the subgraph before it stopped: they did not run again.
    assert runs == Counter(before=1, s1=1, s2=1, s3=2, after=1)


async def test_nested_subgraphs_resume_at_every_level(cp: Checkpointer) -> None:
    runs = Counter[str]()
    failing = True

    async def behave(name: str) -> None:
        runs[name] += 1
        if name == "i2" and failing:
            raise RuntimeError("deep")

    inner = chain(["i1", "i2"], behave, name="inner")
    g = StateGraph(S)

    async def m1(state: S) -> dict[str, Any]:
        runs["m1"] += 1
        return {"log": ["m1"]}

    g.add_node(m1).add_node("inner", inner).add_edge(START, "m1").add_edge("m1", "inner")
    g.add_edge("inner", END)
    middle = g.compile(name="middle")
    graph = parent_of(middle, cp, behave)
    with pytest.raises(RuntimeError, match="deep"):
        await graph.ainvoke({"log": []}, thread="t")
    failing = False
    assert await graph.ainvoke(None, thread="t") == {
        "log": ["before", "m1", "i1", "i2", "after"]
    }
    assert runs == Counter(before=1, m1=1, i1=1, i2=2, after=1)


async def test_a_fork_before_the_subgraph_runs_it_afresh(cp: Checkpointer) -> None:
    runs = Counter[str]()

    async def behave(name: str) -> None:
        runs[name] += 1

    graph = parent_of(chain(["s1", "s2", "s3"], behave), cp, behave)
    assert await graph.ainvoke({"log": []}, thread="t") == EXPECTED
    history = await graph.get_state_history("t")
    at_sub = next(h for h in history if h.next == ("sub",))
    assert await graph.ainvoke(None, thread="t", checkpoint_id=at_sub.checkpoint_id) == EXPECTED
    assert runs == Counter(before=1, s1=2, s2=2, s3=2, after=2)


async def test_a_fork_answering_a_subgraph_interrupt_continues_it(cp: Checkpointer) -> None:
    runs = Counter[str]()

    async def behave(name: str) -> None:
        runs[name] += 1
        if name == "s2":
            interrupt("s2?")

    graph = parent_of(chain(["s1", "s2", "s3"], behave), cp, behave)
    paused = await graph.ainvoke({"log": []}, thread="t")
    assert [i.value for i in paused["__interrupt__"]] == ["s2?"]
    at_pause = (await graph.get_state("t")).checkpoint_id
    assert await graph.ainvoke(Command(resume="a"), thread="t") == EXPECTED
    # Fork from the paused checkpoint and answer again: s1 does not re-run there either.
    out = await graph.ainvoke(Command(resume="b"), thread="t", checkpoint_id=at_pause)
    assert out == EXPECTED
    assert runs == Counter(before=1, s1=1, s2=3, s3=2, after=2)


async def test_run_max_concurrency_bounds_subgraph_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    running = 0
    peak = 0

    async def work(state: S) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return {"log": ["w"]}

    sub = StateGraph(S)
    for i in range(4):
        sub.add_node(f"w{i}", work).add_edge(START, f"w{i}").add_edge(f"w{i}", END)
    subgraph = sub.compile(name="sub")
    g = StateGraph(S)
    for i in range(3):
        g.add_node(f"sub{i}", subgraph).add_edge(START, f"sub{i}").add_edge(f"sub{i}", END)
    g.add_node("direct", work).add_edge(START, "direct").add_edge("direct", END)
    graph = g.compile()
    start = trio.current_time()
    out = await graph.ainvoke({"log": []}, max_concurrency=3)
    assert out == {"log": ["w"] * 13}
    assert peak == 3
    assert trio.current_time() - start == 5  # 13 tasks of 1 s, 3 at a time
    peak = 0
    await graph.ainvoke({"log": []})
    assert peak == 13


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_an_interrupt_in_a_subgraph_is_asked_once(
    cp: Checkpointer, durability: str
) -> None:
    runs = Counter[str]()

    async def behave(name: str) -> None:
        runs[name] += 1
        if name == "s2":
            interrupt("s2?")

    graph = parent_of(chain(["s1", "s2", "s3"], behave), cp, behave)
    paused = await graph.ainvoke({"log": []}, thread="t", durability=durability)
    assert [i.value for i in paused["__interrupt__"]] == ["s2?"]
    done = await graph.ainvoke(Command(resume="ok"), thread="t", durability=durability)
    assert done == EXPECTED
    assert runs == Counter(before=1, s1=1, s2=2, s3=1, after=1)


async def test_a_fork_that_answers_a_subgraph_can_be_answered_again(cp: Checkpointer) -> None:
    async def ask(state: S) -> dict[str, Any]:
        first = interrupt("first?")
        second = interrupt("second?")
        return {"log": [f"{first}/{second}"]}

    sub = StateGraph(S)
    sub.add_node(ask).add_edge(START, "ask").add_edge("ask", END)
    g = StateGraph(S)
    g.add_node("sub", sub.compile(name="sub")).add_edge(START, "sub").add_edge("sub", END)
    graph = g.compile(checkpointer=cp)
    await graph.ainvoke({"log": []}, thread="t")
    at_first = (await graph.get_state("t")).checkpoint_id
    original = await cp.history("t", "sub:1.0")
    fork = await graph.ainvoke(Command(resume="x"), thread="t", checkpoint_id=at_first)
    assert [i.value for i in fork["__interrupt__"]] == ["second?"]
    assert await graph.ainvoke(Command(resume="y"), thread="t") == {"log": ["x/y"]}
    # The original branch's subgraph records were left as they were.
    after = {r.id: r for r in await cp.history("t", "sub:1.0")}
    assert all(after[r.id] == r for r in original)


async def test_pruning_does_not_change_what_a_resumed_subgraph_contributes(
    cp: Checkpointer,
) -> None:
    failing = True

    async def behave(name: str) -> None:
        if name == "s3" and failing:
            raise RuntimeError("s3 failed")

    graph = parent_of(chain(["s1", "s2", "s3"], behave), cp, behave)
    with pytest.raises(RuntimeError):
        await graph.ainvoke({"log": []}, thread="t")
    await cp.prune("t", keep=1)
    failing = False
    assert await graph.ainvoke(None, thread="t") == EXPECTED


"""Durable threads (``_durable``): checkpoints after every superstep, resuming,
time travel, ``update_state``, human-in-the-loop interrupts, the three
durability modes, and what cancellation, timeouts and ``stop=`` leave behind.

Tests whose behaviour does not depend on the store run on every checkpointer
(the ``store`` fixture: ``conftest.stores``); the SQLite and PostgreSQL
variants also reopen the storage with a new checkpointer and a newly compiled
graph where a test says "rebuilt".
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

import attrs
import pytest
import trio
import trio.testing
from _stores import Stores

from trigraph import (
    END,
    START,
    Command,
    CompiledGraph,
    EmptyInputError,
    GraphValidationError,
    Interrupt,
    InvalidUpdateError,
    MemoryCheckpointer,
    NodeTimeoutError,
    RunTimeoutError,
    Send,
    StateGraph,
    TrigraphError,
    interrupt,
)
from trigraph.abc import Checkpointer, CheckpointRecord, ThreadLock
from trigraph.events import Event, Interrupted, Update

# -- fixtures and helpers ---------------------------------------------------


Store = Stores


@pytest.fixture
def store(stores: Stores) -> Stores:
    """The checkpointer under test (every kind, from ``conftest.stores``)."""
    return stores


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    n: int
    ok: bool


Node = Callable[[Any], Awaitable[Any]]


def appender(name: str, calls: Counter[str], fail_first: bool = False) -> Node:
    """A node that counts its calls and appends its name to ``log``."""

    async def node(state: Any) -> dict[str, Any]:
        calls[name] += 1
        if fail_first and calls[name] == 1:
            raise RuntimeError(f"{name} failed")
        return {"log": [name]}

    return node


def chain_graph(cp: Checkpointer | None, calls: Counter[str], **compile_kw: Any) -> CompiledGraph:
    """START -> a -> b -> c -> END."""
    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, appender(name, calls))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=cp, **compile_kw)


def diamond_graph(cp: Checkpointer, calls: Counter[str], *, fail: str = "c") -> CompiledGraph:
    """START -> a -> (b, c) -> d -> END, where *fail* raises on its first call."""
    g = StateGraph(State)
    for name in "abcd":
        g.add_node(name, appender(name, calls, fail_first=name == fail))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c")
    g.add_edge(["b", "c"], "d").add_edge("d", END)
    return g.compile(checkpointer=cp)


Hook = Callable[[int], Awaitable[None]]


def loop_graph(
    cp: Checkpointer, steps: int, calls: Counter[str], hook: Hook | None = None,
    *, timeout: float | None = None,
) -> CompiledGraph:
    """One node ``inc`` looping *steps* times; in step *s* it sees ``n == s - 1``."""

    async def inc(state: State) -> dict[str, Any]:
        calls["inc"] += 1
        step = state["n"] + 1
        if hook is not None:
            await hook(step)
        return {"n": step, "log": [f"s{step}"]}

    def route(state: State) -> str:
        return END if state["n"] >= steps else "inc"

    g = StateGraph(State)
    g.add_node("inc", inc, timeout=timeout)
    g.add_edge(START, "inc").add_conditional_edges("inc", route)
    return g.compile(checkpointer=cp)


def loop_values(step: int) -> dict[str, Any]:
    """The state of a ``loop_graph`` thread after *step* (input ``{"n": 0, "log": []}``)."""
    return {"n": step, "log": [f"s{i}" for i in range(1, step + 1)]}


def ask_graph(cp: Checkpointer, calls: Counter[str], **compile_kw: Any) -> CompiledGraph:
    """START -> a -> ask -> c -> END; ``ask`` calls ``interrupt("approve?")``."""

    async def ask(state: State) -> dict[str, Any]:
        calls["ask"] += 1
        answer = interrupt("approve?")
        return {"log": [f"ask:{answer}"]}

    g = StateGraph(State)
    g.add_node("a", appender("a", calls)).add_node("ask", ask).add_node("c", appender("c", calls))
    g.add_edge(START, "a").add_edge("a", "ask").add_edge("ask", "c").add_edge("c", END)
    return g.compile(checkpointer=cp, **compile_kw)


def parallel_ask_graph(cp: Checkpointer, calls: Counter[str]) -> CompiledGraph:
    """START -> a -> (ask1, ask2, plain) -> done: two tasks of step 2 interrupt."""

    def asker(name: str) -> Node:
        async def node(state: State) -> dict[str, Any]:
            calls[name] += 1
            answer = interrupt(f"{name}?")
            return {"log": [f"{name}:{answer}"]}

        return node

    g = StateGraph(State)
    g.add_node("a", appender("a", calls))
    g.add_node("ask1", asker("ask1")).add_node("ask2", asker("ask2"))
    g.add_node("plain", appender("plain", calls)).add_node("done", appender("done", calls))
    g.add_edge(START, "a")
    for name in ("ask1", "ask2", "plain"):
        g.add_edge("a", name)
    g.add_edge(["ask1", "ask2", "plain"], "done").add_edge("done", END)
    return g.compile(checkpointer=cp)


async def records(cp: Checkpointer, thread: str) -> list[CheckpointRecord]:
    return await cp.history(thread, "")


def assert_chain(history: Sequence[CheckpointRecord]) -> None:
    """Records newest first, each the parent of the one before, steps 1 apart."""
    for newer, older in itertools.pairwise(history):
        assert newer.parent_id == older.id
        assert newer.step == older.step + 1
    assert history[-1].parent_id is None
    assert history[-1].step == 0


# -- errors of use ------------------------------------------------------------


async def test_thread_without_checkpointer_is_an_error() -> None:
    graph = chain_graph(None, Counter())
    with pytest.raises(TrigraphError, match="checkpointer"):
        await graph.ainvoke({"log": []}, thread="t")

    async def consume() -> None:
        async with graph.stream({"log": []}, thread="t") as events:
            async for _ in events:
                pass

    with pytest.raises(TrigraphError, match="checkpointer"):
        await consume()
    with pytest.raises(TrigraphError, match="checkpointer"):
        await graph.get_state("t")


async def test_interrupt_without_checkpointer_is_an_error() -> None:
    async def ask(state: State) -> None:
        interrupt("?")

    g = StateGraph(State)
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    with pytest.raises(RuntimeError, match="checkpointer"):
        await g.compile().ainvoke({"log": []})
    # A checkpointer but no thread: still nowhere to wait.
    with pytest.raises(RuntimeError, match="checkpointer"):
        await g.compile(checkpointer=MemoryCheckpointer()).ainvoke({"log": []})


def test_interrupt_before_without_checkpointer_is_an_error() -> None:
    g = StateGraph(State)
    g.add_node("a", appender("a", Counter())).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(GraphValidationError, match="checkpointer"):
        g.compile(interrupt_before=["a"])


async def test_continuing_an_unknown_thread_is_an_error(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    with pytest.raises(EmptyInputError, match="nope"):
        await graph.ainvoke(None, thread="nope")
    with pytest.raises(KeyError):
        await graph.get_state("nope")


async def test_resume_without_pending_interrupt_is_an_error(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    await graph.ainvoke({"log": []}, thread="t")
    with pytest.raises(EmptyInputError, match="interrupt"):
        await graph.ainvoke(Command(resume="x"), thread="t")


async def test_unknown_durability_is_an_error(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    with pytest.raises(ValueError, match="durability"):
        await graph.ainvoke({"log": []}, thread="t", durability="never")  # type: ignore[arg-type]


# -- checkpoints and get_state ----------------------------------------------------


async def test_get_state_after_a_complete_run(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = chain_graph(store.cp, calls)
    final = await graph.ainvoke({"log": []}, thread="t")
    assert final == {"log": ["a", "b", "c"]}
    snap = await graph.get_state("t")
    assert snap.values == {"log": ["a", "b", "c"]}
    assert snap.next == ()
    assert snap.step == 3
    assert snap.interrupts == ()
    assert (await graph.get_state("t", checkpoint_id=snap.checkpoint_id)) == snap
    with pytest.raises(KeyError):
        await graph.get_state("t", checkpoint_id="no-such-checkpoint")


async def test_a_checkpoint_after_every_superstep(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    await graph.ainvoke({"log": []}, thread="t")
    history = await graph.get_state_history("t")
    assert [s.step for s in history] == [3, 2, 1, 0]
    assert [s.next for s in history] == [(), ("c",), ("b",), ("a",)]
    assert [s.values["log"] for s in history] == [["a", "b", "c"], ["a", "b"], ["a"], []]
    assert [s.parent_checkpoint_id for s in history] == [
        *(s.checkpoint_id for s in history[1:]), None
    ]
    assert_chain(await records(store.cp, "t"))
    # Each snapshot of the history is what get_state says of that checkpoint.
    for snap in history:
        assert await graph.get_state("t", checkpoint_id=snap.checkpoint_id) == snap


async def test_state_survives_a_rebuilt_graph_and_checkpointer(store: Store) -> None:
    await chain_graph(store.cp, Counter()).ainvoke({"log": []}, thread="t")
    before = await chain_graph(store.cp, Counter()).get_state_history("t")
    rebuilt = chain_graph(store.reopen(), Counter())
    assert await rebuilt.get_state_history("t") == before


async def test_input_on_an_existing_thread_is_applied_onto_its_state(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = chain_graph(store.cp, calls)
    await graph.ainvoke({"log": ["x"]}, thread="t")
    final = await graph.ainvoke({"log": ["y"]}, thread="t")
    assert final == {"log": ["x", "a", "b", "c", "y", "a", "b", "c"]}
    assert calls == {"a": 2, "b": 2, "c": 2}
    assert (await graph.get_state("t")).step > 3


async def test_none_on_a_finished_thread_runs_nothing(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = chain_graph(store.cp, calls)
    await graph.ainvoke({"log": []}, thread="t")
    assert await graph.ainvoke(None, thread="t") == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}


async def test_threads_are_independent_and_can_run_at_once(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = loop_graph(store.cp, 5, calls)
    results: dict[str, dict[str, Any]] = {}

    async def one(i: int) -> None:
        results[f"t{i}"] = await graph.ainvoke({"n": i, "log": []}, thread=f"t{i}")

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(one, i)
    for i in range(4):
        expected_log = [f"s{s}" for s in range(i + 1, 6)] if i < 5 else []
        assert results[f"t{i}"] == {"n": max(5, i + 1), "log": expected_log}
        snap = await graph.get_state(f"t{i}")
        assert snap.values == results[f"t{i}"]
        assert len(await graph.get_state_history(f"t{i}")) == len(expected_log) + 1
    assert sorted(await store.cp.threads()) == ["t0", "t1", "t2", "t3"]


# -- a failed step keeps what finished ----------------------------------------------


async def test_failed_step_keeps_finished_writes_and_resumes(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = diamond_graph(store.cp, calls, fail="c")
    with pytest.raises(RuntimeError, match="c failed"):
        await graph.ainvoke({"log": []}, thread="t")
    snap = await graph.get_state("t")
    # No checkpoint for the failed step; b's write is pending, not applied.
    assert snap.step == 1
    assert snap.values == {"log": ["a"]}
    assert "c" in snap.next
    assert len(await graph.get_state_history("t")) == 2

    rebuilt = diamond_graph(store.reopen(), calls, fail="c")
    final = await rebuilt.ainvoke(None, thread="t")
    assert final == {"log": ["a", "b", "c", "d"]}
    assert calls == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert (await rebuilt.get_state("t")).step == 3

async def test_next_lists_only_the_tasks_still_to_run(store: Store) -> None:
    # After a failed step, the task that finished (its writes kept, not re-run)
    # is not "still to run"; nor are the tasks of a partly answered step that
    # finished.
    graph = diamond_graph(store.cp, Counter(), fail="c")
    with pytest.raises(RuntimeError, match="c failed"):
        await graph.ainvoke({"log": []}, thread="failed")
    assert (await graph.get_state("failed")).next == ("c",)

    asks = parallel_ask_graph(store.cp, Counter())
    paused = await asks.ainvoke({"log": []}, thread="asked")
    assert (await asks.get_state("asked")).next == ("ask1", "ask2")
    ask2 = next(i for i in paused["__interrupt__"] if i.node == "ask2")
    await asks.ainvoke(Command(resume={ask2.id: "two"}), thread="asked")
    assert (await asks.get_state("asked")).next == ("ask1",)


async def test_failed_step_twice_keeps_all_finished_writes(store: Store) -> None:
    calls: Counter[str] = Counter()
    failures = {"b": 1, "c": 2}

    def node(name: str) -> Node:
        async def fn(state: State) -> dict[str, Any]:
            calls[name] += 1
            if calls[name] <= failures.get(name, 0):
                raise RuntimeError(f"{name} failed")
            return {"log": [name]}

        return fn

    g = StateGraph(State)
    for name in ("a", "b", "c", "e", "d"):
        g.add_node(name, node(name))
    g.add_edge(START, "a")
    for name in ("b", "c", "e"):
        g.add_edge("a", name)
    g.add_edge(["b", "c", "e"], "d").add_edge("d", END)
    graph = g.compile(checkpointer=store.cp)

    with pytest.raises((RuntimeError, ExceptionGroup)):  # b and c fail together
        await graph.ainvoke({"log": []}, thread="t")
    with pytest.raises(RuntimeError, match="c failed"):
        await graph.ainvoke(None, thread="t")
    final = await graph.ainvoke(None, thread="t")
    assert final == {"log": ["a", "b", "c", "e", "d"]}
    assert calls == {"a": 1, "b": 2, "c": 3, "e": 1, "d": 1}


async def test_failed_send_task_does_not_rerun_its_finished_siblings(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def plan(state: State) -> dict[str, Any]:
        return {"log": ["plan"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("work", {"i": i}) for i in range(3)]

    async def work(arg: dict[str, int]) -> dict[str, Any]:
        i = arg["i"]
        calls[f"w{i}"] += 1
        if i == 1 and calls["w1"] == 1:
            raise RuntimeError("w1 failed")
        return {"log": [f"w{i}"]}

    def build(cp: Checkpointer) -> CompiledGraph:
        g = StateGraph(State)
        g.add_node("plan", plan).add_node("work", work)
        g.add_edge(START, "plan").add_conditional_edges("plan", fan_out).add_edge("work", END)
        return g.compile(checkpointer=cp)

    with pytest.raises(RuntimeError, match="w1 failed"):
        await build(store.cp).ainvoke({"log": []}, thread="t")
    snap = await build(store.cp).get_state("t")
    assert snap.next == ("work",)
    final = await build(store.reopen()).ainvoke(None, thread="t")
    assert final == {"log": ["plan", "w0", "w1", "w2"]}
    assert calls == {"w0": 1, "w1": 2, "w2": 1}


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_node_error_reaches_caller_as_itself(
    store: Store, durability: Any
) -> None:
    graph = diamond_graph(store.cp, Counter(), fail="c")
    with pytest.raises(RuntimeError, match="c failed") as info:
        await graph.ainvoke({"log": []}, thread="t", durability=durability)
    assert type(info.value) is RuntimeError
    assert any("'c'" in note for note in getattr(info.value, "__notes__", []))


# -- Send and joins survive in the checkpoint --------------------------------------


async def test_pending_sends_and_partial_joins_survive_a_pause(store: Store) -> None:
    calls: Counter[str] = Counter()

    def fan_out(state: State) -> list[Send]:
        return [Send("work", {"i": i, "tag": ["x", i]}) for i in range(3)]

    async def work(arg: dict[str, Any]) -> dict[str, Any]:
        calls[f"w{arg['i']}"] += 1
        return {"log": [f"w{arg['i']}:{arg['tag']}"]}

    def build(cp: Checkpointer) -> CompiledGraph:
        # Step 1: a, b1 (a's Sends and its half of the join); step 2: work x3, b2;
        # step 3: j (needs a and b2).
        g = StateGraph(State)
        g.add_node("a", appender("a", calls)).add_node("b1", appender("b1", calls))
        g.add_node("b2", appender("b2", calls)).add_node("work", work)
        g.add_node("j", appender("j", calls))
        g.add_edge(START, "a").add_edge(START, "b1").add_edge("b1", "b2")
        g.add_conditional_edges("a", fan_out)
        g.add_edge(["a", "b2"], "j").add_edge("j", END).add_edge("work", END)
        return g.compile(checkpointer=cp, interrupt_after=["a"])

    await build(store.cp).ainvoke({"log": []}, thread="t")
    snap = await build(store.cp).get_state("t")
    assert snap.step == 1
    assert set(snap.next) == {"b2", "work"}
    final = await build(store.reopen()).ainvoke(None, thread="t")
    assert final["log"] == ["a", "b1", "b2", "w0:['x', 0]", "w1:['x', 1]", "w2:['x', 2]", "j"]
    assert calls == {"a": 1, "b1": 1, "b2": 1, "w0": 1, "w1": 1, "w2": 1, "j": 1}


# -- interrupts ---------------------------------------------------------------------


async def test_interrupt_pauses_and_resume_reruns_the_node(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t")
    (intr,) = paused["__interrupt__"]
    assert isinstance(intr, Interrupt)
    assert (intr.value, intr.node) == ("approve?", "ask")
    assert paused["log"] == ["a"]
    snap = await graph.get_state("t")
    assert snap.interrupts == (intr,)
    assert snap.next == ("ask",)
    assert calls == {"a": 1, "ask": 1}

    final = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert final == {"log": ["a", "ask:yes", "c"]}
    assert calls == {"a": 1, "ask": 2, "c": 1}
    done = await graph.get_state("t")
    assert done.interrupts == ()
    assert done.next == ()


async def test_interrupted_event_ends_the_stream(store: Store) -> None:
    graph = ask_graph(store.cp, Counter())
    async with graph.stream({"log": []}, modes=("updates", "values"), thread="t") as events:
        got: list[Event] = [event async for event in events]
    assert isinstance(got[-1], Interrupted)
    assert (got[-1].node, got[-1].value) == ("ask", "approve?")
    snap = await graph.get_state("t")
    assert got[-1].id == snap.interrupts[0].id
    updates = [e for e in got if isinstance(e, Update)]
    assert [u.node for u in updates] == ["a"]


async def test_several_interrupts_in_one_node_resume_in_order(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def form(state: State) -> dict[str, Any]:
        calls["form"] += 1
        name = interrupt("name?")
        age = interrupt("age?")
        return {"log": [f"{name}/{age}"]}

    g = StateGraph(State)
    g.add_node("form", form).add_edge(START, "form").add_edge("form", END)
    graph = g.compile(checkpointer=store.cp)

    first = (await graph.ainvoke({"log": []}, thread="t"))["__interrupt__"]
    assert [i.value for i in first] == ["name?"]
    second = (await graph.ainvoke(Command(resume="ann"), thread="t"))["__interrupt__"]
    assert [i.value for i in second] == ["age?"]
    assert second[0].id != first[0].id
    final = await graph.ainvoke(Command(resume=42), thread="t")
    assert final == {"log": ["ann/42"]}
    assert calls["form"] == 3


async def test_interrupt_ids_are_stable(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = parallel_ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t")
    ids = [i.id for i in paused["__interrupt__"]]
    assert len(set(ids)) == 2
    assert [i.id for i in (await graph.get_state("t")).interrupts] == ids
    assert [i.id for i in (await graph.get_state("t")).interrupts] == ids
    rebuilt = parallel_ask_graph(store.reopen(), calls)
    assert [i.id for i in (await rebuilt.get_state("t")).interrupts] == ids
    assert [i.id for i in (await rebuilt.get_state_history("t"))[0].interrupts] == ids
    # Continuing without an answer asks the same questions again, under the same ids.
    again = await rebuilt.ainvoke(None, thread="t")
    assert [i.id for i in again["__interrupt__"]] == ids
    assert [i.id for i in (await rebuilt.get_state("t")).interrupts] == ids
    assert calls == {"a": 1, "ask1": 2, "ask2": 2, "plain": 1}


async def test_parallel_interrupts_are_answered_each_with_its_own_value(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = parallel_ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t")
    intrs = {i.node: i for i in paused["__interrupt__"]}
    assert {n: i.value for n, i in intrs.items()} == {"ask1": "ask1?", "ask2": "ask2?"}
    snap = await graph.get_state("t")
    assert set(snap.interrupts) == set(intrs.values())
    assert calls == {"a": 1, "ask1": 1, "ask2": 1, "plain": 1}

    # A bare value is ambiguous with two pending: a clear error, nothing written.
    with pytest.raises(ValueError, match="interrupt") as info:
        await graph.ainvoke(Command(resume="?"), thread="t")
    for intr in intrs.values():
        assert intr.id in str(info.value)
    assert await graph.get_state("t") == snap

    final = await graph.ainvoke(
        Command(resume={intrs["ask1"].id: "one", intrs["ask2"].id: "two"}), thread="t"
    )
    assert final == {"log": ["a", "ask1:one", "ask2:two", "plain", "done"]}
    assert calls == {"a": 1, "ask1": 2, "ask2": 2, "plain": 1, "done": 1}


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_parallel_interrupts_answered_one_at_a_time(store: Store, durability: Any) -> None:
    calls: Counter[str] = Counter()
    graph = parallel_ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t", durability=durability)
    intrs = {i.node: i for i in paused["__interrupt__"]}

    # Answer ask2 only: ask1 is still pending, under the same id.
    again = await graph.ainvoke(
        Command(resume={intrs["ask2"].id: "two"}), thread="t", durability=durability
    )
    assert again["__interrupt__"] == (intrs["ask1"],)
    snap = await graph.get_state("t")
    assert snap.interrupts == (intrs["ask1"],)
    assert "ask1" in snap.next

    # Now exactly one is pending, so a bare value is fine; and from a rebuilt graph.
    rebuilt = parallel_ask_graph(store.reopen(), calls)
    final = await rebuilt.ainvoke(Command(resume="one"), thread="t", durability=durability)
    assert final == {"log": ["a", "ask1:one", "ask2:two", "plain", "done"]}
    # ask2 finished on the first resume and is not run again on the second.
    assert calls == {"a": 1, "ask1": 3, "ask2": 2, "plain": 1, "done": 1}


async def test_resume_with_an_unknown_interrupt_id_is_an_error(store: Store) -> None:
    graph = parallel_ask_graph(store.cp, Counter())
    await graph.ainvoke({"log": []}, thread="t")
    with pytest.raises(ValueError, match="interrupt"):
        await graph.ainvoke(Command(resume={"not-an-id": 1}), thread="t")


async def test_interrupts_inside_send_fan_out(store: Store) -> None:
    calls: Counter[str] = Counter()

    def fan_out(state: State) -> list[Send]:
        return [Send("review", {"item": i}) for i in range(5)]

    async def review(arg: dict[str, int]) -> dict[str, Any]:
        i = arg["item"]
        calls[f"r{i}"] += 1
        verdict = interrupt({"item": i}) if i % 2 == 0 else "auto"
        return {"log": [f"{i}:{verdict}"]}

    def build(cp: Checkpointer) -> CompiledGraph:
        g = StateGraph(State)
        g.add_node("plan", appender("plan", calls)).add_node("review", review)
        g.add_edge(START, "plan").add_conditional_edges("plan", fan_out)
        g.add_edge("review", END)
        return g.compile(checkpointer=cp)

    paused = await build(store.cp).ainvoke({"log": []}, thread="t")
    intrs = paused["__interrupt__"]
    assert sorted(i.value["item"] for i in intrs) == [0, 2, 4]
    assert all(i.node == "review" for i in intrs)
    assert len({i.id for i in intrs}) == 3
    snap = await build(store.cp).get_state("t")
    assert sorted(snap.interrupts, key=lambda i: i.id) == sorted(intrs, key=lambda i: i.id)

    by_item = {i.value["item"]: i.id for i in intrs}
    # Answer item 2 first, from a rebuilt graph; 0 and 4 stay pending.
    rebuilt = build(store.reopen())
    partial = await rebuilt.ainvoke(Command(resume={by_item[2]: "ok2"}), thread="t")
    assert {i.id for i in partial["__interrupt__"]} == {by_item[0], by_item[4]}
    final = await rebuilt.ainvoke(
        Command(resume={by_item[0]: "ok0", by_item[4]: "ok4"}), thread="t"
    )
    assert final == {"log": ["plan", "0:ok0", "1:auto", "2:ok2", "3:auto", "4:ok4"]}
    assert calls == {"plan": 1, "r0": 3, "r1": 1, "r2": 2, "r3": 1, "r4": 3}


async def test_interrupt_before_and_after(store: Store) -> None:
    calls: Counter[str] = Counter()
    before = chain_graph(store.cp, calls, interrupt_before=["b"])
    async with before.stream({"log": []}, modes=("updates",), thread="t1") as events:
        got = [e async for e in events]
    assert isinstance(got[-1], Interrupted)
    assert got[-1].node == "b"
    snap = await before.get_state("t1")
    assert (snap.values, snap.next) == ({"log": ["a"]}, ("b",))
    assert calls == {"a": 1}
    assert await before.ainvoke(None, thread="t1") == {"log": ["a", "b", "c"]}

    calls.clear()
    after = chain_graph(store.cp, calls, interrupt_after=["a"])
    paused = await after.ainvoke({"log": []}, thread="t2")
    assert paused["log"] == ["a"]
    snap = await after.get_state("t2")
    assert snap.next == ("b",)
    assert await after.ainvoke(None, thread="t2") == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}


async def test_parallel_interrupts_each_end_the_stream_with_an_event(store: Store) -> None:
    graph = parallel_ask_graph(store.cp, Counter())
    async with graph.stream({"log": []}, modes=("updates",), thread="t") as events:
        got: list[Event] = [event async for event in events]
    tail = [e for e in got if isinstance(e, Interrupted)]
    assert got[-len(tail):] == tail
    snap = await graph.get_state("t")
    assert sorted((e.node, e.id, e.value) for e in tail) == sorted(
        (i.node, i.id, i.value) for i in snap.interrupts
    )
    assert len(tail) == 2


async def test_two_interrupts_in_one_of_two_parallel_tasks(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def form(state: State) -> dict[str, Any]:
        calls["form"] += 1
        first = interrupt("first?")
        second = interrupt(f"second after {first}?")
        return {"log": [f"form:{first}/{second}"]}

    async def single(state: State) -> dict[str, Any]:
        calls["single"] += 1
        return {"log": [f"single:{interrupt('single?')}"]}

    def build(cp: Checkpointer) -> CompiledGraph:
        g = StateGraph(State)
        g.add_node("form", form).add_node("single", single)
        g.add_edge(START, "form").add_edge(START, "single")
        g.add_edge("form", END).add_edge("single", END)
        return g.compile(checkpointer=cp)

    paused = await build(store.cp).ainvoke({"log": []}, thread="t")
    intrs = {i.value: i.id for i in paused["__interrupt__"]}
    assert sorted(intrs) == ["first?", "single?"]
    again = await build(store.reopen()).ainvoke(
        Command(resume={intrs["first?"]: "A", intrs["single?"]: "S"}), thread="t"
    )
    # form's first answer is kept while it waits for its second.
    (second,) = again["__interrupt__"]
    assert (second.value, second.node) == ("second after A?", "form")
    assert (await build(store.cp).get_state("t")).interrupts == (second,)
    final = await build(store.reopen()).ainvoke(Command(resume="B"), thread="t")
    assert final == {"log": ["form:A/B", "single:S"]}
    assert calls == {"form": 3, "single": 2}


async def test_interrupt_and_failure_in_the_same_step(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def ask(state: State) -> dict[str, Any]:
        calls["ask"] += 1
        return {"log": [f"ask:{interrupt('ask?')}"]}

    g = StateGraph(State)
    g.add_node("a", appender("a", calls)).add_node("ask", ask)
    g.add_node("bad", appender("bad", calls, fail_first=True))
    g.add_node("plain", appender("plain", calls))
    g.add_edge(START, "a")
    for name in ("ask", "bad", "plain"):
        g.add_edge("a", name).add_edge(name, END)
    graph = g.compile(checkpointer=store.cp)

    with pytest.raises(RuntimeError, match="bad failed"):
        await graph.ainvoke({"log": []}, thread="t")
    assert (await graph.get_state("t")).step == 1
    # Continuing re-runs the failed task; the question is asked (again).
    paused = await graph.ainvoke(None, thread="t")
    (intr,) = paused["__interrupt__"]
    assert intr.node == "ask"
    final = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert final == {"log": ["a", "ask:yes", "bad", "plain"]}
    assert calls["bad"] == 2
    assert calls["plain"] == 1


async def test_parallel_subgraph_interrupts(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def inner(state: State) -> dict[str, Any]:
        calls["inner"] += 1
        return {"log": [f"inner:{interrupt('inner?')}"]}

    sub = StateGraph(State)
    sub.add_node("inner", inner).add_edge(START, "inner").add_edge("inner", END)
    compiled_sub = sub.compile()

    def build(cp: Checkpointer) -> CompiledGraph:
        g = StateGraph(State)
        g.add_node("left", compiled_sub).add_node("right", compiled_sub)
        g.add_edge(START, "left").add_edge(START, "right")
        g.add_edge("left", END).add_edge("right", END)
        return g.compile(checkpointer=cp)

    paused = await build(store.cp).ainvoke({"log": []}, thread="t")
    intrs = paused["__interrupt__"]
    assert len(intrs) == 2
    assert len({i.id for i in intrs}) == 2
    with pytest.raises(ValueError, match="interrupt"):
        await build(store.cp).ainvoke(Command(resume="?"), thread="t")
    first, second = intrs
    partial = await build(store.reopen()).ainvoke(Command(resume={first.id: "L"}), thread="t")
    assert partial["__interrupt__"] == (second,)
    final = await build(store.reopen()).ainvoke(Command(resume={second.id: "R"}), thread="t")
    assert sorted(final["log"]) == ["inner:L", "inner:R"]
    assert calls["inner"] == 5  # 2 asks, then 2 + 1 resumed runs


async def test_interrupt_in_a_sync_node(store: Store) -> None:
    def ask(state: State) -> dict[str, Any]:
        return {"log": [f"sync:{interrupt('sync?')}"]}

    g = StateGraph(State)
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    graph = g.compile(checkpointer=store.cp)
    paused = await graph.ainvoke({"log": []}, thread="t")
    assert [i.value for i in paused["__interrupt__"]] == ["sync?"]
    assert await graph.ainvoke(Command(resume=1), thread="t") == {"log": ["sync:1"]}


async def test_except_exception_does_not_swallow_an_interrupt(store: Store) -> None:
    async def careless(state: State) -> dict[str, Any]:
        try:
            answer = interrupt("?")
        except Exception:
            return {"log": ["swallowed"]}
        return {"log": [f"got:{answer}"]}

    g = StateGraph(State)
    g.add_node("careless", careless).add_edge(START, "careless").add_edge("careless", END)
    graph = g.compile(checkpointer=store.cp)
    paused = await graph.ainvoke({"log": []}, thread="t")
    assert paused["log"] == []
    assert len(paused["__interrupt__"]) == 1
    assert await graph.ainvoke(Command(resume="x"), thread="t") == {"log": ["got:x"]}


async def test_interrupt_before_still_pauses_after_a_stop(store: Store) -> None:
    calls: Counter[str] = Counter()
    stop = trio.Event()

    async def b(state: State) -> dict[str, Any]:
        calls["b"] += 1
        stop.set()
        return {"log": ["b"]}

    g = StateGraph(State)
    g.add_node("a", appender("a", calls)).add_node("b", b).add_node("c", appender("c", calls))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    graph = g.compile(checkpointer=store.cp, interrupt_before=["c"])

    stopped = await graph.ainvoke({"log": []}, thread="t", stop=stop)
    assert stopped == {"log": ["a", "b"]}
    assert (await graph.get_state("t")).next == ("c",)
    # The thread never paused before c: continuing must pause there now.
    paused = await graph.ainvoke(None, thread="t")
    assert paused == {"log": ["a", "b"]}
    assert calls["c"] == 0
    assert await graph.ainvoke(None, thread="t") == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}


async def test_an_answer_survives_a_failure_of_the_resumed_node(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def ask(state: State) -> dict[str, Any]:
        calls["ask"] += 1
        answer = interrupt("?")
        if calls["ask"] == 2:
            raise RuntimeError("flaky after the answer")
        return {"log": [f"ask:{answer}"]}

    g = StateGraph(State)
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    graph = g.compile(checkpointer=store.cp)
    await graph.ainvoke({"log": []}, thread="t")
    with pytest.raises(RuntimeError, match="flaky"):
        await graph.ainvoke(Command(resume="yes"), thread="t")
    # The answer was given once; continuing uses it instead of asking again.
    assert await graph.ainvoke(None, thread="t") == {"log": ["ask:yes"]}
    assert calls["ask"] == 3


# -- time travel --------------------------------------------------------------------


async def test_fork_from_an_older_checkpoint(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = chain_graph(store.cp, calls)
    await graph.ainvoke({"log": []}, thread="t")
    history = await graph.get_state_history("t")
    after_a = history[2]
    assert after_a.step == 1

    final = await graph.ainvoke(None, thread="t", checkpoint_id=after_a.checkpoint_id)
    assert final == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 2, "c": 2}
    # The old checkpoint is unchanged, the old branch is kept, the fork is newest.
    assert await graph.get_state("t", checkpoint_id=after_a.checkpoint_id) == after_a
    new_history = await graph.get_state_history("t")
    assert new_history[-4:] == history
    assert len(new_history) > len(history)
    assert new_history[0] == await graph.get_state("t")
    ids = [s.checkpoint_id for s in new_history]
    assert len(set(ids)) == len(ids)
    # The new branch leads back to the checkpoint it forked from.
    parents = {s.checkpoint_id: s.parent_checkpoint_id for s in new_history}
    cur: str | None = new_history[0].checkpoint_id
    seen = []
    while cur is not None:
        seen.append(cur)
        cur = parents[cur]
    assert after_a.checkpoint_id in seen
    assert history[0].checkpoint_id not in seen


async def test_fork_fires_an_interrupt_again(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = ask_graph(store.cp, calls)
    await graph.ainvoke({"log": []}, thread="t")
    first_final = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert first_final["log"] == ["a", "ask:yes", "c"]
    first_head = (await graph.get_state("t")).checkpoint_id
    after_a = next(s for s in await graph.get_state_history("t") if s.step == 1)

    forked = await graph.ainvoke(None, thread="t", checkpoint_id=after_a.checkpoint_id)
    assert [i.value for i in forked["__interrupt__"]] == ["approve?"]
    assert len((await graph.get_state("t")).interrupts) == 1
    final = await graph.ainvoke(Command(resume="no"), thread="t")
    assert final == {"log": ["a", "ask:no", "c"]}
    assert calls == {"a": 1, "ask": 4, "c": 2}
    old = await graph.get_state("t", checkpoint_id=first_head)
    assert old.values["log"] == ["a", "ask:yes", "c"]


async def test_fork_can_answer_an_old_interrupt_differently(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = ask_graph(store.cp, calls)
    await graph.ainvoke({"log": []}, thread="t")
    paused_at = (await graph.get_state("t")).checkpoint_id
    await graph.ainvoke(Command(resume="yes"), thread="t")
    final = await graph.ainvoke(Command(resume="no"), thread="t", checkpoint_id=paused_at)
    assert final == {"log": ["a", "ask:no", "c"]}
    assert calls == {"a": 1, "ask": 3, "c": 2}


# -- update_state ---------------------------------------------------------------------


async def test_update_state_goes_through_reducers(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    await graph.ainvoke({"log": []}, thread="t")
    before = len(await graph.get_state_history("t"))
    new_id = await graph.update_state("t", {"log": ["x"], "n": 1})
    snap = await graph.get_state("t")
    assert snap.checkpoint_id == new_id
    assert snap.values == {"log": ["a", "b", "c", "x"], "n": 1}
    assert snap.next == ()
    await graph.update_state("t", {"n": 2})
    assert (await graph.get_state("t")).values == {"log": ["a", "b", "c", "x"], "n": 2}
    assert len(await graph.get_state_history("t")) == before + 2


async def test_update_state_as_node_continues_from_its_edges(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = chain_graph(store.cp, calls, interrupt_before=["b"])
    await graph.ainvoke({"log": []}, thread="t")
    await graph.update_state("t", {"log": ["B*"]}, as_node="b")
    snap = await graph.get_state("t")
    assert snap.next == ("c",)
    assert snap.values == {"log": ["a", "B*"]}
    assert await graph.ainvoke(None, thread="t") == {"log": ["a", "B*", "c"]}
    assert calls == {"a": 1, "c": 1}


async def test_update_state_as_node_reroutes_a_conditional_edge(store: Store) -> None:
    calls: Counter[str] = Counter()

    def route(state: State) -> str:
        return "good" if state.get("ok") else "bad"

    g = StateGraph(State)
    for name in ("check", "good", "bad"):
        g.add_node(name, appender(name, calls))
    g.add_edge(START, "check").add_conditional_edges("check", route)
    g.add_edge("good", END).add_edge("bad", END)
    graph = g.compile(checkpointer=store.cp, interrupt_before=["good", "bad"])

    await graph.ainvoke({"log": [], "ok": False}, thread="t")
    assert (await graph.get_state("t")).next == ("bad",)
    await graph.update_state("t", {"ok": True}, as_node="check")
    assert (await graph.get_state("t")).next == ("good",)
    final = await graph.ainvoke(None, thread="t")
    assert final == {"log": ["check", "good"], "ok": True}
    assert calls == {"check": 1, "good": 1}


async def test_update_state_rejects_unknown_nodes_and_keys(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    await graph.ainvoke({"log": []}, thread="t")
    head = (await graph.get_state("t")).checkpoint_id
    with pytest.raises(GraphValidationError, match="nope"):
        await graph.update_state("t", {"log": ["x"]}, as_node="nope")
    with pytest.raises(InvalidUpdateError, match="bogus"):
        await graph.update_state("t", {"bogus": 1})
    assert (await graph.get_state("t")).checkpoint_id == head


async def test_update_state_keeps_a_pending_interrupt_answerable(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t")
    (intr,) = paused["__interrupt__"]
    await graph.update_state("t", {"n": 7})
    snap = await graph.get_state("t")
    assert snap.interrupts == (intr,)
    assert snap.values == {"log": ["a"], "n": 7}
    final = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert final == {"log": ["a", "ask:yes", "c"], "n": 7}
    assert calls == {"a": 1, "ask": 2, "c": 1}


async def test_update_state_after_a_failed_step_keeps_its_finished_writes(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = diamond_graph(store.cp, calls, fail="c")
    with pytest.raises(RuntimeError, match="c failed"):
        await graph.ainvoke({"log": []}, thread="t")
    await graph.update_state("t", {"n": 1})
    assert "c" in (await graph.get_state("t")).next
    final = await graph.ainvoke(None, thread="t")
    assert final == {"log": ["a", "b", "c", "d"], "n": 1}
    assert calls == {"a": 1, "b": 1, "c": 2, "d": 1}


# -- durability modes -----------------------------------------------------------------


async def test_sync_durability_commits_each_step_before_the_next(store: Store) -> None:
    cp = store.cp
    seen: list[tuple[int, int]] = []

    async def hook(step: int) -> None:
        latest = await cp.get("t", "")
        assert latest is not None
        seen.append((step, latest.step))

    await loop_graph(cp, 6, Counter(), hook).ainvoke({"n": 0, "log": []}, thread="t")
    assert seen == [(s, s - 1) for s in range(1, 7)]


async def test_async_durability_keeps_every_checkpoint_in_order(store: Store) -> None:
    cp = store.cp
    graph = loop_graph(cp, 12, Counter())
    reference = await graph.ainvoke({"n": 0, "log": []}, thread="sync")
    final = await graph.ainvoke({"n": 0, "log": []}, thread="async", durability="async")
    assert final == reference
    history = await records(cp, "async")
    assert [r.step for r in history] == list(range(12, -1, -1))
    assert_chain(history)
    sync_values = [s.values for s in await graph.get_state_history("sync")]
    assert [s.values for s in await graph.get_state_history("async")] == sync_values


@attrs.define
class SlowPuts:
    """A checkpointer whose writes take *delay* seconds (of the test's clock)."""

    inner: Checkpointer
    delay: float

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None:
        await trio.sleep(self.delay)
        await self.inner.put(record, lock=lock)

    async def put_pending(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        pending: bytes | None,
        *,
        lock: ThreadLock | None = None,
    ) -> None:
        await self.inner.put_pending(thread, ns, checkpoint_id, pending, lock=lock)

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None:
        return await self.inner.get(thread, ns, checkpoint_id)

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]:
        return await self.inner.chain(thread, ns, checkpoint_id)

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]:
        return await self.inner.history(thread, ns)

    async def threads(self) -> list[str]:
        return await self.inner.threads()

    async def lock_thread(self, thread: str) -> ThreadLock:
        return await self.inner.lock_thread(thread)

    async def renew_lock(self, lock: ThreadLock) -> None:
        await self.inner.renew_lock(lock)

    async def unlock_thread(self, lock: ThreadLock) -> None:
        await self.inner.unlock_thread(lock)

    async def delete_thread(self, thread: str) -> None:
        await self.inner.delete_thread(thread)

    async def prune(self, thread: str, *, keep: int) -> int:
        return await self.inner.prune(thread, keep=keep)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_async_durability_overlaps_writes_with_the_next_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = MemoryCheckpointer()
    cp = SlowPuts(inner, delay=1.0)
    assert isinstance(cp, Checkpointer)
    seen: list[tuple[int, int]] = []

    async def hook(step: int) -> None:
        latest = await inner.get("t", "")
        assert latest is not None
        seen.append((step, latest.step))
        await trio.sleep(0.1)

    graph = loop_graph(cp, 8, Counter(), hook)
    final = await graph.ainvoke({"n": 0, "log": []}, thread="t", durability="async")
    assert final == loop_values(8)
    # Writes lag behind (the overlap), but are never ahead of the steps run.
    assert all(latest <= step - 1 for step, latest in seen)
    assert any(latest < step - 1 for step, latest in seen)
    history = await inner.history("t", "")
    assert [r.step for r in history] == list(range(8, -1, -1))
    assert_chain(history)


async def test_async_durability_cancel_keeps_the_last_completed_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = MemoryCheckpointer()
    cp = SlowPuts(inner, delay=10.0)
    blocking = True

    async def hook(step: int) -> None:
        if step == 4 and blocking:
            await trio.sleep_forever()
        await trio.sleep(0.01)

    graph = loop_graph(cp, 6, Counter(), hook)
    with trio.move_on_after(25) as scope:
        await graph.ainvoke({"n": 0, "log": []}, thread="t", durability="async")
    assert scope.cancelled_caught
    # Steps 1-3 completed and their records were handed to the writer: the
    # thread keeps the checkpoint of the last completed step, step 3.
    snap = await graph.get_state("t")
    assert (snap.step, snap.values) == (3, loop_values(3))
    assert_chain(await inner.history("t", ""))
    blocking = False
    assert await graph.ainvoke(None, thread="t", durability="async") == loop_values(6)


async def test_exit_durability_writes_once_after_a_normal_run(store: Store) -> None:
    graph = chain_graph(store.cp, Counter())
    final = await graph.ainvoke({"log": []}, thread="t", durability="exit")
    history = await records(store.cp, "t")
    assert len(history) == 1
    snap = await graph.get_state("t")
    assert snap.values == final == {"log": ["a", "b", "c"]}
    assert (snap.step, snap.next) == (3, ())
    await graph.ainvoke({"log": ["x"]}, thread="t", durability="exit")
    assert len(await records(store.cp, "t")) == 2


async def test_exit_durability_writes_once_after_an_error(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = diamond_graph(store.cp, calls, fail="c")
    with pytest.raises(RuntimeError, match="c failed"):
        await graph.ainvoke({"log": []}, thread="t", durability="exit")
    assert len(await records(store.cp, "t")) == 1
    snap = await graph.get_state("t")
    assert (snap.step, snap.values) == (1, {"log": ["a"]})
    assert "c" in snap.next
    final = await graph.ainvoke(None, thread="t", durability="exit")
    assert final == {"log": ["a", "b", "c", "d"]}
    assert calls == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert (await graph.get_state("t")).step == 3


async def test_exit_durability_is_resumable_after_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cp = MemoryCheckpointer()
    calls: Counter[str] = Counter()
    blocking = True

    async def hook(step: int) -> None:
        if step == 4 and blocking:
            await trio.sleep_forever()

    graph = loop_graph(cp, 6, calls, hook)
    with trio.move_on_after(10):
        await graph.ainvoke({"n": 0, "log": []}, thread="t", durability="exit")
    assert len(await records(cp, "t")) == 1
    snap = await graph.get_state("t")
    assert (snap.step, snap.values, snap.next) == (3, loop_values(3), ("inc",))
    blocking = False
    assert await graph.ainvoke(None, thread="t", durability="exit") == loop_values(6)
    assert (await graph.get_state("t")).step == 6
    assert calls["inc"] == 7


async def test_exit_durability_interrupt_resumes(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = ask_graph(store.cp, calls)
    paused = await graph.ainvoke({"log": []}, thread="t", durability="exit")
    (intr,) = paused["__interrupt__"]
    assert len(await records(store.cp, "t")) == 1
    snap = await graph.get_state("t")
    assert (snap.step, snap.interrupts, snap.values) == (1, (intr,), {"log": ["a"]})
    final = await graph.ainvoke(Command(resume="yes"), thread="t", durability="exit")
    assert final == {"log": ["a", "ask:yes", "c"]}
    assert calls == {"a": 1, "ask": 2, "c": 1}


# -- cancellation, timeouts, stop= ------------------------------------------------------


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_cancel_from_inside_a_step_then_resume(store: Store, durability: Any) -> None:
    calls: Counter[str] = Counter()
    scope = trio.CancelScope()
    blocking = True

    async def hook(step: int) -> None:
        if step == 4 and blocking:
            scope.cancel()
            await trio.sleep_forever()

    graph = loop_graph(store.cp, 6, calls, hook)
    with scope:
        await graph.ainvoke({"n": 0, "log": []}, thread="t", durability=durability)
    assert scope.cancelled_caught
    snap = await graph.get_state("t")
    assert (snap.step, snap.values, snap.next) == (3, loop_values(3), ("inc",))
    if durability == "exit":
        assert len(await records(store.cp, "t")) == 1
    else:
        assert_chain(await records(store.cp, "t"))
    blocking = False
    rebuilt = loop_graph(store.reopen(), 6, calls, hook)
    assert await rebuilt.ainvoke(None, thread="t", durability=durability) == loop_values(6)
    assert (await rebuilt.get_state("t")).step == 6
    assert calls["inc"] == 7  # steps 1-3 once, step 4 twice, 5 and 6 once

async def test_cancel_from_another_task_while_a_step_is_blocked(store: Store) -> None:
    calls: Counter[str] = Counter()
    reached = trio.Event()

    async def hook(step: int) -> None:
        if step == 4 and not reached.is_set():
            reached.set()
            await trio.sleep_forever()

    graph = loop_graph(store.cp, 6, calls, hook)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(graph.ainvoke, {"n": 0, "log": []}, thread="t"))
        await reached.wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    snap = await graph.get_state("t")
    assert (snap.step, snap.values) == (3, loop_values(3))
    assert await graph.ainvoke(None, thread="t") == loop_values(6)
    assert calls["inc"] == 7


async def test_move_on_after_mid_step_then_resume(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    # With SQLite the mock clock may jump while a worker thread writes, so the
    # cancel can land at any point: the assertions hold wherever it lands.
    calls: Counter[str] = Counter()
    blocking = True

    async def hook(step: int) -> None:
        if step == 4 and blocking:
            await trio.sleep_forever()

    graph = loop_graph(store.cp, 6, calls, hook)
    with trio.move_on_after(100) as scope:
        await graph.ainvoke({"n": 0, "log": []}, thread="t")
    assert scope.cancelled_caught
    history = await records(store.cp, "t")
    if history:
        assert_chain(history)
        snap = await graph.get_state("t")
        assert snap.values == loop_values(snap.step)
        assert snap.step <= 3
    if store.kind == "memory":
        assert history[0].step == 3
    blocking = False
    if history:
        final = await graph.ainvoke(None, thread="t")
    else:
        final = await graph.ainvoke({"n": 0, "log": []}, thread="t")
    assert final == loop_values(6)
    assert (await graph.get_state("t")).step == 6


async def test_leaving_a_stream_early_leaves_the_thread_resumable(store: Store) -> None:
    calls: Counter[str] = Counter()
    graph = loop_graph(store.cp, 6, calls)
    async with graph.stream({"n": 0, "log": []}, modes=("updates",), thread="t") as events:
        async for event in events:
            if isinstance(event, Update) and event.step == 2:
                break
    snap = await graph.get_state("t")
    assert snap.values == loop_values(snap.step)
    assert 1 <= snap.step <= 3
    assert await graph.ainvoke(None, thread="t") == loop_values(6)


async def test_run_timeout_then_resume(autojump_clock: trio.testing.MockClock) -> None:
    cp = MemoryCheckpointer()
    calls: Counter[str] = Counter()
    slow = True

    async def hook(step: int) -> None:
        await trio.sleep(1)
        if step == 4 and slow:
            await trio.sleep(100)

    graph = loop_graph(cp, 6, calls, hook)
    with pytest.raises(RunTimeoutError) as info:
        await graph.ainvoke({"n": 0, "log": []}, thread="t", timeout=10)
    assert isinstance(info.value, TimeoutError)
    snap = await graph.get_state("t")
    assert (snap.step, snap.values) == (3, loop_values(3))
    slow = False
    assert await graph.ainvoke(None, thread="t", timeout=10) == loop_values(6)
    assert calls["inc"] == 7


async def test_node_timeout_keeps_finished_siblings_then_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cp = MemoryCheckpointer()
    calls: Counter[str] = Counter()

    async def slow(state: State) -> dict[str, Any]:
        calls["slow"] += 1
        if calls["slow"] == 1:
            await trio.sleep(10)
        return {"log": ["slow"]}

    g = StateGraph(State)
    g.add_node("a", appender("a", calls)).add_node("fast", appender("fast", calls))
    g.add_node("slow", slow, timeout=1).add_node("d", appender("d", calls))
    g.add_edge(START, "a").add_edge("a", "fast").add_edge("a", "slow")
    g.add_edge(["fast", "slow"], "d").add_edge("d", END)
    graph = g.compile(checkpointer=cp)

    with pytest.raises(NodeTimeoutError):
        await graph.ainvoke({"log": []}, thread="t")
    assert (await graph.get_state("t")).step == 1
    final = await graph.ainvoke(None, thread="t")
    assert final == {"log": ["a", "fast", "slow", "d"]}
    assert calls == {"a": 1, "fast": 1, "slow": 2, "d": 1}


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_stop_finishes_the_step_then_none_continues(
    store: Store, durability: Any
) -> None:
    calls: Counter[str] = Counter()
    stop = trio.Event()

    async def stopper(state: State) -> dict[str, Any]:
        calls["stopper"] += 1
        stop.set()
        return {"log": ["stopper"]}

    async def sibling(state: State) -> dict[str, Any]:
        calls["sibling"] += 1
        for _ in range(5):  # still runs to the end after stop is set
            await trio.lowlevel.checkpoint()
        return {"log": ["sibling"]}

    g = StateGraph(State)
    g.add_node("a", appender("a", calls)).add_node("stopper", stopper)
    g.add_node("sibling", sibling).add_node("d", appender("d", calls))
    g.add_edge(START, "a").add_edge("a", "stopper").add_edge("a", "sibling")
    g.add_edge(["stopper", "sibling"], "d").add_edge("d", END)
    graph = g.compile(checkpointer=store.cp)

    stopped = await graph.ainvoke({"log": []}, thread="t", stop=stop, durability=durability)
    assert stopped == {"log": ["a", "stopper", "sibling"]}
    snap = await graph.get_state("t")
    assert (snap.step, snap.next) == (2, ("d",))
    assert snap.values == stopped
    final = await graph.ainvoke(None, thread="t", durability=durability)
    assert final == {"log": ["a", "stopper", "sibling", "d"]}
    assert calls == {"a": 1, "stopper": 1, "sibling": 1, "d": 1}


# -- subgraphs ------------------------------------------------------------------------


async def test_interrupt_inside_a_subgraph_pauses_and_resumes_the_parent(store: Store) -> None:
    calls: Counter[str] = Counter()

    async def inner_ask(state: State) -> dict[str, Any]:
        calls["inner_ask"] += 1
        return {"log": [f"inner:{interrupt('inner?')}"]}

    sub = StateGraph(State)
    sub.add_node("inner_a", appender("inner_a", calls)).add_node("inner_ask", inner_ask)
    sub.add_edge(START, "inner_a").add_edge("inner_a", "inner_ask").add_edge("inner_ask", END)

    def build(cp: Checkpointer) -> CompiledGraph:
        g = StateGraph(State)
        g.add_node("prep", appender("prep", calls)).add_node("sub", sub.compile())
        g.add_edge(START, "prep").add_edge("prep", "sub").add_edge("sub", END)
        return g.compile(checkpointer=cp)

    paused = await build(store.cp).ainvoke({"log": []}, thread="t")
    (intr,) = paused["__interrupt__"]
    assert intr.value == "inner?"
    assert (await build(store.cp).get_state("t")).interrupts == (intr,)
    final = await build(store.reopen()).ainvoke(Command(resume="ok"), thread="t")
    assert final == {"log": ["prep", "inner_a", "inner:ok"]}
    assert calls == {"prep": 1, "inner_a": 1, "inner_ask": 2}

"""One thread, one run at a time: ``ThreadBusyError`` before anything is
written, reads never blocked, claims released however a run ends, and a run
that loses its claim stops without writing again.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import attrs
import pytest
import trio
import trio.testing

from trigraph import (
    END,
    START,
    Command,
    CompiledGraph,
    GraphValidationError,
    InvalidUpdateError,
    MemoryCheckpointer,
    StateGraph,
    ThreadBusyError,
)
from trigraph.abc import Checkpointer, ThreadLock


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build(
    cp: Checkpointer, gate: trio.Event | None = None, reached: trio.Event | None = None
) -> CompiledGraph:
    g = StateGraph(S)
    prev = START
    for i in range(3):
        name = f"n{i}"

        async def node(state: S, name: str = name) -> dict[str, Any]:
            if gate is not None and name == "n1":
                if reached is not None:
                    reached.set()
                await gate.wait()
            return {"log": [name]}

        g.add_node(name, node)
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, END)
    return g.compile(checkpointer=cp)


async def test_a_second_run_on_a_busy_thread_fails_at_once(cp: Checkpointer) -> None:
    gate, reached = trio.Event(), trio.Event()
    graph = build(cp, gate, reached)
    results: list[Any] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _keep(results, graph.ainvoke({"log": ["a"]}, thread="t")))
        await reached.wait()
        before = await cp.history("t", "")
        with pytest.raises(ThreadBusyError, match="thread 't' has a run in progress") as info:
            await graph.ainvoke({"log": ["b"]}, thread="t")
        assert info.value.thread == "t"
        with pytest.raises(ThreadBusyError):
            await graph.ainvoke(None, thread="t")
        with pytest.raises(ThreadBusyError):
            await graph.update_state("t", {"log": ["edit"]})
        # Nothing was written by the refused calls, and reading is never blocked.
        assert await cp.history("t", "") == before
        snap = await graph.get_state("t")
        assert snap.values == {"log": ["a", "n0"]}
        assert len(await graph.get_state_history("t")) == 2
        # Another thread runs meanwhile.
        assert await build(cp).ainvoke({"log": []}, thread="u") == {"log": ["n0", "n1", "n2"]}
        gate.set()
    assert results == [{"log": ["a", "n0", "n1", "n2"]}]
    # Free again once the run is over.
    assert await graph.ainvoke({"log": ["c"]}, thread="t") == {
        "log": ["a", "n0", "n1", "n2", "c", "n0", "n1", "n2"]
    }


async def _keep(out: list[Any], call: Any) -> None:
    out.append(await call)


@pytest.mark.parametrize("how", ["error", "cancel", "timeout"])
async def test_the_claim_is_released_however_a_run_ends(
    cp: Checkpointer, how: str, autojump_clock: trio.testing.MockClock
) -> None:
    g = StateGraph(S)

    async def boom(state: S) -> dict[str, Any]:
        if how == "error":
            raise RuntimeError("boom")
        await trio.sleep_forever()
        raise AssertionError

    g.add_node("boom", boom).add_edge(START, "boom").add_edge("boom", END)
    graph = g.compile(checkpointer=cp)
    if how == "error":
        with pytest.raises(RuntimeError):
            await graph.ainvoke({"log": []}, thread="t")
    elif how == "cancel":
        with trio.move_on_after(0.01):
            await graph.ainvoke({"log": []}, thread="t")
    else:
        with pytest.raises(TimeoutError):
            await graph.ainvoke({"log": []}, thread="t", timeout=0.01)
    lock = await cp.lock_thread("t")
    await cp.unlock_thread(lock)


async def test_a_stream_holds_the_thread_until_it_is_left(cp: Checkpointer) -> None:
    graph = build(cp)
    async with graph.stream({"log": []}, thread="t", buffer=0) as events:
        await events.receive()
        with pytest.raises(ThreadBusyError):
            await graph.ainvoke(None, thread="t")
    # Left early: the run was cancelled and the thread resumes.
    assert (await graph.ainvoke(None, thread="t"))["log"][-1] == "n2"


@attrs.define
class Leased:
    """A MemoryCheckpointer whose claims last *ttl* seconds unless renewed,
    and which another "process" can take over with :meth:`take_over`."""

    inner: MemoryCheckpointer = attrs.Factory(MemoryCheckpointer)
    ttl: float = 3.3
    renewals: int = 0
    seen: list[ThreadLock] = attrs.Factory(list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def lock_thread(self, thread: str) -> ThreadLock:
        lock = attrs.evolve(await self.inner.lock_thread(thread), ttl=self.ttl)
        self.seen.append(lock)
        return lock

    async def renew_lock(self, lock: ThreadLock) -> None:
        self.renewals += 1
        await self.inner.renew_lock(lock)

    async def take_over(self, lock: ThreadLock) -> ThreadLock:
        await self.inner.unlock_thread(lock)
        return await self.inner.lock_thread(lock.thread)


async def test_a_run_renews_its_claim_and_stops_when_it_loses_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cp = Leased()
    g = StateGraph(S)

    async def slow(state: S) -> dict[str, Any]:
        await trio.sleep(10)
        return {"log": ["slow"]}

    async def last(state: S) -> dict[str, Any]:
        return {"log": ["last"]}

    g.add_node(slow).add_node(last)
    g.add_edge(START, "slow").add_edge("slow", "last").add_edge("last", END)
    graph = g.compile(checkpointer=cp)  # type: ignore[arg-type]
    # Renewed every ttl / 3 (1.1 s) while the run lives: 10 s of node -> 9 renewals.
    assert await graph.ainvoke({"log": []}, thread="a") == {"log": ["slow", "last"]}
    assert cp.renewals == 9

    async def thief() -> None:
        await trio.sleep(5)
        await cp.take_over(cp.seen[-1])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(thief)
        with pytest.raises(ThreadBusyError, match="lost its claim") as info:
            await graph.ainvoke({"log": []}, thread="b")
    assert info.value.lost
    # The run stopped when its next renewal failed, mid-step: only the input was written.
    assert trio.current_time() < 30
    assert [r.step for r in await cp.inner.history("b", "")] == [0]


# -- a Command that starts a run: update=..., goto=... ----------------------------


def chain(cp: Checkpointer) -> CompiledGraph:
    g = StateGraph(S)
    for name in ("a", "b", "c"):
        async def node(state: S, name: str = name) -> dict[str, Any]:
            return {"log": [name]}

        g.add_node(name, node)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=cp)


async def test_command_goto_runs_from_the_named_node(cp: Checkpointer) -> None:
    graph = chain(cp)
    await graph.ainvoke({"log": ["in"]}, thread="t")
    out = await graph.ainvoke(Command(update={"log": ["jump"]}, goto="c"), thread="t")
    assert out["log"] == ["in", "a", "b", "c", "jump", "c"]
    fresh = await graph.ainvoke(Command(goto=["b"]), thread="new")
    assert fresh["log"] == ["b", "c"]
    state = await graph.get_state("t")
    assert state.next == ()


async def test_command_update_alone_starts_from_start(cp: Checkpointer) -> None:
    graph = chain(cp)
    out = await graph.ainvoke(Command(update={"log": ["u"]}), thread="t")
    assert out["log"] == ["u", "a", "b", "c"]


async def test_a_bad_command_writes_nothing(cp: Checkpointer) -> None:
    graph = chain(cp)
    await graph.ainvoke({"log": []}, thread="t")
    before = await graph.get_state_history("t")
    with pytest.raises(GraphValidationError, match="unknown node 'nope'"):
        await graph.ainvoke(Command(goto="nope"), thread="t")
    with pytest.raises(InvalidUpdateError):
        await graph.ainvoke(Command(update={"nope": 1}, goto="a"), thread="t")
    with pytest.raises(ValueError, match="either resumes"):
        await graph.ainvoke(Command(resume=1, goto="a"), thread="t")
    assert len(await graph.get_state_history("t")) == len(before)

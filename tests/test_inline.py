"""A step with one task runs in the loop's own task, and nothing observable
changes: context variables do not leak between nodes, a chain of nodes that
never yield still lets other tasks run and is cancelled at once, and errors,
timeouts and events are those of a child task (the property suite compares
whole runs both ways).
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
import trio
import trio.testing

from trigraph import END, START, GraphRecursionError, NodeTimeoutError, StateGraph

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_a_context_variable_set_by_a_node_does_not_leak() -> None:
    seen: list[str] = []

    async def setter(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(VAR.get())
        VAR.set("set by a node")
        return {}

    def sync_reader(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(VAR.get())
        VAR.set("set in a thread")
        return {}

    g = StateGraph(dict)
    g.add_node("a", setter).add_node("b", sync_reader).add_node("c", setter)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    VAR.set("caller")
    await g.compile().ainvoke({})
    assert seen == ["caller", "caller", "caller"]
    assert VAR.get() == "caller"


def endless() -> Any:
    async def spin(state: dict[str, Any]) -> dict[str, Any]:
        return {"n": state.get("n", 0) + 1}  # never awaits anything

    g = StateGraph(dict)
    g.add_node("a", spin).add_node("b", spin)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "a")
    return g.compile()


async def test_a_chain_that_never_yields_still_lets_others_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        with pytest.raises(GraphRecursionError):
            await endless().ainvoke({}, recursion_limit=200)
        nursery.cancel_scope.cancel()
    assert ticks >= 100


async def test_a_chain_that_never_yields_is_cancelled_at_once() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await endless().ainvoke({})
    assert scope.cancelled_caught
    with pytest.raises(TimeoutError):
        await endless().ainvoke({}, timeout=0.01)


async def test_a_lone_task_times_out_and_fails_like_a_child_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(state: dict[str, Any]) -> dict[str, Any]:
        await trio.sleep(5)
        return {}

    g = StateGraph(dict).add_node("slow", slow, timeout=1).add_edge(START, "slow")
    g.add_edge("slow", END)
    with pytest.raises(NodeTimeoutError, match="'slow' timed out after 1 s in step 1"):
        await g.compile().ainvoke({})

    async def boom(state: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("boom")

    g2 = StateGraph(dict).add_node("boom", boom).add_edge(START, "boom").add_edge("boom", END)
    with pytest.raises(KeyError) as info:
        await g2.compile().ainvoke({})
    assert info.value.__notes__ == ["in node 'boom', step 1"]


async def test_a_lone_sync_node_s_callbacks_see_its_thread_s_context() -> None:
    async def read() -> str:
        return VAR.get()

    def node(state: dict[str, Any]) -> dict[str, Any]:  # a worker thread
        VAR.set("set in the node's thread")
        return {"seen": trio.from_thread.run(read)}

    g = StateGraph(dict).add_node("node", node).add_edge(START, "node").add_edge("node", END)
    assert (await g.compile().ainvoke({}))["seen"] == "set in the node's thread"


KI_SCRIPT = """
import os, signal, threading, trio
from trigraph import END, START, StateGraph

seen = []

async def node(state):
    # Ctrl-C from outside while the lone node waits.
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        await trio.sleep(30)
    except BaseException as exc:
        seen.append(type(exc).__name__)
        raise
    return {}

g = StateGraph(dict).add_node("node", node).add_edge(START, "node").add_edge("node", END)
try:
    trio.run(g.compile().ainvoke, {})
except KeyboardInterrupt:
    print(seen)
"""


@pytest.mark.slow
def test_ctrl_c_reaches_a_lone_node_as_a_cancellation() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", KI_SCRIPT], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "['Cancelled']", out.stderr

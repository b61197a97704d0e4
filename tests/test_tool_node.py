"""ToolNode: LangGraph's ToolNode faults, each a test that its behaviour fails.

LangGraph (measured in the reference) runs a message's calls with an
unbounded gather that ignores max_concurrency, raises while the siblings of a
failing call run on, leaves cancelled calls unanswered, re-runs a finished
call when the node re-runs after an interrupt in a sibling, and drops a call
whose arguments are not JSON. Here: bounded, cancelled before the error
reaches the caller, answered in call order, timed per call, answered exactly
once across cancellation, interrupts, errors and resumes.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import trio
import trio.testing

from trigraph import (
    END,
    START,
    Command,
    GraphValidationError,
    MemoryCheckpointer,
    StateGraph,
    interrupt,
)
from trigraph.abc import Checkpointer
from trigraph.events import Custom
from trigraph.messages import (
    AIMessage,
    HumanMessage,
    InvalidToolCall,
    MessagesState,
    ToolCall,
    ToolMessage,
)
from trigraph.tools import (
    InjectedState,
    InjectedToolCallId,
    ToolDefinitionError,
    ToolNode,
    ToolTimeoutError,
    tool,
    tools_condition,
)


def calls(*specs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """An input whose last message asks for these calls (ids c0, c1, ...)."""
    msg = AIMessage(tool_calls=[ToolCall(n, a, f"c{i}") for i, (n, a) in enumerate(specs)],
                    id="ai")
    return {"messages": [HumanMessage("go", id="h"), msg]}


def graph(node: ToolNode, cp: Checkpointer | None = None) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("tools", node).add_edge(START, "tools").add_edge("tools", END)
    return g.compile(checkpointer=cp)


def answers(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m.tool_call_id, m.status, m.text) for m in state["messages"]
            if isinstance(m, ToolMessage)]


async def test_max_concurrency_bounds_the_calls(autojump_clock: trio.abc.Clock) -> None:
    running = peak = 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return n

    start = trio.current_time()
    final = await graph(ToolNode([work], max_concurrency=2)).ainvoke(
        calls(*[("work", {"n": i}) for i in range(5)]))
    assert peak == 2  # LangGraph: 5 (its gather ignores max_concurrency)
    assert trio.current_time() - start == pytest.approx(3.0)
    assert [a[2] for a in answers(final)] == ["0", "1", "2", "3", "4"]


async def test_answers_come_in_call_order(autojump_clock: trio.abc.Clock) -> None:
    async def wait(seconds: float) -> str:
        await trio.sleep(seconds)
        return f"waited {seconds}"

    final = await graph(ToolNode([wait])).ainvoke(
        calls(("wait", {"seconds": 3}), ("wait", {"seconds": 1}), ("wait", {"seconds": 2})))
    assert answers(final) == [("c0", "success", "waited 3.0"), ("c1", "success", "waited 1.0"),
                              ("c2", "success", "waited 2.0")]
    assert trio.current_time() == pytest.approx(3.0)


async def test_a_failing_call_cancels_its_siblings_before_the_error_surfaces(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []

    async def slow() -> str:
        try:
            await trio.sleep(10)
            log.append("slow done")
            return "slow"
        finally:
            log.append(f"slow ended at {trio.current_time():g}")

    async def boom() -> str:
        await trio.sleep(0.1)
        raise RuntimeError("kaboom")

    with pytest.raises(RuntimeError, match="kaboom") as info:
        await graph(ToolNode([slow, boom], handle_errors=False)).ainvoke(
            calls(("slow", {}), ("boom", {})))
    # The sibling was cancelled and gone before the error reached us.
    assert log == ["slow ended at 0.1"]
    assert "in tool 'boom', call 'c1'" in info.value.__notes__
    await trio.sleep(20)
    assert log == ["slow ended at 0.1"]  # nothing ran on as an orphan


async def test_with_handle_errors_every_call_is_answered(autojump_clock: trio.abc.Clock) -> None:
    async def fine() -> str:
        await trio.sleep(1)
        return "ok"

    def broken() -> str:
        raise ValueError("bad input")

    final = await graph(ToolNode([fine, broken])).ainvoke(
        calls(("broken", {}), ("fine", {}), ("nosuch", {})))
    assert answers(final) == [
        ("c0", "error", "Error: ValueError('bad input')\n Please fix your mistakes."),
        ("c1", "success", "ok"),
        ("c2", "error", "Error: nosuch is not a valid tool, try one of [fine, broken]."),
    ]


async def test_each_call_has_its_own_timeout(autojump_clock: trio.abc.Clock) -> None:
    async def wait(seconds: float) -> str:
        await trio.sleep(seconds)
        return "done"

    final = await graph(ToolNode([wait], timeout=2)).ainvoke(
        calls(("wait", {"seconds": 5}), ("wait", {"seconds": 1})))
    assert answers(final)[0][:2] == ("c0", "error")
    assert "did not finish within 2 s" in answers(final)[0][2]
    assert answers(final)[1] == ("c1", "success", "done")
    assert trio.current_time() == pytest.approx(2.0)
    with pytest.raises(ToolTimeoutError, match="'wait' \\(call 'c0'\\)"):
        await graph(ToolNode([wait], timeout=2, handle_errors=False)).ainvoke(
            calls(("wait", {"seconds": 5}), ("wait", {"seconds": 1})))


async def test_bad_json_and_bad_arguments_are_answered() -> None:
    def add(a: int, b: int = 0) -> int:
        """Add."""
        return a + b

    state = calls(("add", {"a": "one", "c": 1}))
    state["messages"][-1] = AIMessage(
        tool_calls=[ToolCall("add", {"a": "one", "c": 1}, "c0")],
        invalid_tool_calls=[InvalidToolCall("add", '{"a": 1', "c1", "not valid JSON")], id="ai")
    final = await graph(ToolNode([add])).ainvoke(state)
    (c0, s0, t0), (c1, s1, t1) = answers(final)
    assert (c0, s0, c1, s1) == ("c0", "error", "c1", "error")  # LangGraph drops c1
    assert "a: expected an integer, got str 'one'" in t0
    assert "c: unexpected argument" in t0
    assert "not valid JSON" in t1
    assert '{"a": 1' in t1


async def test_the_model_cannot_forge_injected_arguments() -> None:
    seen: list[Any] = []

    def whoami(
        note: str,
        call_id: Annotated[str, InjectedToolCallId],
        messages: Annotated[list[Any], InjectedState("messages")],
        state: Annotated[dict[str, Any], InjectedState],
    ) -> str:
        """Who am I."""
        seen.append((note, call_id, len(messages), sorted(state)))
        return "ok"

    made = tool(whoami)
    assert list(made.parameters["properties"]) == ["note"]
    final = await graph(ToolNode([made])).ainvoke(calls(
        ("whoami", {"note": "n", "call_id": "forged", "messages": [], "state": {}})))
    assert answers(final)[0][1] == "success"
    assert seen == [("n", "c0", 2, ["messages"])]


async def test_async_generator_tools_stream_progress() -> None:
    async def search(query: str) -> Any:
        """Search."""
        for pct in (50, 100):
            yield {"progress": pct}
        yield ToolMessage(f"found {query}", tool_call_id="c0")

    events = []
    async with graph(ToolNode([search])).stream(calls(("search", {"query": "q"})),
                                                 modes=("custom", "values")) as stream:
        async for event in stream:
            events.append(event)
    assert [e.data for e in events if isinstance(e, Custom)] == [{"progress": 50},
                                                                {"progress": 100}]
    assert answers(events[-1].state) == [("c0", "success", "found q")]


async def test_a_tool_may_return_a_command() -> None:
    class S(MessagesState, total=False):
        user: str

    def set_user(name: str, call_id: Annotated[str, InjectedToolCallId]) -> Command:
        """Set the user."""
        return Command(update={"user": name, "messages": [ToolMessage("ok", call_id)]})

    def forgetful(name: str) -> Command:
        """Forgets to answer."""
        return Command(update={"user": name})

    g = StateGraph(S)
    g.add_node("tools", ToolNode([set_user, forgetful])).add_edge(START, "tools")
    final = await g.compile().ainvoke(calls(("set_user", {"name": "ada"}),
                                            ("forgetful", {"name": "bob"})))
    assert final["user"] == "ada"
    assert answers(final)[0] == ("c0", "success", "ok")
    assert answers(final)[1][:2] == ("c1", "error")
    assert "no ToolMessage answering call 'c1'" in answers(final)[1][2]


async def test_answered_calls_are_not_run_again() -> None:
    runs: list[int] = []

    def note(n: int) -> int:
        """Note."""
        runs.append(n)
        return n

    state = calls(("note", {"n": 0}), ("note", {"n": 1}))
    state["messages"].append(ToolMessage("0", "c0", id="t0"))
    out = await ToolNode([note]).ainvoke(state)
    assert runs == [1]  # LangGraph re-ran c0 as well
    assert [m.tool_call_id for m in out["messages"]] == ["c1"]


async def test_cancelling_the_run_leaves_no_tool_and_resume_answers_each_call_once(
    cp: Checkpointer, task_tracker: Any
) -> None:
    runs: list[str] = []
    release = trio.Event()
    started = trio.Event()
    block = True

    async def fast() -> str:
        runs.append("fast")
        return "fast"

    async def slow() -> str:
        runs.append("slow")
        started.set()
        if block:
            try:
                await trio.sleep_forever()
            finally:
                release.set()
        return "slow"

    agent = graph(ToolNode([fast, slow]), cp)
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await agent.ainvoke(calls(("fast", {}), ("slow", {})), thread="t")

    with task_tracker.watch():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await started.wait()
            await trio.sleep(0.05)  # fast's result reaches the checkpointer (a thread)
            scope.cancel()
    assert scope.cancelled_caught
    assert release.is_set()
    assert not task_tracker.alive  # no tool task outlived the run
    block = False
    final = await agent.ainvoke(None, thread="t")
    assert answers(final) == [("c0", "success", "fast"), ("c1", "success", "slow")]
    assert sorted(runs) == ["fast", "slow", "slow"]  # fast finished before the cancel: once


async def test_a_call_that_finished_is_not_rerun_after_an_interrupt_in_a_sibling(
    cp: Checkpointer,
) -> None:
    side: list[str] = []

    async def send_mail(to: str) -> str:
        side.append(to)
        return f"sent to {to}"

    async def ask(question: str) -> str:
        return str(interrupt(question))

    agent = graph(ToolNode([send_mail, ask]), cp)
    paused = await agent.ainvoke(
        calls(("send_mail", {"to": "ada"}), ("ask", {"question": "ok?"}),
              ("ask", {"question": "sure?"})), thread="t")
    assert [i.value for i in paused["__interrupt__"]] == ["ok?", "sure?"]
    ids = [i.id for i in paused["__interrupt__"]]
    final = await agent.ainvoke(Command(resume={ids[0]: "yes", ids[1]: "no"}), thread="t")
    assert side == ["ada"]  # LangGraph's ToolNode: ["ada", "ada"]
    assert answers(final) == [("c0", "success", "sent to ada"), ("c1", "success", "yes"),
                              ("c2", "success", "no")]


async def test_a_call_that_finished_is_not_rerun_after_an_error(cp: Checkpointer) -> None:
    side: list[str] = []
    broken = True

    async def send_mail(to: str) -> str:
        side.append(to)
        return "sent"

    async def flaky() -> str:
        await trio.sleep(0.01)
        if broken:
            raise ConnectionError("down")
        return "up"

    agent = graph(ToolNode([send_mail, flaky], handle_errors=False), cp)
    with pytest.raises(ConnectionError):
        await agent.ainvoke(calls(("send_mail", {"to": "ada"}), ("flaky", {})), thread="t")
    broken = False
    final = await agent.ainvoke(None, thread="t")
    assert side == ["ada"]
    assert answers(final) == [("c0", "success", "sent"), ("c1", "success", "up")]


def test_bad_tool_lists_fail_at_construction() -> None:
    def a() -> None:
        """A."""

    with pytest.raises(GraphValidationError, match="two tools are named 'a'"):
        ToolNode([a, tool(a)])
    with pytest.raises(GraphValidationError, match="at least one tool"):
        ToolNode([])
    with pytest.raises(GraphValidationError, match="max_concurrency"):
        ToolNode([a], max_concurrency=0)

    def takes_a_socket(sock: trio.socket.SocketType) -> None:
        """Bad."""

    with pytest.raises(ToolDefinitionError, match="parameter 'sock' of tool 'takes_a_socket'"):
        ToolNode([takes_a_socket])


def test_tools_condition_routes_on_the_last_message() -> None:
    ask = AIMessage(tool_calls=[ToolCall("f", {}, "c")])
    assert tools_condition({"messages": [ask]}) == "tools"
    assert tools_condition([AIMessage(invalid_tool_calls=[InvalidToolCall("f", "{", "c", "x")])]
                           ) == "tools"
    assert tools_condition({"messages": [ask, ToolMessage("r", "c")]}) == END
    with pytest.raises(ValueError, match="no messages"):
        tools_condition({"messages": []})


async def test_memory_checkpointer_fixture_is_not_needed_without_a_thread() -> None:
    # Without a checkpointer the calls still run (once() has nothing to record into).
    async def echo(text: str) -> str:
        return text

    final = await graph(ToolNode([echo]), MemoryCheckpointer()).ainvoke(
        calls(("echo", {"text": "hi"})))
    assert answers(final) == [("c0", "success", "hi")]


async def test_calls_that_share_an_id_each_run_once(cp: Checkpointer) -> None:
    runs: list[int] = []

    async def note(n: int) -> str:
        runs.append(n)
        return str(n)

    async def ask() -> str:
        return str(interrupt("go on?"))

    ai = AIMessage(tool_calls=[ToolCall("note", {"n": 1}, "dup"), ToolCall("note", {"n": 2}, "dup"),
                               ToolCall("ask", {}, "c2")], id="ai")
    agent = graph(ToolNode([note, ask]), cp)
    await agent.ainvoke({"messages": [ai]}, thread="t")
    final = await agent.ainvoke(Command(resume="yes"), thread="t")
    assert sorted(runs) == [1, 2]
    assert answers(final) == [("dup", "success", "1"), ("dup", "success", "2"),
                              ("c2", "success", "yes")]

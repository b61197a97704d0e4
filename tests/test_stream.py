"""``stream()``: modes, the stream writer, async-generator nodes, ordering
guarantees, backpressure, embedding with a caller's channel, and how leaving
the block or an error ends the run."""

from __future__ import annotations

import itertools
import operator
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.lowlevel
import trio.testing
from _helpers import TaskTracker, collect, top
from hypothesis import given, strategies as st

from trigraph import (
    DEFAULT_BUFFER,
    END,
    START,
    Command,
    CompiledGraph,
    Send,
    StateGraph,
    get_stream_writer,
)
from trigraph.events import (
    Custom,
    Event,
    TaskEnd,
    TaskStart,
    Token,
    Update,
    Values,
)


class Log(TypedDict, total=False):
    log: Annotated[list[Any], operator.add]
    value: Any


class Boom(Exception):
    pass


def one_node(fn: Any, name: str = "node") -> CompiledGraph:
    g = StateGraph(Log).add_node(name, fn).add_edge(START, name).add_edge(name, END)
    return g.compile()


def two_steps() -> CompiledGraph:
    async def first(state: Log) -> dict[str, Any]:
        await get_stream_writer()("from first")
        return {"log": ["first"]}

    async def second(state: Log) -> dict[str, Any]:
        return {"value": len(state["log"])}

    g = StateGraph(Log).add_node(first).add_node(second)
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    return g.compile()


# -- the channel and the modes ------------------------------------------------------------


async def test_stream_yields_a_memory_receive_channel() -> None:
    async with two_steps().stream({}) as events:
        assert isinstance(events, trio.MemoryReceiveChannel)
        received = [event async for event in events]
    assert received


async def test_default_mode_is_updates() -> None:
    events = await collect(two_steps(), {}, modes=("updates",))
    async with two_steps().stream({}) as channel:
        default = [event async for event in channel]
    assert default == events
    assert events == [Update(1, "first", {"log": ["first"]}), Update(2, "second", {"value": 1})]


async def test_values_mode_sends_the_state_after_the_input_and_every_step() -> None:
    events = await collect(two_steps(), {"log": ["in"]}, modes="values")
    assert events == [
        Values(0, {"log": ["in"]}),
        Values(1, {"log": ["in", "first"]}),
        Values(2, {"log": ["in", "first"], "value": 2}),
    ]


async def test_last_values_event_equals_ainvoke_result() -> None:
    graph = two_steps()
    events = await collect(graph, {"log": ["x"]}, modes="values")
    assert events[-1].state == await graph.ainvoke({"log": ["x"]})


async def test_custom_mode_carries_stream_writer_data() -> None:
    events = await collect(two_steps(), {}, modes="custom")
    assert events == [Custom(1, "first", "from first")]


async def test_tasks_mode_reports_start_end_and_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(state: Log) -> None:
        await trio.sleep(1.5)

    events = await collect(one_node(slow, "slow"), {}, modes="tasks")
    assert [type(e) for e in events] == [TaskStart, TaskEnd]
    start, end = events
    assert isinstance(start, TaskStart)
    assert isinstance(end, TaskEnd)
    assert (start.step, start.node, end.step, end.node) == (1, "slow", 1, "slow")
    assert start.task_id == end.task_id
    assert end.duration == pytest.approx(1.5)
    assert end.error is None


async def test_tasks_mode_reports_a_failed_task() -> None:
    async def bad(state: Log) -> None:
        raise Boom("x")

    seen: list[Event] = []

    async def consume() -> None:
        async with one_node(bad, "bad").stream({}, modes="tasks") as events:
            async for event in events:
                seen.append(event)

    with pytest.raises(Boom):
        await consume()
    ends = [e for e in seen if isinstance(e, TaskEnd)]
    assert len(ends) == 1
    assert ends[0].error is not None
    assert "Boom" in ends[0].error


async def test_messages_mode_is_accepted() -> None:
    events = await collect(two_steps(), {}, modes="messages")
    assert all(isinstance(e, Token) for e in events)
    assert events == []


async def test_all_modes_combined() -> None:
    events = await collect(
        two_steps(), {}, modes=("values", "updates", "custom", "messages", "tasks")
    )
    kinds = {type(e) for e in events}
    assert kinds == {Values, Update, Custom, TaskStart, TaskEnd}
    assert [e.mode for e in events if isinstance(e, Values)] == ["values"] * 3


@pytest.mark.parametrize(
    ("modes", "kinds"),
    [
        (("values", "custom"), {Values, Custom}),
        (("updates", "tasks"), {Update, TaskStart, TaskEnd}),
        ("custom", {Custom}),
        ((), set()),
    ],
)
async def test_only_the_modes_asked_for_are_sent(modes: Any, kinds: set[type]) -> None:
    events = await collect(two_steps(), {}, modes=modes)
    assert {type(e) for e in events} == kinds


async def test_unknown_mode_raises_value_error() -> None:
    async def enter() -> None:
        async with two_steps().stream({}, modes=("updates", "bogus")):
            pass

    with pytest.raises(ValueError, match="bogus"):
        await enter()


async def test_unknown_mode_on_ainvoke_raises_value_error() -> None:
    send, _receive = trio.open_memory_channel[Event](10)
    with pytest.raises(ValueError, match="bogus"):
        await two_steps().ainvoke({}, events=send, modes="bogus")


async def test_negative_buffer_raises_value_error() -> None:
    with pytest.raises(ValueError, match="buffer"):
        two_steps().stream({}, buffer=-1)


def test_default_buffer_is_bounded() -> None:
    assert 0 < DEFAULT_BUFFER < 10_000


# -- the stream writer ------------------------------------------------------------------


async def test_stream_writer_in_async_node_is_awaited() -> None:
    async def node(state: Log) -> None:
        write = get_stream_writer()
        for i in range(3):
            await write({"i": i})

    events = await collect(one_node(node), {}, modes="custom")
    assert [e.data for e in events] == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_stream_writer_in_sync_node_blocks_in_its_thread() -> None:
    def node(state: Log) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(5):
            write(i)
        return {"value": "done"}

    events = await collect(one_node(node), {}, modes=("custom", "updates"))
    assert events == [
        *[Custom(1, "node", i) for i in range(5)],
        Update(1, "node", {"value": "done"}),
    ]


async def test_stream_writer_without_custom_mode_drops_data() -> None:
    async def node(state: Log) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(100):
            await write(i)
        return {"value": "ok"}

    def sync_node(state: Log) -> None:
        get_stream_writer()("dropped")

    g = StateGraph(Log).add_node("node", node).add_node("sync_node", sync_node)
    g.add_edge(START, "node").add_edge(START, "sync_node")
    g.add_edge("node", END).add_edge("sync_node", END)
    events = await collect(g.compile(), {}, modes="updates", buffer=0)
    assert {type(e) for e in events} == {Update}
    assert (await g.compile().ainvoke({}))["value"] == "ok"


def test_stream_writer_outside_a_node_raises_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="inside a running trigraph node"):
        get_stream_writer()


# -- async-generator nodes ---------------------------------------------------------------


async def test_async_generator_node_streams_every_yield_as_custom() -> None:
    async def tokens(state: Log) -> AsyncIterator[Any]:
        for word in ("once", "upon", "a", "time"):
            await trio.lowlevel.checkpoint()
            yield word

    events = await collect(one_node(tokens, "tokens"), {}, modes="custom")
    assert events == [Custom(1, "tokens", w) for w in ("once", "upon", "a", "time")]


async def test_async_generator_command_writes_state() -> None:
    async def story(state: Log) -> AsyncIterator[Any]:
        chunks = []
        for word in ("a", "b"):
            chunks.append(word)
            yield word
        yield Command(update={"value": " ".join(chunks), "log": ["story"]})

    graph = one_node(story, "story")
    events = await collect(graph, {}, modes=("custom", "updates"))
    assert events == [
        Custom(1, "story", "a"),
        Custom(1, "story", "b"),
        Update(1, "story", {"value": "a b", "log": ["story"]}),
    ]
    assert await graph.ainvoke({}) == {"value": "a b", "log": ["story"]}


async def test_async_generator_without_command_writes_nothing() -> None:
    async def chatter(state: Log) -> AsyncIterator[Any]:
        yield "x"

    assert await one_node(chatter).ainvoke({"value": 1}) == {"value": 1, "log": []}


async def test_async_generator_with_several_commands_applies_all() -> None:
    async def gen(state: Log) -> AsyncIterator[Any]:
        yield Command(update={"log": ["one"]})
        yield "between"
        yield Command(update={"log": ["two"], "value": 2})

    assert await one_node(gen).ainvoke({}) == {"log": ["one", "two"], "value": 2}


# -- ordering guarantees --------------------------------------------------------------------


def check_step_order(events: Sequence[Event]) -> None:
    """No event of step s+1 before Values(s); a step's Updates before its Values."""
    values_seen: set[int] = set()
    for event in top(events):
        if event.step > 0:
            assert event.step - 1 in values_seen, f"{event} before Values({event.step - 1})"
        if isinstance(event, Update):
            assert event.step not in values_seen, f"{event} after its Values"
        if isinstance(event, Values):
            values_seen.add(event.step)


def check_per_task_order(events: Sequence[Event]) -> None:
    """Each task's Custom data are (task, 0), (task, 1), ... in order, before its Update."""
    by_task: dict[Any, list[int]] = {}
    updated: set[Any] = set()
    for event in events:
        if isinstance(event, Custom):
            task, i = event.data
            assert (event.step, task) not in updated
            by_task.setdefault((event.step, task), []).append(i)
        elif isinstance(event, Update) and event.update is not None:
            for who in event.update.get("log", []):
                updated.add((event.step, who))
    for chunks in by_task.values():
        assert chunks == list(range(len(chunks)))


def ordering_graph(delays: list[int]) -> CompiledGraph:
    """Three steps with parallel, chatty nodes and a Send fan-out."""
    delay_of = itertools.cycle(delays or [0])

    def chatty(name: str) -> Callable[[Any], Any]:
        pauses = [next(delay_of) for _ in range(3)]

        async def node(state: Any) -> dict[str, Any]:
            who = name if isinstance(state, dict) else f"{name}{state}"
            write = get_stream_writer()
            for i, pause in enumerate(pauses):
                await trio.sleep(pause)
                await write((who, i))
            return {"log": [who]}

        return node

    g = StateGraph(Log)
    for name in ("a", "b", "c"):
        g.add_node(name, chatty(name))
    g.add_node("work", chatty("w"))
    g.add_edge(START, "a").add_edge(START, "b").add_edge("a", "c").add_edge("b", "c")
    g.add_conditional_edges("c", lambda s: [Send("work", i) for i in range(3)])
    g.add_edge("work", END)
    return g.compile()


ALL_MODES = ("values", "updates", "custom", "tasks")


@given(delays=st.lists(st.integers(0, 3), max_size=12))
def test_step_order_holds_under_any_schedule(delays: list[int]) -> None:
    async def main() -> list[Event]:
        return await collect(ordering_graph(delays), {}, modes=ALL_MODES, buffer=2)

    events = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    check_step_order(events)
    assert [e.step for e in events if isinstance(e, Values)] == [0, 1, 2, 3]


@given(delays=st.lists(st.integers(0, 3), max_size=12))
def test_per_task_order_holds_under_any_schedule(delays: list[int]) -> None:
    async def main() -> list[Event]:
        return await collect(ordering_graph(delays), {}, modes=ALL_MODES, buffer=1)

    events = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    check_per_task_order(events)
    assert sum(isinstance(e, Custom) for e in events) == 6 * 3


async def test_task_events_come_in_the_order_the_task_made_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def node(state: Log) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(50):
            await trio.sleep(0.01 * (i % 3))
            await write(i)
        return {"value": 1}

    events = await collect(one_node(node), {}, modes=("tasks", "custom", "updates"))
    kinds = [type(e) for e in events]
    assert kinds == [TaskStart, *[Custom] * 50, Update, TaskEnd]
    assert [e.data for e in events if isinstance(e, Custom)] == list(range(50))


async def test_updates_of_a_step_are_a_permutation_under_different_schedules(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def delayed(name: str, delay: float) -> Callable[[Any], Any]:
        async def node(state: Log) -> dict[str, Any]:
            await trio.sleep(delay)
            return {"log": [name]}

        return node

    runs = []
    for delays in ((1, 2, 3), (3, 2, 1)):
        g = StateGraph(Log)
        for name, delay in zip("xyz", delays, strict=True):
            g.add_node(name, delayed(name, delay)).add_edge(START, name).add_edge(name, END)
        runs.append(await collect(g.compile(), {}, modes=("updates", "values")))
    first, second = runs
    updates = [[e for e in run if isinstance(e, Update)] for run in runs]
    assert updates[0] != updates[1]
    assert sorted(updates[0], key=repr) == sorted(updates[1], key=repr)
    assert [e for e in first if isinstance(e, Values)] == [
        e for e in second if isinstance(e, Values)
    ]


# -- backpressure -------------------------------------------------------------------------------


class Producer:
    """A node that writes 10,000 chunks and counts how many it produced."""

    def __init__(self, total: int = 10_000) -> None:
        self.total = total
        self.produced = 0
        self.finished = False

    async def async_node(self, state: Log) -> None:
        write = get_stream_writer()
        for i in range(self.total):
            self.produced += 1
            await write(i)
        self.finished = True

    async def agen_node(self, state: Log) -> AsyncIterator[Any]:
        for i in range(self.total):
            self.produced += 1
            yield i
        self.finished = True

    def sync_node(self, state: Log) -> None:
        write = get_stream_writer()
        for i in range(self.total):
            self.produced += 1
            write(i)
        self.finished = True


@pytest.mark.parametrize("kind", ["async_node", "agen_node"])
@pytest.mark.parametrize("buffer", [0, 1, 8, 64])
async def test_consumer_that_stops_reading_blocks_the_producer(kind: str, buffer: int) -> None:
    producer = Producer()
    graph = one_node(getattr(producer, kind))
    async with graph.stream({}, modes="custom", buffer=buffer) as events:
        await trio.testing.wait_all_tasks_blocked()
        assert buffer <= producer.produced <= buffer + 1
        assert not producer.finished
        for _ in range(5):
            await trio.testing.wait_all_tasks_blocked()
        assert producer.produced <= buffer + 1
        stats = events.statistics()
        assert stats.current_buffer_used == buffer
        data = [event.data async for event in events]
        assert events.statistics().peak_buffer_used <= buffer
    assert data == list(range(producer.total))
    assert producer.finished


@pytest.mark.slow
async def test_consumer_that_stops_reading_blocks_a_sync_producer() -> None:
    buffer = 8
    producer = Producer()
    graph = one_node(producer.sync_node)
    async with graph.stream({}, modes="custom", buffer=buffer) as events:
        while events.statistics().current_buffer_used < buffer:
            await trio.testing.wait_all_tasks_blocked()
        for _ in range(20):
            await trio.testing.wait_all_tasks_blocked()
            assert producer.produced <= buffer + 1
        assert not producer.finished
        data = [event.data async for event in events]
    assert data == list(range(producer.total))
    assert producer.finished


async def test_backpressure_holds_across_steps() -> None:
    producer = Producer(total=100)
    later: list[str] = []

    async def after(state: Log) -> None:
        later.append("ran")

    g = StateGraph(Log).add_node("p", producer.async_node).add_node("after", after)
    g.add_edge(START, "p").add_edge("p", "after").add_edge("after", END)
    async with g.compile().stream({}, modes=("custom", "values"), buffer=4) as events:
        await trio.testing.wait_all_tasks_blocked()
        assert later == []
        assert producer.produced <= 5
        received = [event async for event in events]
    assert later == ["ran"]
    assert len(received) == 100 + 3


# -- embedding: the caller's channel ------------------------------------------------------------


async def test_events_channel_gets_the_events_and_is_closed_at_the_end() -> None:
    send, receive = trio.open_memory_channel[Event](100)
    final = await two_steps().ainvoke({}, events=send, modes=("updates", "custom"))
    assert final == {"log": ["first"], "value": 1}
    with pytest.raises(trio.ClosedResourceError):
        send.send_nowait(Custom(0, "x", None))
    received = [event async for event in receive]
    assert received == [
        Custom(1, "first", "from first"),
        Update(1, "first", {"log": ["first"]}),
        Update(2, "second", {"value": 1}),
    ]


async def test_events_channel_is_closed_when_the_run_fails() -> None:
    async def bad(state: Log) -> None:
        raise Boom

    send, receive = trio.open_memory_channel[Event](100)
    with pytest.raises(Boom):
        await one_node(bad).ainvoke({}, events=send)
    with pytest.raises(trio.EndOfChannel):
        receive.receive_nowait()


async def test_two_runs_fan_into_one_receiver_with_clone() -> None:
    graph = two_steps()
    send, receive = trio.open_memory_channel[Event](0)
    results: list[dict[str, Any]] = []
    received: list[Event] = []

    async def run(start: str, channel: trio.MemorySendChannel[Event]) -> None:
        results.append(await graph.ainvoke({"log": [start]}, events=channel, modes="updates"))

    async with trio.open_nursery() as nursery:
        for start in ("x", "y"):
            nursery.start_soon(run, start, send.clone())
        send.close()
        async for event in receive:
            received.append(event)
    assert sorted(r["log"][0] for r in results) == ["x", "y"]
    assert len(received) == 4
    assert sorted(e.update["value"] for e in received if e.node == "second") == [2, 2]


# -- leaving the block; errors -------------------------------------------------------------------


def chatty_and_sleepy(ended: dict[str, type[BaseException]]) -> CompiledGraph:
    """Two nodes that never finish on their own; *ended* maps each node to the
    exception that ended it."""

    async def chatty(state: Log) -> None:
        # Bounded so that a broken engine fails the test instead of hanging it.
        write = get_stream_writer()
        try:
            for i in range(100_000):
                await write(i)
        except BaseException as exc:
            ended["chatty"] = type(exc)
            raise

    async def sleepy(state: Log) -> None:
        try:
            await trio.sleep(1000)
        except BaseException as exc:
            ended["sleepy"] = type(exc)
            raise

    g = StateGraph(Log).add_node(chatty).add_node(sleepy)
    g.add_edge(START, "chatty").add_edge(START, "sleepy")
    g.add_edge("chatty", END).add_edge("sleepy", END)
    return g.compile()


async def test_break_out_of_stream_cancels_the_run_promptly(
    autojump_clock: trio.testing.MockClock, task_tracker: TaskTracker
) -> None:
    ended: dict[str, type[BaseException]] = {}
    start = trio.current_time()
    with task_tracker.watch():
        async with chatty_and_sleepy(ended).stream({}, modes="custom", buffer=4) as events:
            async for event in events:
                if event.data == 2:
                    break
    assert ended == {"chatty": trio.Cancelled, "sleepy": trio.Cancelled}
    assert trio.current_time() == start
    assert task_tracker.spawned
    assert task_tracker.alive_names() == []


async def test_break_while_the_producer_waits_on_a_full_buffer(
    autojump_clock: trio.testing.MockClock, task_tracker: TaskTracker
) -> None:
    ended: dict[str, type[BaseException]] = {}
    start = trio.current_time()
    with task_tracker.watch():
        async with chatty_and_sleepy(ended).stream({}, modes="custom", buffer=4) as events:
            async for event in events:
                if event.data == 2:
                    await trio.sleep(1)  # the consumer is busy; the producer fills the buffer
                    break
    assert set(ended) == {"chatty", "sleepy"}
    assert trio.current_time() == start + 1
    assert task_tracker.alive_names() == []


async def test_producer_waiting_on_a_full_buffer_is_cancelled_when_the_block_is_left() -> None:
    ended: dict[str, type[BaseException]] = {}
    async with chatty_and_sleepy(ended).stream({}, modes="custom", buffer=2):
        await trio.testing.wait_all_tasks_blocked()
    # Leaving the block cancels the run: the blocked producer must see
    # trio.Cancelled, not a BrokenResourceError from a closed channel.
    assert ended == {"chatty": trio.Cancelled, "sleepy": trio.Cancelled}


async def test_exception_in_the_body_propagates_as_itself() -> None:
    ended: dict[str, type[BaseException]] = {}

    async def consume() -> None:
        async with chatty_and_sleepy(ended).stream({}, modes="custom") as events:
            async for event in events:
                if event.data == 3:
                    raise KeyError("consumer")

    with pytest.raises(KeyError, match="consumer"):
        await consume()
    assert set(ended) == {"chatty", "sleepy"}


async def test_exception_in_the_body_while_the_producer_waits_propagates_as_itself() -> None:
    ended: dict[str, type[BaseException]] = {}

    async def consume() -> None:
        async with chatty_and_sleepy(ended).stream({}, modes="custom", buffer=2):
            await trio.testing.wait_all_tasks_blocked()
            raise KeyError("consumer")

    with pytest.raises(KeyError, match="consumer"):
        await consume()
    assert set(ended) == {"chatty", "sleepy"}


async def test_node_error_propagates_out_of_the_block_as_itself() -> None:
    raised: list[Boom] = []

    async def bad(state: Log) -> None:
        write = get_stream_writer()
        await write("before")
        exc = Boom("node failed")
        raised.append(exc)
        raise exc

    seen: list[Any] = []

    async def consume() -> None:
        async with one_node(bad, "bad").stream({}, modes="custom") as events:
            async for event in events:
                seen.append(event.data)

    with pytest.raises(Boom) as exc_info:
        await consume()
    assert exc_info.value is raised[0]
    assert "in node 'bad', step 1" in exc_info.value.__notes__
    assert seen == ["before"]


async def test_node_error_while_consumer_is_slow_propagates_as_itself() -> None:
    async def bad(state: Log) -> None:
        raise Boom("early")

    async def consume() -> None:
        async with one_node(bad, "bad").stream({}, modes="updates", buffer=0) as events:
            await trio.testing.wait_all_tasks_blocked()
            async for _ in events:
                pass

    with pytest.raises(Boom, match="early"):
        await consume()


# -- subgraph events ------------------------------------------------------------------------------


def parent_and_sub() -> CompiledGraph:
    async def inner(state: Log) -> dict[str, Any]:
        await get_stream_writer()("inside")
        return {"log": ["inner"]}

    sub_builder = StateGraph(Log).add_node(inner)
    sub = sub_builder.add_edge(START, "inner").add_edge("inner", END).compile()

    async def outer(state: Log) -> dict[str, Any]:
        return {"log": ["outer"]}

    g = StateGraph(Log).add_node(outer).add_node("sub", sub)
    g.add_edge(START, "outer").add_edge("outer", "sub").add_edge("sub", END)
    return g.compile()


async def test_subgraph_events_appear_in_the_parent_stream_with_a_namespace() -> None:
    events = await collect(parent_and_sub(), {}, modes=("updates", "custom", "tasks", "values"))
    sub_start = [e for e in top(events) if isinstance(e, TaskStart) and e.node == "sub"]
    assert len(sub_start) == 1
    ns = (f"sub:{sub_start[0].task_id}",)
    inner = [e for e in events if e.ns != ()]
    assert inner
    assert {e.ns for e in inner} == {ns}
    assert Custom(1, "inner", "inside", ns) in inner
    assert Update(1, "inner", {"log": ["inner"]}, ns) in inner
    assert any(isinstance(e, TaskStart) and e.node == "inner" for e in inner)
    assert any(isinstance(e, Values) for e in inner)


async def test_subgraph_events_follow_the_modes_asked_for() -> None:
    events = await collect(parent_and_sub(), {}, modes="updates")
    assert {type(e) for e in events} == {Update}
    assert [e.node for e in top(events)] == ["outer", "sub"]
    assert [e.node for e in events if e.ns != ()] == ["inner"]


async def test_subgraph_events_come_before_the_parent_update_of_that_node() -> None:
    events = await collect(parent_and_sub(), {}, modes=("updates", "custom"))
    positions = {
        "inner": next(i for i, e in enumerate(events) if e.ns != () and isinstance(e, Update)),
        "sub": next(i for i, e in enumerate(events) if e.ns == () and e.node == "sub"),
    }
    assert positions["inner"] < positions["sub"]


async def test_a_users_own_exception_group_leaves_the_block_as_raised() -> None:
    async def quick(state: Log) -> None:
        return None

    raised = ExceptionGroup("mine", [KeyError("k")])

    async def consume() -> None:
        async with one_node(quick).stream({}) as events:
            async for _ in events:
                raise raised

    with pytest.raises(ExceptionGroup) as exc_info:
        await consume()
    # Trio's cancel scopes re-derive groups they pass through, so compare the
    # structure: still the user's group, not unwrapped to its KeyError.
    assert exc_info.value.message == "mine"
    assert exc_info.value.exceptions == raised.exceptions


async def test_a_failed_tasks_end_comes_after_its_siblings_were_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []

    async def bad(state: Log) -> None:
        await trio.sleep(1)
        raise Boom("x")

    async def slow(state: Log) -> None:
        try:
            await trio.sleep_forever()
        finally:
            order.append("sibling cancelled")

    g = StateGraph(Log).add_node("bad", bad).add_node("slow", slow)
    g.add_edge(START, "bad").add_edge(START, "slow").add_edge(["bad", "slow"], END)

    async def consume() -> None:
        async with g.compile().stream({}, modes="tasks", buffer=0) as events:
            async for event in events:
                if isinstance(event, TaskEnd):
                    order.append(f"end {event.node}: {event.error is not None}")

    with pytest.raises(Boom):
        await consume()
    assert order == ["sibling cancelled", "end bad: True"]

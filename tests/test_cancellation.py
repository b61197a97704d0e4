"""Teardown: outer cancellation, ``trio.Cancelled`` propagation, no task left
behind, node and run timeouts, retries with backoff, and the ``stop=`` event."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.testing
from _helpers import TaskTracker

from trigraph import (
    END,
    START,
    CompiledGraph,
    NodeTimeoutError,
    RetryPolicy,
    RunTimeoutError,
    Send,
    StateGraph,
    TrigraphError,
    check_cancelled,
    default_retry_on,
    get_stream_writer,
)


class Log(TypedDict, total=False):
    log: Annotated[list[Any], operator.add]
    value: Any


class Cleanup:
    """Counts the ``finally`` blocks of node tasks that ran."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.done: list[str] = []

    def forever(self, name: str) -> Callable[[Any], Any]:
        async def node(state: Any) -> None:
            self.started.append(name)
            try:
                await trio.sleep_forever()
            finally:
                self.done.append(name)

        return node


def one_node(fn: Any, name: str = "node", **options: Any) -> CompiledGraph:
    g = StateGraph(Log).add_node(name, fn, **options)
    return g.add_edge(START, name).add_edge(name, END).compile()


def everything_graph(cleanup: Cleanup, fan_out: int) -> CompiledGraph:
    """One step with a plain async node, an async generator mid-stream, a
    subgraph and a Send fan-out, all running forever."""

    async def streaming(state: Log) -> AsyncIterator[Any]:
        try:
            yield "first chunk"
            await trio.sleep_forever()
            yield "never"
        finally:
            cleanup.done.append("agen")

    sub = one_node(cleanup.forever("inner"), "inner")
    g = StateGraph(Log)
    g.add_node("plain", cleanup.forever("plain"))
    g.add_node("streaming", streaming)
    g.add_node("sub", sub)
    g.add_node("work", cleanup.forever("work"))
    for name in ("plain", "streaming", "sub"):
        g.add_edge(START, name).add_edge(name, END)
    g.add_conditional_edges(START, lambda s: [Send("work", i) for i in range(fan_out)])
    g.add_edge("work", END)
    return g.compile()


# -- outer cancellation -----------------------------------------------------------------


async def test_outer_cancel_scope_cancels_every_node_task_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    graph = everything_graph(cleanup, fan_out=3000)
    start = trio.current_time()
    with trio.move_on_after(5) as scope:
        await graph.ainvoke({})
    assert scope.cancelled_caught
    assert trio.current_time() == start + 5
    assert cleanup.done.count("work") == 3000
    assert sorted(set(cleanup.done)) == ["agen", "inner", "plain", "work"]
    assert len(cleanup.done) == 3003


async def test_async_generator_is_closed_mid_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    steps: list[str] = []

    async def gen(state: Log) -> AsyncIterator[Any]:
        try:
            for i in range(1000):
                steps.append(f"chunk {i}")
                yield i
                await trio.sleep(1)
        finally:
            steps.append("finally")

    with trio.move_on_after(2.5):
        async with one_node(gen).stream({}, modes="custom") as events:
            async for _ in events:
                pass
    assert steps == ["chunk 0", "chunk 1", "chunk 2", "finally"]


async def test_outer_cancel_reaches_subgraph_nodes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    inner = one_node(cleanup.forever("deep"), "deep")
    middle = one_node(inner, "inner")
    outer = one_node(middle, "middle")
    with trio.move_on_after(1) as scope:
        await outer.ainvoke({})
    assert scope.cancelled_caught
    assert cleanup.done == ["deep"]


async def test_outer_cancel_is_not_swallowed(autojump_clock: trio.testing.MockClock) -> None:
    cleanup = Cleanup()
    reached: list[str] = []
    with trio.move_on_after(1) as scope:
        await one_node(cleanup.forever("node")).ainvoke({})
        reached.append("after ainvoke")
    assert scope.cancelled_caught
    assert reached == []


async def test_cancelled_reaches_the_caller_unwrapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    graph = everything_graph(cleanup, fan_out=3)
    caught: list[BaseException] = []
    with trio.move_on_after(1):
        try:
            await graph.ainvoke({})
        except BaseException as exc:
            caught.append(exc)
            raise
    assert len(caught) == 1
    assert isinstance(caught[0], trio.Cancelled), repr(caught[0])


async def test_cancelled_from_a_stream_reaches_the_caller_unwrapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    caught: list[BaseException] = []
    with trio.move_on_after(1):
        try:
            async with one_node(cleanup.forever("n")).stream({}) as events:
                async for _ in events:
                    pass
        except BaseException as exc:
            caught.append(exc)
            raise
    assert len(caught) == 1
    assert isinstance(caught[0], trio.Cancelled), repr(caught[0])


async def test_no_task_of_the_run_is_alive_after_cancellation(
    autojump_clock: trio.testing.MockClock, task_tracker: TaskTracker
) -> None:
    cleanup = Cleanup()
    graph = everything_graph(cleanup, fan_out=500)
    with task_tracker.watch(), trio.move_on_after(1):
        await graph.ainvoke({})
    assert len(task_tracker.spawned) >= 503
    assert task_tracker.alive_names() == []


async def test_no_task_is_alive_after_cancelling_a_stream(
    autojump_clock: trio.testing.MockClock, task_tracker: TaskTracker
) -> None:
    cleanup = Cleanup()
    graph = everything_graph(cleanup, fan_out=50)
    modes = ("values", "updates", "custom", "tasks")
    with task_tracker.watch(), trio.move_on_after(1):
        async with graph.stream({}, modes=modes, buffer=1) as events:
            async for _ in events:
                await trio.sleep(0.1)
    assert task_tracker.spawned
    assert task_tracker.alive_names() == []
    assert cleanup.started
    assert sorted(n for n in cleanup.done if n != "agen") == sorted(cleanup.started)


async def test_cancel_is_never_retried(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def node(state: Log) -> None:
        attempts.append(trio.current_time())
        await trio.sleep_forever()

    policy = RetryPolicy(max_attempts=5, retry_on=lambda exc: True, jitter=False)
    with trio.move_on_after(1) as scope:
        await one_node(node, retry=policy).ainvoke({})
    assert scope.cancelled_caught
    assert len(attempts) == 1


async def test_outer_cancel_is_not_a_node_timeout(autojump_clock: trio.testing.MockClock) -> None:
    cleanup = Cleanup()
    with trio.move_on_after(1) as scope:
        await one_node(cleanup.forever("n"), timeout=10).ainvoke({})
    assert scope.cancelled_caught


async def test_outer_cancel_is_not_a_run_timeout(autojump_clock: trio.testing.MockClock) -> None:
    cleanup = Cleanup()
    with trio.move_on_after(1) as scope:
        await one_node(cleanup.forever("n")).ainvoke({}, timeout=10)
    assert scope.cancelled_caught


async def test_sync_node_stops_early_with_check_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    loops: list[int] = []

    def spin(state: Log) -> None:
        for i in range(1_000_000):
            loops.append(i)
            check_cancelled()
            trio.from_thread.run(trio.sleep, 1)

    with trio.move_on_after(3.5) as scope:
        await one_node(spin).ainvoke({})
    assert scope.cancelled_caught
    assert 1 <= len(loops) <= 5


async def test_check_cancelled_outside_a_sync_node_raises() -> None:
    with pytest.raises(RuntimeError, match="sync nodes"):
        check_cancelled()

    async def node(state: Log) -> None:
        check_cancelled()

    with pytest.raises(RuntimeError, match="sync nodes"):
        await one_node(node).ainvoke({})


# -- node timeout ----------------------------------------------------------------------------


async def test_node_timeout_raises_naming_node_and_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    start = trio.current_time()
    with pytest.raises(NodeTimeoutError) as exc_info:
        await one_node(cleanup.forever("slow"), "slow", timeout=2.5).ainvoke({})
    err = exc_info.value
    assert isinstance(err, TimeoutError)
    assert isinstance(err, TrigraphError)
    assert (err.node, err.timeout, err.step) == ("slow", 2.5, 1)
    assert "'slow'" in str(err)
    assert "2.5 s" in str(err)
    assert trio.current_time() == start + 2.5
    assert cleanup.done == ["slow"]


async def test_node_within_its_timeout_succeeds(autojump_clock: trio.testing.MockClock) -> None:
    async def quick(state: Log) -> dict[str, Any]:
        await trio.sleep(0.9)
        return {"value": "ok"}

    assert (await one_node(quick, timeout=1).ainvoke({}))["value"] == "ok"


async def test_node_timeout_cancels_siblings(autojump_clock: trio.testing.MockClock) -> None:
    cleanup = Cleanup()
    g = StateGraph(Log)
    g.add_node("slow", cleanup.forever("slow"), timeout=1)
    g.add_node("other", cleanup.forever("other"))
    g.add_edge(START, "slow").add_edge(START, "other")
    g.add_edge("slow", END).add_edge("other", END)
    with pytest.raises(NodeTimeoutError):
        await g.compile().ainvoke({})
    assert sorted(cleanup.done) == ["other", "slow"]


async def test_node_timeout_comes_after_retries(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def hangs(state: Log) -> None:
        attempts.append(trio.current_time())
        await trio.sleep_forever()

    start = trio.current_time()
    policy = RetryPolicy(max_attempts=3, initial_interval=1, backoff_factor=2, jitter=False)
    with pytest.raises(NodeTimeoutError, match="'hangs'"):
        await one_node(hangs, "hangs", timeout=2, retry=policy).ainvoke({})
    # attempt, timeout 2, wait 1, attempt, timeout 2, wait 2, attempt, timeout 2
    assert [t - start for t in attempts] == [0, 3, 7]
    assert trio.current_time() - start == 9


# -- run timeout ---------------------------------------------------------------------------------


def two_step_graph(cleanup: Cleanup) -> CompiledGraph:
    async def first(state: Log) -> dict[str, Any]:
        await trio.sleep(1)
        return {"log": ["first"]}

    g = StateGraph(Log).add_node(first).add_node("second", cleanup.forever("second"))
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    return g.compile()


async def test_run_timeout_raises_run_timeout_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    start = trio.current_time()
    with pytest.raises(RunTimeoutError) as exc_info:
        await two_step_graph(cleanup).ainvoke({}, timeout=5)
    assert isinstance(exc_info.value, TimeoutError)
    assert exc_info.value.timeout == 5
    assert trio.current_time() == start + 5
    assert cleanup.done == ["second"]


async def test_run_timeout_names_the_step_it_interrupted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleanup = Cleanup()
    with pytest.raises(RunTimeoutError) as exc_info:
        await two_step_graph(cleanup).ainvoke({}, timeout=5)
    assert exc_info.value.step == 2
    assert "step 2" in str(exc_info.value)


async def test_run_timeout_through_stream(autojump_clock: trio.testing.MockClock) -> None:
    cleanup = Cleanup()
    seen: list[Any] = []

    async def consume() -> None:
        async with two_step_graph(cleanup).stream({}, modes="updates", timeout=5) as events:
            async for event in events:
                seen.append(event.node)

    with pytest.raises(RunTimeoutError):
        await consume()
    assert seen == ["first"]


async def test_run_within_its_timeout_returns(autojump_clock: trio.testing.MockClock) -> None:
    async def quick(state: Log) -> dict[str, Any]:
        await trio.sleep(1)
        return {"value": 1}

    assert (await one_node(quick).ainvoke({}, timeout=1.5))["value"] == 1


# -- retry ---------------------------------------------------------------------------------------


class Flaky:
    """A node failing with *exc_type* for the first *failures* attempts."""

    def __init__(self, failures: int, exc_type: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.exc_type = exc_type
        self.times: list[float] = []
        self.raised: list[Exception] = []

    async def __call__(self, state: Log) -> dict[str, Any]:
        self.times.append(trio.current_time())
        if len(self.times) <= self.failures:
            exc = self.exc_type(f"attempt {len(self.times)}")
            self.raised.append(exc)
            raise exc
        return {"value": len(self.times)}


async def test_retry_uses_exponential_backoff_on_the_trio_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(failures=3)
    policy = RetryPolicy(max_attempts=4, initial_interval=0.5, backoff_factor=2, jitter=False)
    start = trio.current_time()
    final = await one_node(flaky, retry=policy).ainvoke({})
    assert final["value"] == 4
    assert [t - start for t in flaky.times] == [0, 0.5, 1.5, 3.5]


async def test_retry_defaults_match_the_contract() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_interval, policy.backoff_factor) == (3, 0.5, 2.0)
    assert (policy.max_interval, policy.jitter) == (128.0, True)
    assert policy.retry_on is default_retry_on


async def test_retry_backoff_is_capped_by_max_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(failures=4)
    policy = RetryPolicy(
        max_attempts=5, initial_interval=1, backoff_factor=3, max_interval=5, jitter=False
    )
    start = trio.current_time()
    await one_node(flaky, retry=policy).ainvoke({})
    assert [t - start for t in flaky.times] == [0, 1, 4, 9, 14]


async def test_retry_jitter_scales_each_wait_by_half_to_one_and_a_half(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(failures=5)
    policy = RetryPolicy(max_attempts=6, initial_interval=1, backoff_factor=2, jitter=True)
    await one_node(flaky, retry=policy).ainvoke({})
    waits = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    for attempt, wait in enumerate(waits, start=1):
        base = 2 ** (attempt - 1)
        assert 0.5 * base <= wait < 1.5 * base


@pytest.mark.parametrize("exc_type", [ValueError, TypeError, KeyError])
async def test_retry_does_not_retry_programming_errors_by_default(
    exc_type: type[Exception], autojump_clock: trio.testing.MockClock
) -> None:
    flaky = Flaky(failures=1, exc_type=exc_type)
    with pytest.raises(exc_type):
        await one_node(flaky, retry=RetryPolicy()).ainvoke({})
    assert len(flaky.times) == 1


async def test_retry_raises_the_original_exception_after_the_last_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(failures=10)
    with pytest.raises(ConnectionError) as exc_info:
        await one_node(flaky, "flaky", retry=RetryPolicy(max_attempts=3)).ainvoke({})
    assert len(flaky.times) == 3
    assert exc_info.value is flaky.raised[-1]
    assert str(exc_info.value) == "attempt 3"
    assert "after 3 attempts" in exc_info.value.__notes__
    assert "in node 'flaky', step 1" in exc_info.value.__notes__


@pytest.mark.parametrize(
    "retry_on",
    [LookupError, (KeyError, OSError), lambda exc: isinstance(exc, KeyError)],
)
async def test_retry_on_accepts_a_class_a_tuple_or_a_predicate(
    retry_on: Any, autojump_clock: trio.testing.MockClock
) -> None:
    flaky = Flaky(failures=2, exc_type=KeyError)
    policy = RetryPolicy(max_attempts=3, retry_on=retry_on, jitter=False)
    assert (await one_node(flaky, retry=policy).ainvoke({}))["value"] == 3


async def test_retry_on_rejecting_an_error_raises_it_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = Flaky(failures=2, exc_type=ConnectionError)
    policy = RetryPolicy(max_attempts=3, retry_on=KeyError)
    with pytest.raises(ConnectionError):
        await one_node(flaky, retry=policy).ainvoke({})
    assert len(flaky.times) == 1


async def test_retry_of_a_sync_node(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[int] = []

    def flaky(state: Log) -> dict[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("transient")
        return {"value": "ok"}

    policy = RetryPolicy(max_attempts=3, jitter=False)
    assert (await one_node(flaky, retry=policy).ainvoke({}))["value"] == "ok"
    assert len(calls) == 3


def test_default_retry_on_accepts_transient_errors_only() -> None:
    class Retryable(Exception):
        retryable = True

    class NotRetryable(ConnectionError):
        retryable = False

    assert default_retry_on(ConnectionError())
    assert default_retry_on(TimeoutError())
    assert default_retry_on(Retryable())
    assert not default_retry_on(NotRetryable())
    for exc in (ValueError(), TypeError(), KeyError(), RuntimeError()):
        assert not default_retry_on(exc)


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"initial_interval": -1}, {"backoff_factor": -2}, {"max_interval": -1}],
)
def test_retry_policy_rejects_bad_values(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**options)


# -- stop= ---------------------------------------------------------------------------------------


def stoppable(stop: trio.Event, sibling_delay: float) -> tuple[CompiledGraph, list[str]]:
    ran: list[str] = []

    async def setter(state: Log) -> dict[str, Any]:
        stop.set()
        ran.append("setter")
        return {"log": ["setter"]}

    async def sibling(state: Log) -> dict[str, Any]:
        await trio.sleep(sibling_delay)
        ran.append("sibling")
        return {"log": ["sibling"]}

    async def later(state: Log) -> dict[str, Any]:
        ran.append("later")
        return {"log": ["later"]}

    g = StateGraph(Log).add_node(setter).add_node(sibling).add_node(later)
    g.add_edge(START, "setter").add_edge(START, "sibling")
    g.add_edge(["setter", "sibling"], "later").add_edge("later", END)
    return g.compile(), ran


async def test_stop_finishes_the_current_step_without_cancelling_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stop = trio.Event()
    graph, ran = stoppable(stop, sibling_delay=3)
    start = trio.current_time()
    final = await graph.ainvoke({}, stop=stop)
    assert final == {"log": ["setter", "sibling"]}
    assert sorted(ran) == ["setter", "sibling"]
    assert trio.current_time() == start + 3


async def test_stop_set_from_outside_during_a_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stop = trio.Event()
    steps: list[int] = []

    async def tick(state: Log) -> dict[str, Any]:
        await trio.sleep(1)
        steps.append(len(state["log"]))
        return {"log": ["tick"]}

    g = StateGraph(Log).add_node(tick).add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick")
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await g.compile().ainvoke({}, stop=stop))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(2.5)
        stop.set()
    assert result == {"log": ["tick", "tick", "tick"]}
    assert steps == [0, 1, 2]


async def test_unset_stop_event_does_not_stop_the_run() -> None:
    stop = trio.Event()

    async def a(state: Log) -> dict[str, Any]:
        return {"log": ["a"]}

    g = StateGraph(Log).add_node(a).add_node("b", a)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    assert await g.compile().ainvoke({}, stop=stop) == {"log": ["a", "a"]}


def chatty_beside_a_failure(written: list[int]) -> CompiledGraph:
    """A node writing 10,000 custom events beside one that fails at once."""

    async def chatty(state: Log) -> None:
        write = get_stream_writer()
        for i in range(10_000):
            written.append(i)
            await write(i)

    async def failing(state: Log) -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("stop the run")

    g = StateGraph(Log).add_node(chatty).add_node(failing)
    g.add_edge(START, "chatty").add_edge(START, "failing")
    g.add_edge("chatty", END).add_edge("failing", END)
    return g.compile()


async def test_stream_writer_is_a_checkpoint_even_without_custom_mode() -> None:
    written: list[int] = []
    with pytest.raises(KeyError):
        await chatty_beside_a_failure(written).ainvoke({})
    # The sibling's failure cancels chatty at its next write, long before the end.
    assert 0 < len(written) < 100


async def test_a_streaming_writer_is_cancelled_within_a_buffer_of_writes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    written: list[int] = []
    graph = chatty_beside_a_failure(written)

    async def slow_reader() -> None:
        async with graph.stream({}, modes="custom", buffer=16) as events:
            async for _ in events:
                await trio.sleep(0.001)  # the buffer fills

    with pytest.raises(KeyError):
        await slow_reader()
    # Writes into a buffer with room do not yield, but a full buffer does, and
    # every write checks for cancellation: chatty stops within a buffer or two.
    assert 0 < len(written) < 100


"""Running a compiled graph in tests: virtual delays, a recording consumer,
and ``trio.testing.MockClock`` so that any schedule costs no real time.

:func:`with_delays` returns a copy of a compiled graph whose node tasks sleep
(in Trio's clock) before and after they run and, for async generators,
before each item, so a test can perturb the order in which tasks finish
without touching the graph. :func:`run_graph` runs a graph under
``MockClock(autojump_threshold=0)`` with such delays and a consumer that
reads the event stream at its own (virtual) pace, and returns everything in
a :class:`RunResult`. The invariant kept here: the harness only adds sleeps
and observes; a graph's results under the harness are results it could give
without it.
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis.errors import InvalidArgument

from .._compiled import DEFAULT_BUFFER, CompiledGraph
from .._events import Custom, Event, Update, Values
from .._types import Command
from .._util import final

__all__ = ["Delays", "RunResult", "arun_graph", "run_graph", "with_delays"]


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The only leaf of *group* if it has exactly one, else *group* itself."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _delay_value(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{where} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgument(f"{where} must be finite and >= 0, got {value!r}")
    return float(value)


def _node_table(
    table: Mapping[str, float | Sequence[float]],
) -> dict[str, tuple[float, ...]]:
    if not isinstance(table, Mapping):
        raise InvalidArgument(f"Delays.nodes must be a mapping of node names, not {table!r}")
    out: dict[str, tuple[float, ...]] = {}
    for node, value in table.items():
        if not isinstance(node, str):
            raise InvalidArgument(f"Delays.nodes keys must be node names, not {node!r}")
        seq = (value,) if isinstance(value, (int, float)) else tuple(value)
        out[node] = tuple(_delay_value(v, f"the delay of node {node!r}") for v in seq)
    return out


def _consumer_table(value: float | Sequence[float]) -> tuple[float, ...]:
    seq = (value,) if isinstance(value, (int, float)) else tuple(value)
    return tuple(_delay_value(v, "a consumer delay") for v in seq)


@final
@attrs.frozen
class Delays:
    """Virtual sleeps that perturb a run's schedule (see :func:`with_delays`).

    Attributes:
      nodes: node name -> delays. The *k*-th pause of a node's tasks in a
        run (counting every task of that node, in the order they pause)
        sleeps ``nodes[name][k % len(nodes[name])]`` seconds of Trio's clock.
        A task pauses before its node is called, after it returns, and (for
        an async-generator node) before each item. A plain number means the
        same delay at every pause. Nodes not listed never sleep.
      consumer: delays of :func:`run_graph`'s consumer after each event it
        receives, used cyclically (empty: it reads as fast as it can).

    Example:
      >>> Delays({"a": 0.5, "b": (0.0, 1.0)}, consumer=0.1)
      Delays(nodes={'a': (0.5,), 'b': (0.0, 1.0)}, consumer=(0.1,))

    .. versionadded:: 0.1
    """

    nodes: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict, converter=_node_table)
    consumer: tuple[float, ...] = attrs.field(default=(), converter=_consumer_table)

    @classmethod
    def coerce(cls, value: Delays | Mapping[str, float | Sequence[float]] | None) -> Delays:
        """``None`` -> no delays; a mapping -> ``Delays(nodes=mapping)``."""
        if value is None:
            return cls()
        if isinstance(value, Delays):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        raise InvalidArgument(f"delays must be a Delays, a mapping or None, not {value!r}")


@attrs.define(eq=False)
class _Scheduler:
    """Hands out a run's delays, one per pause, per node; lives in the Trio thread."""

    delays: Delays
    counts: dict[str, int] = attrs.Factory(dict)

    def next(self, node: str) -> float:
        table = self.delays.nodes.get(node)
        if not table:
            return 0.0
        k = self.counts.get(node, 0)
        self.counts[node] = k + 1
        return table[k % len(table)]

    async def pause(self, node: str) -> None:
        delay = self.next(node)
        if delay > 0:
            await trio.sleep(delay)


@attrs.define(eq=False)
class _Probe:
    """Counts what the consumer received, and where producers stood when an
    event they emitted had been accepted by the stream."""

    received: int = 0
    marks: list[tuple[object, int]] = attrs.Factory(list)


_SCHEDULER: contextvars.ContextVar[_Scheduler | None] = contextvars.ContextVar(
    "trigraph_testing_scheduler", default=None
)
_PROBE: contextvars.ContextVar[_Probe | None] = contextvars.ContextVar(
    "trigraph_testing_probe", default=None
)


async def pause(node: str) -> None:
    """Sleep the current run's next delay for *node* (in an async node)."""
    scheduler = _SCHEDULER.get()
    if scheduler is not None:
        await scheduler.pause(node)


def pause_from_thread(node: str) -> None:
    """Sleep the current run's next delay for *node* (in a sync node's thread)."""
    scheduler = _SCHEDULER.get()
    if scheduler is not None:
        trio.from_thread.run(scheduler.pause, node)


def mark_emitted(data: object) -> None:
    """Record that *data*, just streamed by a node, was accepted by the stream."""
    probe = _PROBE.get()
    if probe is not None:
        probe.marks.append((data, probe.received))


def _wrap_fn(kind: str, name: str, fn: Any, scheduler: _Scheduler) -> Any:
    if kind == "async":

        async def run_async(arg: Any) -> Any:
            _SCHEDULER.set(scheduler)
            await scheduler.pause(name)
            result = await fn(arg)
            await scheduler.pause(name)
            return result

        return run_async
    if kind == "sync":

        def run_sync(arg: Any) -> Any:
            _SCHEDULER.set(scheduler)
            trio.from_thread.run(scheduler.pause, name)
            result = fn(arg)
            trio.from_thread.run(scheduler.pause, name)
            return result

        return run_sync
    if kind == "agen":

        async def run_agen(arg: Any) -> AsyncIterator[Any]:
            _SCHEDULER.set(scheduler)
            inner = fn(arg)
            try:
                while True:
                    await scheduler.pause(name)
                    try:
                        item = await inner.__anext__()
                    except StopAsyncIteration:
                        break
                    yield item
                    # The engine asks for the next item only once it has
                    # streamed this one: the stream has accepted it now.
                    if not isinstance(item, Command):
                        mark_emitted(item)
                await scheduler.pause(name)
            finally:
                await inner.aclose()

        return run_agen
    return _wrap_graph(fn, scheduler)  # a subgraph


def _wrap_graph(graph: CompiledGraph, scheduler: _Scheduler) -> CompiledGraph:
    spec = graph._spec
    nodes = {
        name: attrs.evolve(node, fn=_wrap_fn(node.kind, name, node.fn, scheduler))
        for name, node in spec.nodes.items()
    }
    return CompiledGraph._create(
        attrs.evolve(spec, nodes=nodes),
        checkpointer=graph.checkpointer,
        interrupt_before=graph.interrupt_before,
        interrupt_after=graph.interrupt_after,
        name=graph.name,
        builder=graph.builder,
    )


def with_delays(
    graph: CompiledGraph, delays: Delays | Mapping[str, float | Sequence[float]] | None
) -> CompiledGraph:
    """A copy of *graph* whose node tasks sleep the given virtual *delays*.

    The copy has the same nodes, edges, checkpointer and interrupts; each
    task of a listed node sleeps (``trio.sleep``, so under ``MockClock`` no
    real time passes) before its node is called, after it returns, and
    before each item of an async generator. A sync node still runs in a
    worker thread and sleeps through ``trio.from_thread``. Subgraph nodes
    are copied the same way. The delay counters live in the copy: every run
    of it continues the same cycle.

    Args:
      graph: a compiled graph; it is not changed.
      delays: a :class:`Delays`, a mapping ``{node: delay or delays}``, or
        ``None`` (no sleeps, but the copy still reports streamed values to
        :func:`run_graph`).

    Raises:
      hypothesis.errors.InvalidArgument: a negative, infinite or non-numeric delay.

    .. versionadded:: 0.1
    """
    if not isinstance(graph, CompiledGraph):
        raise InvalidArgument(f"with_delays() needs a CompiledGraph, not {graph!r}")
    return _wrap_graph(graph, _Scheduler(Delays.coerce(delays)))


@final
@attrs.frozen
class RunResult:
    """What :func:`run_graph` saw.

    Attributes:
      events: every event the stream delivered, in the order the consumer
        received it (subgraph events included; filter on ``ns == ()``).
      final_state: what ``ainvoke`` returned, or ``None`` if the run raised.
      error: the exception the run raised (one of ``catch=``), or ``None``.
      duration: the run's length in seconds of Trio's (virtual) clock.
      ahead: ``(event, n)`` for each streamed value whose acceptance the
        harness observed (items of async-generator nodes, and chunks of
        graphs from :func:`graphs`): *event* is its ``Custom`` event, *n*
        how many events the stream had accepted, up to and including that
        one, that the consumer had not yet received when the producing task
        went on.

    .. versionadded:: 0.1
    """

    events: tuple[Event, ...]
    final_state: dict[str, Any] | None
    error: BaseException | None = None
    duration: float = 0.0
    ahead: tuple[tuple[Custom, int], ...] = ()

    def values(self) -> list[Any]:
        """The states of the top-level ``Values`` events, in order."""
        return [e.state for e in self.events if isinstance(e, Values) and e.ns == ()]

    def updates(self, step: int | None = None) -> list[Update]:
        """The top-level ``Update`` events (of *step* only, if given), in order."""
        return [
            e for e in self.events
            if isinstance(e, Update) and e.ns == () and (step is None or e.step == step)
        ]


@attrs.define(eq=False)
class _Box:
    final: dict[str, Any] | None = None
    error: BaseException | None = None


async def arun_graph(
    graph: CompiledGraph,
    input: Any,
    *,
    modes: Sequence[str] | str = ("values", "updates", "custom"),
    delays: Delays | Mapping[str, float | Sequence[float]] | None = None,
    buffer: int = DEFAULT_BUFFER,
    catch: type[BaseException] | tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> RunResult:
    """The async twin of :func:`run_graph`, for a test already inside ``trio.run``.

    It uses whatever clock the surrounding run has.

    Cancellation:
      A checkpoint. Cancelling it cancels the graph's run (the stream is
      left as with any cancelled ``ainvoke``) and raises ``trio.Cancelled``.

    .. versionadded:: 0.1
    """
    if buffer < 0:
        raise InvalidArgument(f"buffer must be >= 0, got {buffer!r}")
    schedule = Delays.coerce(delays)
    wrapped = _wrap_graph(graph, _Scheduler(schedule))
    probe = _Probe()
    box = _Box()
    events: list[Event] = []
    consumer = schedule.consumer
    send, receive = trio.open_memory_channel[Event](buffer)
    token = _PROBE.set(probe)
    start = trio.current_time()
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(_produce, wrapped, input, send, modes, catch, box, kwargs)
            )
            with receive:
                async for event in receive:
                    events.append(event)
                    probe.received += 1
                    if consumer:
                        delay = consumer[(probe.received - 1) % len(consumer)]
                        if delay > 0:
                            await trio.sleep(delay)
    except BaseExceptionGroup as group:
        failure = _single(group)
        if failure is group:
            raise
    finally:
        _PROBE.reset(token)
    if failure is not None:
        raise failure
    return RunResult(
        events=tuple(events),
        final_state=box.final,
        error=box.error,
        duration=trio.current_time() - start,
        ahead=_ahead(events, probe.marks),
    )


async def _produce(
    graph: CompiledGraph,
    input: Any,
    send: trio.MemorySendChannel[Event],
    modes: Sequence[str] | str,
    catch: type[BaseException] | tuple[type[BaseException], ...],
    box: _Box,
    kwargs: dict[str, Any],
) -> None:
    with send:
        try:
            box.final = await graph.ainvoke(input, events=send, modes=modes, **kwargs)
        except catch as exc:
            box.error = exc


def _ahead(
    events: Sequence[Event], marks: Sequence[tuple[object, int]]
) -> tuple[tuple[Custom, int], ...]:
    positions: dict[int, deque[tuple[int, Custom]]] = {}
    for i, event in enumerate(events, 1):
        if isinstance(event, Custom):
            positions.setdefault(id(event.data), deque()).append((i, event))
    out: list[tuple[Custom, int]] = []
    for data, received in marks:
        queue = positions.get(id(data))
        if queue:
            position, event = queue.popleft()
            out.append((event, position - received))
    return tuple(out)


def run_graph(
    graph: CompiledGraph,
    input: Any,
    *,
    modes: Sequence[str] | str = ("values", "updates", "custom"),
    delays: Delays | Mapping[str, float | Sequence[float]] | None = None,
    buffer: int = DEFAULT_BUFFER,
    catch: type[BaseException] | tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> RunResult:
    """Run *graph* on *input* in a fresh ``trio.run`` under a ``MockClock``.

    The run streams *modes* into a channel of *buffer* events; a consumer
    reads it, sleeping ``delays.consumer`` between events. Node tasks sleep
    as :func:`with_delays` describes. The clock is
    ``trio.testing.MockClock(autojump_threshold=0)``: it jumps ahead as soon
    as every task waits, so sleeps cost no real time and the same delays
    give the same interleaving (sync nodes, which run in real threads, can
    still finish at different virtual times).

    Args:
      graph: the compiled graph; it is not changed.
      input: the run's input, as for ``ainvoke``.
      modes: the stream modes to record.
      delays: see :class:`Delays`.
      buffer: the stream's buffer size (``graph.stream(buffer=...)``).
      catch: exception types to return in ``RunResult.error`` instead of
        raising them.
      **kwargs: passed to ``ainvoke`` (``thread=``, ``recursion_limit=``, ...).

    Returns:
      A :class:`RunResult` with the events, the final state and the timing.

    Raises:
      RuntimeError: when called inside a running Trio loop (use
        :func:`arun_graph` there).
      Exception: whatever the run raises, unless it is one of *catch*.

    Example:
      >>> import operator
      >>> from typing import Annotated, TypedDict
      >>> from trigraph import END, START, StateGraph
      >>> from trigraph.testing import run_graph
      >>> class State(TypedDict):
      ...     log: Annotated[list[str], operator.add]
      >>> async def a(state: State) -> dict:
      ...     return {"log": ["a"]}
      >>> async def b(state: State) -> dict:
      ...     return {"log": ["b"]}
      >>> g = StateGraph(State)
      >>> _ = g.add_node(a).add_node(b).add_edge(START, "a").add_edge(START, "b")
      >>> result = run_graph(g.compile(), {"log": []}, delays={"a": 5.0})
      >>> result.final_state, result.duration
      ({'log': ['a', 'b']}, 10.0)
      >>> [(e.node, e.step) for e in result.updates()]
      [('b', 1), ('a', 1)]

    .. versionadded:: 0.1
    """
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "run_graph() starts its own trio.run; inside a running Trio loop "
            "use 'await arun_graph(...)'"
        )
    call: Callable[[], Any] = functools.partial(
        arun_graph, graph, input, modes=modes, delays=delays, buffer=buffer, catch=catch,
        **kwargs,
    )
    result: RunResult = trio.run(call, clock=trio.testing.MockClock(autojump_threshold=0))
    return result

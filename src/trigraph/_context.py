"""What a running node can reach through Trio's context: its task's identity,
the run's event channel, and the resume values of its ``interrupt()`` calls.

Each node task sets :data:`_current` once when it starts; Trio gives every task
its own copy of the context, and ``trio.to_thread.run_sync`` carries it into
worker threads, so ``get_stream_writer()``, ``interrupt()`` and the LLM client
find the node they run in without being told. Outside a node they raise
:class:`RuntimeError`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ._events import Custom, Event, Token
from ._types import Interrupt
from ._util import final

if TYPE_CHECKING:
    from ._loop import Run
    from ._merge import Writes
    from ._node import NodeSpec
    from ._types import Send

__all__ = [
    "Emitter",
    "GraphInterrupt",
    "StreamWriter",
    "Task",
    "check_cancelled",
    "current_task",
    "emit",
    "emit_token",
    "get_stream_writer",
    "interrupt",
    "once",
]

T = TypeVar("T")


@attrs.define(slots=True, eq=False)
class Emitter:
    """A run's event sink: the channel (or ``None``) and which modes are wanted.

    One per top-level run, shared by its subgraphs; the flags are read on
    every event, so a mode nobody asked for costs one attribute read.
    """

    send: trio.MemorySendChannel[Event] | None
    values: bool = False
    updates: bool = False
    custom: bool = False
    messages: bool = False
    tasks: bool = False
    thread: int = attrs.field(factory=threading.get_ident)

    @classmethod
    def for_modes(
        cls, send: trio.MemorySendChannel[Event] | None, modes: frozenset[str]
    ) -> Emitter:
        if send is None:
            return cls(None)
        return cls(
            send,
            values="values" in modes,
            updates="updates" in modes,
            custom="custom" in modes,
            messages="messages" in modes,
            tasks="tasks" in modes,
        )


async def emit(send: trio.MemorySendChannel[Event], event: Event) -> None:
    """Send *event*, waiting only while the stream's buffer is full.

    Always checks for cancellation first, so a run is cancellable at every
    event; when the buffer has room the event is queued without a trip
    through the scheduler (a producer running ahead of its consumer yields
    once the buffer is full, not once per event). When the buffer is full
    it waits like ``send.send`` (backpressure). Ordering and the buffer bound
    are the channel's own.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        send.send_nowait(event)
    except trio.WouldBlock:
        await send.send(event)


_NO_RESUME: dict[str, Any] = {}  # shared, never mutated: a task's resume map is replaced
_NO_MEMO: dict[str, Any] = {}  # likewise for the results of once()


@attrs.define(slots=True, eq=False)
class Task:
    """One node task of a superstep: what it runs on, and what it wrote.

    The task is also the node's context: the node's Trio task sets it in
    :data:`_current`, so ``get_stream_writer()``, ``interrupt()`` and the LLM
    client find their node, step and event sink through it.
    """

    run: Run
    spec: NodeSpec
    arg: Any
    index: int
    id: str
    writes: Writes = ()
    goto: tuple[str | Send, ...] = ()
    done: bool = False
    interrupts: tuple[Interrupt, ...] = ()
    resume: dict[str, Any] = _NO_RESUME
    memo: dict[str, Any] = _NO_MEMO
    """Results of ``once()`` calls that finished, by key (kept across resumes)."""
    interrupts_seen: int = 0
    token_streams: int = 0

    @property
    def node(self) -> str:
        return self.spec.name

    @property
    def step(self) -> int:
        return self.run.step

    @property
    def ns(self) -> tuple[str, ...]:
        return self.run.ns

    @property
    def emitter(self) -> Emitter:
        return self.run.emitter


_current: ContextVar[Task | None] = ContextVar("trigraph_task", default=None)


def current_task() -> Task | None:
    """The context of the node task running now, or ``None`` outside a node."""
    return _current.get()


def _require(what: str) -> Task:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(f"{what} can only be called inside a running trigraph node")
    return ctx


class _Done:
    """An awaitable that is already complete (returned to sync callers)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover


_DONE = _Done()


@final
class StreamWriter:
    """Streams values as ``Custom`` events from the node that got it.

    In an async node ``await writer(data)``: it waits while the stream's buffer
    is full (backpressure). Every write checks for cancellation, so a
    cancelled run stops at its next write; a write into a buffer with room
    queues the event without a trip through the scheduler (a producer ahead
    of its consumer yields once the buffer is full, not on every event); with
    nobody reading the ``"custom"`` mode, each write is a checkpoint. In a
    sync node (a worker thread) call ``writer(data)``: it blocks the thread
    while the buffer is full.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A write into a buffer with room no longer yields to the scheduler.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Task) -> None:
        self._ctx = ctx

    def __call__(self, data: Any) -> Awaitable[None]:
        em = self._ctx.run.emitter
        if threading.get_ident() != em.thread:
            if em.custom:
                trio.from_thread.run(self._send, data)
            return _DONE
        if not em.custom:
            # Nobody reads: a full checkpoint, so that a loop of writes still
            # lets other tasks run (with a reader, a full buffer does that).
            return trio.lowlevel.checkpoint()  # noqa: ASYNC105 - awaited by the caller
        return self._send(data)

    def _send(self, data: Any) -> Awaitable[None]:
        run = self._ctx.run
        assert run.emitter.send is not None
        return emit(run.emitter.send, Custom(run.step, self._ctx.spec.name, data, run.ns))


def get_stream_writer() -> StreamWriter:
    """The writer that streams ``Custom`` events from the current node.

    Values written reach consumers of the ``"custom"`` mode in the order they
    were written; when nobody asked for that mode they are dropped at no cost.

    Raises:
      RuntimeError: when called outside a running node.

    Example:
      >>> import trio
      >>> from trigraph import END, START, StateGraph, get_stream_writer
      >>> async def count(state: dict) -> None:
      ...     write = get_stream_writer()
      ...     for i in range(3):
      ...         await write(i)
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(count).add_edge(START, "count").add_edge("count", END)
      >>> async def main():
      ...     async with g.compile().stream({}, modes=("custom",)) as events:
      ...         return [e.data async for e in events]
      >>> trio.run(main)
      [0, 1, 2]

    .. versionadded:: 0.1
    """
    return StreamWriter(_require("get_stream_writer()"))


@final
class GraphInterrupt(BaseException):
    """Raised by :func:`interrupt` to pause the run; the engine catches it.

    It derives from ``BaseException`` so that a node's ``except Exception``
    cannot swallow a pause by accident. Code that runs several calls at once
    inside one node (as ``ToolNode`` does) may catch it per call, let the
    other calls finish, and raise one ``GraphInterrupt`` carrying every
    pending interrupt; anything else should let it propagate.

    Attributes:
      interrupts: the pending :class:`~trigraph.Interrupt` values.

    .. versionadded:: 0.2
    """

    def __init__(self, *interrupts: Interrupt) -> None:
        super().__init__(*interrupts)
        self.interrupts = interrupts


@attrs.define(slots=True, eq=False)
class _OnceScope:
    """The ``once()`` call a piece of code runs in: its key, and its interrupts."""

    key: str
    interrupts_seen: int = 0


_scope: ContextVar[_OnceScope | None] = ContextVar("trigraph_once", default=None)


def interrupt_id(ns: tuple[str, ...], task_id: str, index: int) -> str:
    """The stable id of the *index*-th ``interrupt()`` of a task."""
    import hashlib

    raw = "|".join((*ns, task_id, str(index))).encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def interrupt(value: Any) -> Any:
    """Pause the run for a human (or any outside) answer, and return that answer.

    The first time it runs, ``interrupt`` stops the node, the step finishes its
    other tasks, and the run pauses: the stream ends with an ``Interrupted``
    event and the thread's state lists the pending ``Interrupt``. When the
    thread resumes with ``ainvoke(Command(resume=answer), thread=...)`` the node
    runs again from its start, and this call returns *answer*. Several
    ``interrupt`` calls in one node are answered in order, one resume each.

    Code before ``interrupt`` runs again on resume: keep it idempotent.

    Raises:
      RuntimeError: outside a running node, or in a run without a
        checkpointer and a thread (a pause needs somewhere to wait).

    .. versionadded:: 0.1
    """
    ctx = _require("interrupt()")
    if ctx.run.durable is None:
        raise RuntimeError(
            f"interrupt() in node {ctx.node!r} needs a durable run: compile the graph "
            "with a checkpointer and pass thread= to ainvoke/stream"
        )
    scope = _scope.get()
    if scope is None:
        index = ctx.interrupts_seen
        ctx.interrupts_seen = index + 1
        iid = interrupt_id(ctx.run.ns, ctx.id, index)
    else:
        index = scope.interrupts_seen
        scope.interrupts_seen = index + 1
        iid = interrupt_id(ctx.run.ns, f"{ctx.id}/{scope.key}", index)
    if iid in ctx.resume:
        return ctx.resume[iid]
    raise GraphInterrupt(Interrupt(value, ctx.node, iid))


async def once(key: str, fn: Callable[..., Awaitable[T]] | Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the current node task unless it already finished there.

    The result is recorded with the task as soon as *fn* returns (durably, in
    the thread's checkpoint, when the run has a checkpointer), and when the
    task runs again, after an ``interrupt()`` elsewhere in its node or step,
    an error, a cancellation or a crash, ``once`` returns the recorded result
    without calling *fn*. A side effect wrapped in ``once`` therefore
    happens once per task, however often the node re-runs; one interrupted
    before it returned happens again. Several ``once`` calls may run
    concurrently in one node (in tasks of a nursery the node opens), each
    under its own *key*, and an ``interrupt()`` inside one gets an id that
    depends on *key*, so it is answered by the same id on every re-run.

    Args:
      key: names the call within its task; unique per call.
      fn: an ``async def`` (awaited) or a sync function (run in a worker
        thread, like a sync node).

    Returns:
      What *fn* returned, or what it returned before. It must be storable by
      the checkpoint serializer when the run is durable.

    Cancellation:
      A checkpoint. Cancelling it cancels *fn* (a sync *fn*'s thread is
      waited for); nothing is recorded, so it runs again on resume.

    Raises:
      RuntimeError: outside a running node.
      SerializationError: the result cannot be stored in a checkpoint.

    Example:
      >>> import trio
      >>> from trigraph import END, START, MemoryCheckpointer, StateGraph, interrupt, once
      >>> sent = []
      >>> async def send_mail(to: str) -> str:
      ...     sent.append(to)
      ...     return "sent to " + to
      >>> async def node(state: dict) -> dict:
      ...     receipt = await once("mail", send_mail, "ada")
      ...     answer = interrupt("ok?")            # pauses; the node re-runs on resume
      ...     return {"out": f"{receipt}, {answer}"}
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(node).add_edge(START, "node").add_edge("node", END)
      >>> graph = g.compile(checkpointer=MemoryCheckpointer())
      >>> async def main():
      ...     await graph.ainvoke({}, thread="t")
      ...     from trigraph import Command
      ...     return await graph.ainvoke(Command(resume="yes"), thread="t")
      >>> trio.run(main)["out"], sent
      ('sent to ada, yes', ['ada'])

    .. versionadded:: 0.2
    """
    ctx = _require("once()")
    memo = ctx.memo
    if key in memo:
        await trio.lowlevel.checkpoint()
        return memo[key]  # type: ignore[no-any-return]
    token = _scope.set(_OnceScope(key))
    try:
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        ):
            result = await fn(*args)  # type: ignore[misc]
        else:
            result = await trio.to_thread.run_sync(
                fn, *args, limiter=ctx.run.thread_limiter
            )
    finally:
        _scope.reset(token)
    durable = ctx.run.durable
    if durable is not None:
        durable.check_storable(result, f"the result of once({key!r}) in node {ctx.node!r}")
    ctx.memo = {**ctx.memo, key: result}
    if durable is not None:
        # The side effect happened: record it even if the run is being cancelled,
        # or a resume would do it again. Shielded, and bounded like a flush.
        with trio.CancelScope(shield=True), trio.move_on_after(durable.flush_timeout):
            await durable.save_memo(ctx.run)
        await trio.lowlevel.checkpoint_if_cancelled()
    return result  # type: ignore[no-any-return]


async def emit_token(text: str, *, model: str | None = None, stream_id: int = 0) -> None:
    """Send *text* as a ``Token`` event of the current node, if anyone listens.

    Called by ``trigraph.llm`` for every token; outside a node, or when the run
    was not asked for the ``"messages"`` mode, it returns at once without a
    checkpoint (the caller's own receive is the checkpoint).
    """
    ctx = _current.get()
    if ctx is None:
        return
    em = ctx.emitter
    if not em.messages or em.send is None:
        return
    await emit(
        em.send,
        Token(ctx.run.step, ctx.spec.name, text, ctx.run.ns, model, stream_id, ctx.id)
    )


def next_stream_id() -> int:
    """A fresh id for one LLM answer within the current node (0 outside a node)."""
    ctx = _current.get()
    if ctx is None:
        return 0
    ctx.token_streams += 1
    return ctx.token_streams - 1


def check_cancelled() -> None:
    """Raise ``trio.Cancelled`` in a sync node whose run has been cancelled.

    A sync node runs in a worker thread; cancelling the run waits for the
    thread to return (the run never reports done while a node thread still
    runs). Long sync nodes call this now and then so that a cancellation,
    a ``timeout=`` or leaving a stream stops them promptly.

    Raises:
      trio.Cancelled: the node's run was cancelled.
      RuntimeError: not called from a sync node's worker thread.

    .. versionadded:: 0.1
    """
    ctx = _current.get()
    if ctx is None or threading.get_ident() == ctx.run.emitter.thread:
        raise RuntimeError(
            "check_cancelled() is for sync nodes running in worker threads; "
            "async nodes are cancelled at their next await"
        )
    trio.from_thread.check_cancelled()

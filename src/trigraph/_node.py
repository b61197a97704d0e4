"""Node adapters: one way to call any node, and to read what it returned.

A node is a sync function (run in a worker thread, never on the event loop),
an ``async def``, an async generator (each yielded value streamed as
``Custom``; a yielded ``Command`` writes state), or a compiled graph (a
subgraph). :func:`call_node` hides the kind, and adds the node's timeout and
retry policy only where they were asked for, so a plain async node costs one
``await``. :func:`read_result` turns what a node returned into writes and
``goto`` targets, or raises an error that names the node and the step.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import random
import types
import typing
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import attrs
import trio

from ._context import Task, emit
from ._events import Custom
from ._exceptions import GraphValidationError, InvalidUpdateError, NodeTimeoutError
from ._types import END, Command, RetryPolicy, Send

if TYPE_CHECKING:
    from ._merge import Writes
    from ._schema import Schema

__all__ = ["NodeSpec", "call_node", "goto_targets", "read_result"]

Kind = Literal["async", "sync", "agen", "graph"]


def node_kind(fn: Any) -> Kind:
    """Classify *fn*; raise :class:`GraphValidationError` if it cannot be a node."""
    from ._compiled import CompiledGraph

    if isinstance(fn, CompiledGraph):
        return "graph"
    if not callable(fn):
        raise GraphValidationError(f"a node must be callable or a compiled graph, not {fn!r}")
    target = _target(fn)
    if inspect.isasyncgenfunction(target) or inspect.isasyncgenfunction(fn):
        return "agen"
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(fn):
        return "async"
    return "sync"


def _target(fn: Any) -> Any:
    """The function whose kind and annotations describe the callable *fn*: a
    partial's function, a callable object's ``__call__``, unwrapped."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if not (inspect.isroutine(fn) or isinstance(fn, type)):
        fn = type(fn).__call__
    return inspect.unwrap(fn)


_AGEN_ORIGINS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncGenerator,
    collections.abc.AsyncIterable,
)


def goto_targets(fn: Any, kind: Kind) -> tuple[str, ...] | None:
    """The nodes a ``Command`` that *fn* returns (or yields) may ``goto``, read
    from its return annotation: ``()`` when it cannot return a ``Command``,
    ``None`` when it may go anywhere (no annotation, ``Any``, a bare
    ``Command``, or an annotation that cannot be resolved)."""
    if kind == "graph":
        return ()
    target = _target(fn)
    try:
        raw = inspect.get_annotations(target)
    except TypeError:  # not something with annotations
        return None
    if "return" not in raw:
        return None
    try:  # only the return annotation: a parameter's may name TYPE_CHECKING imports
        annotation = typing.get_type_hints(
            types.SimpleNamespace(__annotations__={"return": raw["return"]}),
            globalns=getattr(target, "__globals__", None),
        )["return"]
    except Exception:  # an annotation that does not resolve: assume the worst
        return None
    if kind == "agen":
        if get_origin(annotation) not in _AGEN_ORIGINS or not get_args(annotation):
            return None
        annotation = get_args(annotation)[0]
    return _command_targets(annotation)


def _command_targets(annotation: Any) -> tuple[str, ...] | None:
    while type(annotation).__name__ == "TypeAliasType":  # `type Route = Command[...]`
        annotation = annotation.__value__
    if annotation is Any or annotation is object or annotation is Command:
        return None
    if annotation in (None, type(None), typing.NoReturn, getattr(typing, "Never", None)):
        return ()
    origin = get_origin(annotation)
    if origin is Command:
        (names,) = get_args(annotation)
        if get_origin(names) is not Literal:
            return None
        return tuple(n for n in get_args(names) if isinstance(n, str) and n != END)
    if origin is Union or origin is types.UnionType:
        found: list[str] = []
        for member in get_args(annotation):
            targets = _command_targets(member)
            if targets is None:
                return None
            found.extend(targets)
        return tuple(dict.fromkeys(found))
    if isinstance(annotation, type) or isinstance(origin, type):
        return ()  # a class other than Command (dict, a TypedDict, dict[str, Any], ...)
    return None  # a TypeVar, a NewType, anything else: it may be a Command


@attrs.frozen(slots=True)
class NodeSpec:
    """A node as compiled: its callable, kind and per-node policies."""

    name: str
    fn: Any
    kind: Kind
    retry: RetryPolicy | None = None
    timeout: float | None = None
    max_concurrency: int | None = None
    destinations: tuple[str, ...] = ()
    """Where its ``Command(goto=...)`` may lead, declared or annotated."""
    goto_anywhere: bool = False
    """It may return a ``Command`` whose ``goto`` was not declared."""
    plain: bool = attrs.field(init=False)
    """No retry, timeout or limiter wraps the call."""
    direct: bool = attrs.field(init=False)
    """A plain ``async def``: the task awaits it with no adapter in between."""

    @plain.default
    def _plain(self) -> bool:
        return self.retry is None and self.timeout is None and self.max_concurrency is None

    @direct.default
    def _direct(self) -> bool:
        return self.plain and self.kind == "async"


async def _call_once(task: Task, arg: Any) -> Any:
    spec = task.spec
    kind = spec.kind
    if kind == "async":
        return await spec.fn(arg)
    if kind == "sync":
        return await trio.to_thread.run_sync(spec.fn, arg, limiter=task.run.thread_limiter)
    if kind == "agen":
        return await _drive_agen(task, arg)
    return await spec.fn._run_subgraph(arg, task)


async def _drive_agen(task: Task, arg: Any) -> Any:
    spec = task.spec
    run = task.run
    em = run.emitter
    commands: list[Command[Any]] = []
    async with aclosing(spec.fn(arg)) as agen:
        async for item in agen:
            if isinstance(item, Command):
                commands.append(item)
            elif em.custom:
                assert em.send is not None
                await emit(em.send, Custom(run.step, spec.name, item, run.ns))
            else:
                await trio.lowlevel.checkpoint()
    if not commands:
        return None
    if len(commands) == 1:
        return commands[0]
    return _Commands(commands)


@attrs.frozen(slots=True)
class _Commands:
    """Several ``Command`` values yielded by one async-generator node."""

    commands: list[Command[Any]]


@attrs.frozen(slots=True)
class SubgraphResult:
    """What a subgraph node contributes: its writes, and the final values written."""

    writes: list[tuple[str, Any]]
    update: dict[str, Any]


async def _call_timed(task: Task, arg: Any) -> Any:
    timeout = task.spec.timeout
    if timeout is None:
        return await _call_once(task, arg)
    with trio.move_on_after(timeout) as scope:
        return await _call_once(task, arg)
    assert scope.cancelled_caught
    raise NodeTimeoutError(task.spec.name, timeout, task.run.step)


async def call_node(task: Task, arg: Any) -> Any:
    """Run one task of *spec* on *arg* with its timeout, retries and limiter.

    Cancellation:
      A checkpoint. Cancelling the task cancels the node at its next await; a
      sync node's thread is waited for (it can stop early with
      ``trigraph.check_cancelled()``); an async generator is closed.
    """
    spec = task.spec
    if spec.plain:
        return await _call_once(task, arg)
    limiter = task.run.node_limiters.get(spec.name)
    if limiter is None:
        return await _call_retrying(task, arg)
    async with limiter:
        return await _call_retrying(task, arg)


async def _call_retrying(task: Task, arg: Any) -> Any:
    policy = task.spec.retry
    if policy is None:
        return await _call_timed(task, arg)
    attempt = 1
    while True:
        task.interrupts_seen = 0
        try:
            return await _call_timed(task, arg)
        except Exception as exc:
            if attempt >= policy.max_attempts or not policy.should_retry(exc):
                if attempt > 1:
                    exc.add_note(f"after {attempt} attempts")
                raise
        delay = policy.interval(attempt)
        if policy.jitter:
            delay *= 0.5 + random.random()
        await trio.sleep(delay)
        attempt += 1


def read_result(
    result: Any, node: str, step: int, schema: Schema
) -> tuple[Writes, tuple[str | Send, ...], Any]:
    """Split a node's return value into ``(writes, goto, update_for_event)``.

    Raises:
      InvalidUpdateError: the value is not ``None``, a mapping, a ``Command``
        or what a subgraph returns, or it names a key the schema lacks.
    """
    if result is None:
        return (), (), None
    if type(result) is dict or isinstance(result, Mapping):
        schema.check_update_keys(result, node, step)
        result = schema.prepare(result)
        return result.items(), (), result
    if isinstance(result, Command):
        update = result.update
        if update is None:
            return (), result.goto, None
        _check_mapping(update, node, step)
        schema.check_update_keys(update, node, step)
        update = schema.prepare(update)
        return update.items(), result.goto, update
    if isinstance(result, SubgraphResult):
        return result.writes, (), result.update
    if isinstance(result, _Commands):
        writes: list[tuple[str, Any]] = []
        goto: list[str | Send] = []
        merged: dict[str, Any] = {}
        for command in result.commands:
            w, g, u = read_result(command, node, step, schema)
            writes.extend(w)
            goto.extend(g)
            if u:
                merged.update(u)
        return writes, tuple(goto), merged or None
    raise InvalidUpdateError(
        f"node {node!r} returned {type(result).__name__} in step {step}; a node returns "
        "a dict of state updates, a Command, or None",
        nodes=(node,),
        step=step,
    )


def _check_mapping(update: Any, node: str, step: int) -> None:
    if not isinstance(update, Mapping):
        raise InvalidUpdateError(
            f"node {node!r} returned Command(update={type(update).__name__}) in step "
            f"{step}; the update must be a dict of state keys",
            nodes=(node,),
            step=step,
        )


def as_sequence(value: Any) -> Sequence[Any]:
    """A router's or goto's result as a sequence of targets."""
    if isinstance(value, (str, Send)):
        return (value,)
    if value is None:
        return ()
    return value  # type: ignore[no-any-return]

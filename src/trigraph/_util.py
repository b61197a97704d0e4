"""Small helpers shared by every module: ``@final``, private constructors,
readable sentinels and the ``__module__`` rewrite that makes reprs and
tracebacks say ``trigraph.X`` for names re-exported from private modules.

Every helper is sync and side-effect free.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import AsyncIterator, Coroutine, Generator
from contextlib import asynccontextmanager
from contextvars import Context
from typing import Any, Generic, NoReturn, TypeVar, final

import trio

__all__ = [
    "InContext",
    "NoPublicConstructor",
    "Sentinel",
    "collapse",
    "final",
    "fixup_module_metadata",
    "open_unwrapped_nursery",
]

T = TypeVar("T")


@final
class Sentinel:
    """A named singleton whose repr is its name, for defaults such as ``DEFAULT``."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


class NoPublicConstructor(ABCMeta):
    """Metaclass for classes made only by a factory (``StateGraph.compile()``).

    ``Cls(...)`` raises :class:`TypeError`; the factory calls ``Cls._create(...)``.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Rewrite ``__module__`` of the public objects in *namespace* to *module_name*."""
    seen: set[int] = set()

    def fix_one(qualname: str, name: str, obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is not None and mod.startswith("trigraph."):
            try:
                obj.__module__ = module_name
            except (AttributeError, TypeError):  # pragma: no cover - builtins
                return
            if isinstance(obj, type):
                obj.__name__ = name
                obj.__qualname__ = qualname
                for attr_name, attr_value in obj.__dict__.items():
                    fix_one(f"{qualname}.{attr_name}", attr_name, attr_value)

    for objname, obj in namespace.items():
        if not objname.startswith("_"):
            fix_one(objname, objname, obj)


@final
class InContext(Generic[T]):
    """Await *coro* in the awaiting Trio task, but inside *context*.

    Each step of the coroutine runs under ``context.run``, so the context
    variables it sets stay in *context*, as they would in a child task with
    its own copy of the context; Trio's traps, cancellations and results pass
    through unchanged. This is what lets the loop run a single-task step in
    its own task without letting the node's ``ContextVar.set`` leak.
    """

    __slots__ = ("_context", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, T], context: Context) -> None:
        self._coro = coro
        self._context = context

    def __await__(self) -> Generator[Any, Any, T]:
        run = self._context.run
        send = self._coro.send
        throw = self._coro.throw
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                trap = run(send, value) if error is None else run(throw, error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value = yield trap
                error = None
            except BaseException as exc:  # Cancelled, KeyboardInterrupt: into the coroutine
                value, error = None, exc


def _only_cancelled(exc: BaseException) -> trio.Cancelled | None:
    """The first ``Cancelled`` of *exc* if it is one or a group of nothing else."""
    if isinstance(exc, trio.Cancelled):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = [_only_cancelled(e) for e in exc.exceptions]
        if all(f is not None for f in found):
            return found[0]
    return None


def collapse(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What an internal nursery's *group* should surface as to a caller.

    Only the nursery's own level is looked into: its ``Cancelled`` members
    (or nested groups of nothing but ``Cancelled``, from nested nurseries) are
    the echo of a cancellation that the other members or the enclosing cancel
    scope already carry, and are dropped when anything else is left. One
    remaining member is returned as itself, even if it is an exception group
    the user raised; if only cancellations are left, the first ``Cancelled``
    is returned, which every cancel scope handles exactly like the group.
    Otherwise *group* is kept.
    """
    real: list[BaseException] = []
    cancelled: trio.Cancelled | None = None
    for exc in group.exceptions:
        only = _only_cancelled(exc)
        if only is None:
            real.append(exc)
        elif cancelled is None:
            cancelled = only
    if not real:
        assert cancelled is not None
        return cancelled
    if len(real) == 1:
        return real[0]
    return group


@asynccontextmanager
async def open_unwrapped_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose errors reach the caller as themselves.

    For a context manager's own tasks (a lease renewer, a checkpoint writer,
    a run behind a stream): if the body raises, the nursery's tasks are
    cancelled; the body's error, or one task's, is raised as itself, never in
    an ``ExceptionGroup`` (several real errors stay a group; see
    :func:`collapse`).

    Cancellation:
      Leaving waits for the tasks, like any nursery.
    """
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except Exception as exc:
                failure = exc  # raised below, outside the nursery's group
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failure = collapse(group)
        if failure is group:
            raise
    if failure is not None:
        raise failure


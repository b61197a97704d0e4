"""The small frozen values of the public API: ``START``, ``END``, ``Send``,
``Command``, ``RetryPolicy``, ``Interrupt`` and ``StateSnapshot``.

Every class here is an immutable attrs value: safe to share between tasks,
comparable, hashable where its contents are, and cheap to build on the hot
path (``Send`` is made once per fanned-out task).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

import attrs

from ._util import final

__all__ = [
    "END",
    "START",
    "Command",
    "Interrupt",
    "RetryPolicy",
    "Send",
    "StateSnapshot",
    "default_retry_on",
]

N = TypeVar("N")

START: Final = "__start__"
"""The virtual node a graph's entry edges leave from."""
END: Final = "__end__"
"""The virtual node that ends a branch."""


@final
@attrs.frozen(slots=True)
class Send:
    """Schedule *node* in the next superstep with *arg* as its whole input.

    Return a list of them from a conditional-edge router (or put them in
    ``Command(goto=...)``) to fan out: each ``Send`` is its own task, and the
    writes of the tasks are applied in the order of the ``Send`` objects.

    Example:
      >>> Send("summarise", {"doc": "a.txt"})
      Send(node='summarise', arg={'doc': 'a.txt'})

    .. versionadded:: 0.1
    """

    node: str
    arg: Any


def _goto_tuple(goto: str | Send | Sequence[str | Send] | None) -> tuple[str | Send, ...]:
    if goto is None:
        return ()
    if isinstance(goto, (str, Send)):
        return (goto,)
    return tuple(goto)


@final
@attrs.frozen(slots=True)
class Command(Generic[N]):
    """What a node returns to update state and choose where to go, or what a
    caller passes to ``ainvoke`` to answer an ``interrupt()``.

    A node annotated ``-> Command[Literal["a", "b"]]`` declares the nodes its
    ``goto`` may name, as ``add_node(..., destinations=("a", "b"))`` would:
    ``compile()`` counts them reachable and ``to_mermaid()`` draws them. A node
    that may return a ``Command`` without declaring where it goes (no return
    annotation, a bare ``Command``, ``Any``) may reach every node.

    Args:
      update: a partial state update, as a node would return it.
      goto: a node name, a ``Send``, or a sequence of them, run in the next
        superstep in addition to the node's static edges.
      resume: the value ``interrupt()`` returns when the thread resumes; a
        ``{interrupt_id: value}`` mapping answers several pending interrupts.

    Example:
      >>> Command(update={"n": 1}, goto="next")
      Command(update={'n': 1}, goto=('next',), resume=None)

    .. versionadded:: 0.1
    """

    update: Mapping[str, Any] | None = None
    goto: tuple[str | Send, ...] = attrs.field(default=(), converter=_goto_tuple)
    resume: Any = None


def default_retry_on(exc: BaseException) -> bool:
    """The default ``RetryPolicy.retry_on``: transient failures only.

    Retries connection errors, timeouts, ``httpx`` transport errors and any
    exception with a true ``retryable`` attribute (``LLMError`` sets it for
    HTTP 429 and 5xx). Never retries programming errors such as ``TypeError``,
    ``ValueError`` or ``KeyError``.
    """
    retryable = getattr(exc, "retryable", None)
    if isinstance(retryable, bool):
        return retryable
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"RetryPolicy.{attribute.name} must be >= 0, got {value!r}")


@final
@attrs.frozen(kw_only=True, slots=True)
class RetryPolicy:
    """How a node is retried after an exception that *retry_on* accepts.

    Attempt *n* (from 1) waits ``min(initial_interval * backoff_factor**(n-1),
    max_interval)`` seconds before attempt *n+1*, scaled by a random factor in
    ``[0.5, 1.5)`` when *jitter* is true. The waits use ``trio.sleep``, so tests
    under ``MockClock`` take no real time. After the last attempt the original
    exception is raised, unchanged but for a note.

    Args:
      max_attempts: attempts in all, the first included (>= 1).
      retry_on: a predicate, an exception class, or a tuple of classes.

    Example:
      >>> RetryPolicy(max_attempts=5).max_attempts
      5

    .. versionadded:: 0.1
    """

    max_attempts: int = 3
    initial_interval: float = attrs.field(default=0.5, validator=_positive)
    backoff_factor: float = attrs.field(default=2.0, validator=_positive)
    max_interval: float = attrs.field(default=128.0, validator=_positive)
    jitter: bool = True
    retry_on: Callable[[BaseException], bool] | type[BaseException] | tuple[
        type[BaseException], ...
    ] = default_retry_on

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether *exc* is worth another attempt under this policy."""
        retry_on = self.retry_on
        if isinstance(retry_on, (type, tuple)):
            return isinstance(exc, retry_on)
        return bool(retry_on(exc))

    def interval(self, attempt: int) -> float:
        """The wait before the attempt after *attempt* (from 1), before jitter."""
        return float(min(self.initial_interval * self.backoff_factor ** (attempt - 1),
                         self.max_interval))


@final
@attrs.frozen(slots=True)
class Interrupt:
    """A pause requested by ``interrupt(value)`` in *node*, waiting for a resume.

    *id* is stable: the same pause has the same id however often the thread is
    read, so ``Command(resume={id: value})`` can answer it.

    .. versionadded:: 0.1
    """

    value: Any
    node: str
    id: str


@final
@attrs.frozen(slots=True)
class StateSnapshot:
    """The state of a thread at one checkpoint.

    Attributes:
      values: the state values.
      next: names of the nodes still to run (empty when the thread is done).
      step: the superstep the checkpoint was written after (0: the input).
      checkpoint_id: the id to pass as ``checkpoint_id=`` for time travel.
      interrupts: the pauses waiting for ``Command(resume=...)``.
      parent_checkpoint_id: the checkpoint this one follows, if any.

    .. versionadded:: 0.1
    """

    values: dict[str, Any]
    next: tuple[str, ...]
    step: int
    checkpoint_id: str
    interrupts: tuple[Interrupt, ...] = ()
    parent_checkpoint_id: str | None = None

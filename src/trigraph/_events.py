"""The events a run streams: frozen attrs values, one class per kind.

Every event has ``step`` (the superstep it belongs to; 0 is the input),
``ns`` (the subgraph path, ``()`` at the top level) and a class-level
``mode`` naming the stream mode that carries it. Events are built only for
the modes a consumer asked for, so a mode nobody asked for costs nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

import attrs

from ._util import final

__all__ = [
    "Custom",
    "Event",
    "Interrupted",
    "Mode",
    "MODES",
    "TaskEnd",
    "TaskStart",
    "Token",
    "Update",
    "Values",
]

Mode: TypeAlias = Literal["values", "updates", "custom", "messages", "tasks"]
MODES: frozenset[str] = frozenset({"values", "updates", "custom", "messages", "tasks"})


@final
@attrs.frozen(slots=True)
class Values:
    """The whole state after superstep *step* (mode ``"values"``).

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "values"
    step: int
    state: Any
    ns: tuple[str, ...] = ()


@final
@attrs.frozen(slots=True)
class Update:
    """One node's write, sent as the node finishes (mode ``"updates"``).

    *update* is the partial state the node returned (``None`` if it wrote nothing).

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "updates"
    step: int
    node: str
    update: Any
    ns: tuple[str, ...] = ()


@final
@attrs.frozen(slots=True)
class Custom:
    """A value a node streamed: ``await get_stream_writer()(data)`` or a value
    an async-generator node yielded (mode ``"custom"``).

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "custom"
    step: int
    node: str
    data: Any
    ns: tuple[str, ...] = ()


@final
@attrs.frozen(slots=True)
class Token:
    """A piece of an LLM's answer streamed by ``trigraph.llm`` inside *node*
    (mode ``"messages"``).

    Attributes:
      text: the token text.
      model: the model name the server reported (or was asked for).
      stream_id: tells apart successive answers within one task.
      task_id: the node task that streamed it (tells apart the tasks of a
        ``Send`` fan-out to one node).

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "messages"
    step: int
    node: str
    text: str
    ns: tuple[str, ...] = ()
    model: str | None = None
    stream_id: int = 0
    task_id: str = ""


@final
@attrs.frozen(slots=True)
class TaskStart:
    """A task of *node* started in superstep *step* (mode ``"tasks"``).

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "tasks"
    step: int
    node: str
    task_id: str
    ns: tuple[str, ...] = ()


@final
@attrs.frozen(slots=True)
class TaskEnd:
    """A task finished (mode ``"tasks"``): *duration* in seconds of Trio's clock,
    *error* the ``repr`` of its exception, or ``None`` if it succeeded.

    .. versionadded:: 0.1
    """

    mode: ClassVar[Mode] = "tasks"
    step: int
    node: str
    task_id: str
    duration: float
    error: str | None = None
    ns: tuple[str, ...] = ()


@final
@attrs.frozen(slots=True)
class Interrupted:
    """The run paused in *node* at superstep *step*: an ``interrupt(value)``, or
    ``interrupt_before``/``interrupt_after`` (then *value* is ``None``). Sent in
    every mode, after the events of the last completed step.

    .. versionadded:: 0.1
    """

    mode: ClassVar[str] = "interrupts"
    step: int
    node: str
    value: Any
    id: str = ""
    ns: tuple[str, ...] = ()


Event: TypeAlias = Values | Update | Custom | Token | TaskStart | TaskEnd | Interrupted

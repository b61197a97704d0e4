"""The message values: frozen attrs classes with LangChain's names and fields.

A message is an immutable value: it is never changed after it is made (a
changed copy comes from ``attrs.evolve``), it compares by value, and it is
stored in a checkpoint as JSON through the engine's serializer (the classes
are registered with it when ``trigraph.messages`` is imported, so a fresh
process reads what another wrote). The invariant: a message's fields hold
only JSON values (str, numbers, lists, dicts) and the small frozen values
of this module, so a checkpoint can always hold it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

from .._util import final

__all__ = [
    "AIMessage",
    "AnyMessage",
    "Content",
    "HumanMessage",
    "InvalidToolCall",
    "MESSAGE_TYPES",
    "Message",
    "RemoveMessage",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "Usage",
]

Content: TypeAlias = str | list[Any]
"""A message's content: text, or a list of content parts (``{"type": "text", ...}``)."""


def _args(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    return value if type(value) is dict else dict(value)


@final
@attrs.frozen(slots=True)
class ToolCall:
    """A model's request to call tool *name* with *args*; *id* pairs it with its answer.

    Example:
      >>> ToolCall("get_weather", {"city": "Paris"}, "call_1")
      ToolCall(name='get_weather', args={'city': 'Paris'}, id='call_1')

    .. versionadded:: 0.2
    """

    name: str
    args: dict[str, Any] = attrs.field(factory=dict, converter=_args)
    id: str | None = None

    def __getitem__(self, key: str) -> Any:
        """``call["name"]``: read a field as LangChain's ``ToolCall`` dict allows."""
        if key == "type":
            return "tool_call"
        if key in ("name", "args", "id"):
            return getattr(self, key)
        raise KeyError(key)


@final
@attrs.frozen(slots=True)
class InvalidToolCall:
    """A tool call the model sent with arguments that are not a JSON object.

    It is kept (never dropped): ``ToolNode`` answers it with an error
    ``ToolMessage`` quoting *error*, so the model can try again.

    Attributes:
      args: the raw argument text the model sent.
      error: why it could not be read.

    .. versionadded:: 0.2
    """

    name: str
    args: str
    id: str | None
    error: str


@final
@attrs.frozen(slots=True)
class Usage:
    """Token counts of one model answer (from ``stream_options.include_usage``).

    Example:
      >>> Usage(10, 5, 15) + Usage(1, 2, 3)
      Usage(input_tokens=11, output_tokens=7, total_tokens=18, cached_tokens=0, reasoning_tokens=0)

    .. versionadded:: 0.2
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(*(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other),
                                              strict=True)))


def _text(content: Content) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


class _Base:
    """What every message has: ``content``, ``id`` and ``name`` (and ``type``).

    The repr shows the fields that differ from their defaults, so a history
    prints readably.
    """

    __slots__ = ()
    type: ClassVar[str]
    content: Content
    id: str | None
    name: str | None

    def __repr__(self) -> str:
        parts = []
        for a in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, a.name)
            if a.name == "content":
                if value != "" or a.default is attrs.NOTHING:
                    parts.append(repr(value))
            elif a.default is attrs.NOTHING or value != a.default:
                parts.append(f"{a.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __rich_repr__(self) -> Iterator[Any]:
        """The same fields for ``rich`` (the command line's pretty printer)."""
        for a in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, a.name)
            if a.name == "content":
                if value != "" or a.default is attrs.NOTHING:
                    yield value
            elif a.default is attrs.NOTHING or value != a.default:
                yield a.name, value

    @property
    def text(self) -> str:
        """The content as plain text (the text parts of a list, joined)."""
        return _text(self.content)


def _calls(value: Sequence[Any]) -> tuple[ToolCall, ...]:
    out = []
    for call in value:
        if isinstance(call, ToolCall):
            out.append(call)
        elif isinstance(call, Mapping):
            out.append(ToolCall(call["name"], call.get("args") or {}, call.get("id")))
        else:
            raise TypeError(f"a tool call is a ToolCall or a dict, not {call!r:.80}")
    return tuple(out)


def _invalid(value: Sequence[Any]) -> tuple[InvalidToolCall, ...]:
    out = []
    for call in value:
        if isinstance(call, InvalidToolCall):
            out.append(call)
        elif isinstance(call, Mapping):
            out.append(InvalidToolCall(call.get("name") or "", str(call.get("args") or ""),
                                       call.get("id"), str(call.get("error") or "")))
        else:
            raise TypeError(f"an invalid tool call is an InvalidToolCall, not {call!r:.80}")
    return tuple(out)


def _usage(value: Usage | Mapping[str, int] | None) -> Usage | None:
    if value is None or isinstance(value, Usage):
        return value
    return Usage(**{k: int(v) for k, v in value.items() if k in _USAGE_FIELDS})


_USAGE_FIELDS = frozenset({"input_tokens", "output_tokens", "total_tokens", "cached_tokens",
                           "reasoning_tokens"})


@final
@attrs.frozen(slots=True, repr=False)
class HumanMessage(_Base):
    """A message from the user (``role: user``).

    Example:
      >>> HumanMessage("hi", id="1")
      HumanMessage('hi', id='1')

    .. versionadded:: 0.2
    """

    type: ClassVar[str] = "human"
    content: Content
    id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)


@final
@attrs.frozen(slots=True, repr=False)
class SystemMessage(_Base):
    """Instructions for the model (``role: system``).

    .. versionadded:: 0.2
    """

    type: ClassVar[str] = "system"
    content: Content
    id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)


@final
@attrs.frozen(slots=True, repr=False)
class AIMessage(_Base):
    """A model's answer (``role: assistant``): text and/or tool calls.

    Attributes:
      tool_calls: the calls the model asked for, in the order it sent them.
      invalid_tool_calls: calls whose arguments could not be read; each
        still gets an (error) answer from ``ToolNode``.
      usage: the answer's token counts, if the server sent them.

    Example:
      >>> msg = AIMessage(tool_calls=[ToolCall("add", {"a": 1}, "c1")], id="m1")
      >>> msg.tool_calls[0].name, msg.content
      ('add', '')

    .. versionadded:: 0.2
    """

    type: ClassVar[str] = "ai"
    content: Content = ""
    id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), kw_only=True, converter=_calls)
    invalid_tool_calls: tuple[InvalidToolCall, ...] = attrs.field(
        default=(), kw_only=True, converter=_invalid
    )
    usage: Usage | None = attrs.field(default=None, kw_only=True, converter=_usage)


@final
@attrs.frozen(slots=True, repr=False)
class ToolMessage(_Base):
    """A tool's answer to the call *tool_call_id* (``role: tool``).

    Attributes:
      status: ``"error"`` when the call failed (the content says why).
      artifact: anything the tool returned beside the content, kept in the
        state but not sent to the model (a JSON value).

    Example:
      >>> ToolMessage("12 C", tool_call_id="call_1").status
      'success'

    .. versionadded:: 0.2
    """

    type: ClassVar[str] = "tool"
    content: Content
    tool_call_id: str
    status: Literal["success", "error"] = attrs.field(default="success", kw_only=True)
    id: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)
    artifact: Any = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.status not in ("success", "error"):
            raise ValueError(f"ToolMessage.status is 'success' or 'error', not {self.status!r}")


@final
@attrs.frozen(slots=True, repr=False)
class RemoveMessage(_Base):
    """Written to a messages key, deletes the message with this *id*
    (``REMOVE_ALL_MESSAGES`` deletes every message before it).

    Example:
      >>> RemoveMessage("m1")
      RemoveMessage(id='m1')

    .. versionadded:: 0.2
    """

    type: ClassVar[str] = "remove"
    id: str
    content: ClassVar[Content] = ""  # type: ignore[misc]
    name: ClassVar[str | None] = None  # type: ignore[misc]


AnyMessage: TypeAlias = AIMessage | HumanMessage | SystemMessage | ToolMessage | RemoveMessage
"""Any message value."""

Message: TypeAlias = AnyMessage

MESSAGE_TYPES: frozenset[type] = frozenset(
    {AIMessage, HumanMessage, SystemMessage, ToolMessage, RemoveMessage}
)
"""The message classes (checked by exact type on the hot path)."""

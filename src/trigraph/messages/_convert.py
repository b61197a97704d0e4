"""Coercion: LangChain's message shorthands into message values, and message
values into the OpenAI chat format.

:func:`to_message` follows ``langchain_core``'s ``convert_to_messages`` rule
by rule (a ``str`` is a human message; a ``(role, content)`` pair; a dict
with ``role`` or ``type`` and ``content``, OpenAI ``tool_calls`` included;
the ``{"lc": 1, "type": "constructor", ...}`` envelope; a LangChain message
object, read by duck typing), raising where it raises. :func:`to_openai`
is its inverse for the wire. Both are pure and never change their input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, cast

from ._values import (
    MESSAGE_TYPES,
    AIMessage,
    AnyMessage,
    HumanMessage,
    InvalidToolCall,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)

Status: TypeAlias = Literal["success", "error"]

__all__ = ["convert_to_messages", "to_message", "to_openai", "tool_call_to_openai"]

_ROLES: Final = ("'human', 'user', 'ai', 'assistant', 'tool', 'system', 'developer' "
                 "or 'remove'")
_ENVELOPE: Final = {
    "HumanMessage": "human", "HumanMessageChunk": "human",
    "AIMessage": "ai", "AIMessageChunk": "ai",
    "SystemMessage": "system", "SystemMessageChunk": "system",
    "ToolMessage": "tool", "ToolMessageChunk": "tool",
    "RemoveMessage": "remove",
}


def to_message(value: Any) -> AnyMessage:
    """One message from a message value or one of LangChain's shorthands.

    Raises:
      ValueError: an unknown role, a dict without ``role``/``type`` and
        ``content``, a tool message without ``tool_call_id``, or tool-call
        arguments that are not JSON.
      NotImplementedError: a value that is no kind of message (as LangChain).

    Example:
      >>> to_message(("assistant", "hello"))
      AIMessage('hello')
      >>> to_message({"role": "assistant", "content": None, "tool_calls": [
      ...     {"id": "c1", "type": "function",
      ...      "function": {"name": "add", "arguments": '{"a": 1}'}}]}).tool_calls
      (ToolCall(name='add', args={'a': 1}, id='c1'),)

    .. versionadded:: 0.2
    """
    if type(value) in MESSAGE_TYPES:
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return HumanMessage(value)
    if isinstance(value, Sequence):
        try:
            role, content = value
        except ValueError:
            raise NotImplementedError(
                f"a message as a sequence must be a (role, content) pair, not {value!r:.80}"
            ) from None
        return _from_role(role, content, {})
    if isinstance(value, Mapping):
        if (value.get("lc") == 1 and value.get("type") == "constructor"
                and isinstance(value.get("id"), list) and value["id"]
                and isinstance(value.get("kwargs"), dict)):
            mapped = _ENVELOPE.get(value["id"][-1])
            if mapped is not None:
                return to_message({"type": mapped, **value["kwargs"]})
        fields = dict(value)
        try:
            role = fields.pop("role") if "role" in fields else fields.pop("type")
            content = fields.pop("content") or ""
        except KeyError:
            raise ValueError(
                f"a message dict needs 'role' (or 'type') and 'content' keys, got {value!r:.200}"
            ) from None
        return _from_role(role, content, fields)
    kind = getattr(value, "type", None)
    if isinstance(kind, str) and hasattr(value, "content"):
        return _from_object(value, kind)
    raise NotImplementedError(
        f"cannot make a message of a {type(value).__name__}: pass a message, a str, "
        "a (role, content) pair or a message dict"
    )


def convert_to_messages(values: Iterable[Any]) -> list[AnyMessage]:
    """:func:`to_message` of each value, in order.

    .. versionadded:: 0.2
    """
    return [to_message(v) for v in values]


def _from_object(obj: Any, kind: str) -> AnyMessage:
    """A LangChain message object (read by duck typing, never imported)."""
    fields: dict[str, Any] = {"id": getattr(obj, "id", None), "name": getattr(obj, "name", None)}
    if kind in ("ai", "AIMessageChunk"):
        kind = "ai"
        fields["tool_calls"] = [
            {"name": c["name"], "args": c.get("args") or {}, "id": c.get("id")}
            for c in getattr(obj, "tool_calls", None) or ()
        ]
        invalid = getattr(obj, "invalid_tool_calls", None) or ()
        fields["invalid_tool_calls"] = [dict(c) for c in invalid]
        fields["usage"] = getattr(obj, "usage_metadata", None)
    elif kind == "tool":
        fields["tool_call_id"] = getattr(obj, "tool_call_id", None)
        fields["status"] = getattr(obj, "status", "success")
        fields["artifact"] = getattr(obj, "artifact", None)
    return _from_role(kind, obj.content, fields)


def _str_or_none(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"a message's {what} must be a str, not {value!r:.80}")


def _content(value: Any) -> Any:
    if isinstance(value, (str, list)):
        return value
    raise ValueError(f"a message's content is a str or a list of parts, not {value!r:.80}")


def _from_role(role: Any, content: Any, fields: dict[str, Any]) -> AnyMessage:
    msg_id = _str_or_none(fields.get("id"), "id")
    name = _str_or_none(fields.get("name"), "name")
    if role in ("human", "user"):
        return HumanMessage(_content(content), id=msg_id, name=name)
    if role in ("system", "developer"):
        return SystemMessage(_content(content), id=msg_id, name=name)
    if role in ("ai", "assistant"):
        calls, invalid = _read_calls(fields.get("tool_calls"))
        extra = fields.get("invalid_tool_calls") or ()
        return AIMessage(
            _content(content), id=msg_id, name=name, tool_calls=calls,
            invalid_tool_calls=(*invalid, *extra),
            usage=fields.get("usage") or fields.get("usage_metadata"),
        )
    if role == "tool":
        call_id = fields.get("tool_call_id")
        if not isinstance(call_id, str):
            raise ValueError(
                f"a tool message needs a 'tool_call_id' (str), got {call_id!r:.80}"
            )
        status = fields.get("status") or "success"
        if status not in ("success", "error"):
            raise ValueError(f"a tool message's status is 'success' or 'error', not {status!r:.40}")
        return ToolMessage(_content(content), call_id, status=cast(Status, status), id=msg_id,
                           name=name,
                           artifact=fields.get("artifact"))
    if role == "remove":
        if msg_id is None:
            raise ValueError("a 'remove' message needs the 'id' of the message to remove")
        return RemoveMessage(msg_id)
    raise ValueError(f"unknown message role {role!r:.80}; use one of {_ROLES}")


def _read_calls(raw: Any) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Tool calls in OpenAI's shape (``function.arguments`` as JSON text) or
    LangChain's (``name``/``args``/``id``)."""
    calls: list[ToolCall] = []
    if raw is None:
        return calls, []
    for call in raw:
        if isinstance(call, ToolCall):
            calls.append(call)
            continue
        if not isinstance(call, Mapping):
            raise ValueError(f"a tool call is a dict, not {call!r:.80}")
        if "function" in call:
            function = call["function"]
            args = function["arguments"]
            if isinstance(args, str):
                try:
                    args = json.loads(args, strict=False) if args.strip() else {}
                except json.JSONDecodeError as exc:
                    raise ValueError(
                        f"the arguments of tool call {call.get('id')!r} "
                        f"({function.get('name')!r}) are not valid JSON: {exc}"
                    ) from None
            calls.append(ToolCall(function["name"], args, call.get("id")))
        else:
            calls.append(ToolCall(call["name"], call.get("args") or {}, call.get("id")))
    return calls, []


def tool_call_to_openai(call: ToolCall | InvalidToolCall) -> dict[str, Any]:
    """A tool call as the ``tool_calls`` entry of an assistant message."""
    args = call.args if isinstance(call, InvalidToolCall) else json.dumps(
        call.args, ensure_ascii=False)
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": args}}


def to_openai(message: Any) -> dict[str, Any]:
    """A message (or shorthand) as an OpenAI chat message dict.

    Raises:
      ValueError: a ``RemoveMessage`` (it edits a history; it is not sent).

    Example:
      >>> to_openai(ToolMessage("12 C", tool_call_id="c1"))
      {'role': 'tool', 'content': '12 C', 'tool_call_id': 'c1'}

    .. versionadded:: 0.2
    """
    msg = to_message(message)
    cls = type(msg)
    if cls is HumanMessage:
        out: dict[str, Any] = {"role": "user", "content": msg.content}
    elif cls is AIMessage:
        assert isinstance(msg, AIMessage)
        calls: list[ToolCall | InvalidToolCall] = [*msg.tool_calls, *msg.invalid_tool_calls]
        out = {"role": "assistant", "content": msg.content or (None if calls else "")}
        if calls:
            out["tool_calls"] = [tool_call_to_openai(c) for c in calls]
    elif cls is ToolMessage:
        assert isinstance(msg, ToolMessage)
        out = {"role": "tool", "content": msg.content, "tool_call_id": msg.tool_call_id}
    elif cls is SystemMessage:
        out = {"role": "system", "content": msg.content}
    else:
        raise ValueError(f"{msg!r:.80} edits a message list; it cannot be sent to a model")
    if msg.name is not None and cls is not ToolMessage:
        out["name"] = msg.name
    return out

"""The JSON body of a chat request: messages, tools and ``tool_choice`` in
OpenAI's format, and the reply read back as an ``AIMessage``.

Pure and sync. The invariant: anything a caller may pass as a message (a
message value, a LangChain shorthand, an OpenAI dict) or as a tool (a
``trigraph.tools`` tool, a function, an OpenAI tool dict) becomes exactly
one entry of the body, or a ``TypeError``/``ValueError`` naming it before
any request is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from ..messages import AIMessage, InvalidToolCall, ToolCall, Usage, to_openai

__all__ = ["Messages", "Tools", "ai_message", "openai_messages", "openai_tool_choice",
           "openai_tools"]

Messages: TypeAlias = str | Sequence[Any]
"""A prompt: one user message as a ``str``, or a list of messages (message
values, ``(role, content)`` pairs, OpenAI dicts)."""
Tools: TypeAlias = Sequence[Any]


def openai_messages(prompt: Messages) -> list[Mapping[str, Any]]:
    """*prompt* as OpenAI message dicts (dicts pass through unchanged)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, Sequence) or not prompt:
        raise TypeError(
            "a prompt is a string or a non-empty list of messages (message values, "
            f"(role, content) pairs or dicts like {{'role': 'user', 'content': '...'}}), "
            f"not {prompt!r:.80}"
        )
    out: list[Mapping[str, Any]] = []
    for message in prompt:
        if isinstance(message, Mapping) and "role" in message:
            out.append(message)
            continue
        try:
            out.append(to_openai(message))
        except (ValueError, NotImplementedError) as exc:
            raise TypeError(f"message {len(out)} of the prompt cannot be sent: {exc}") from None
    return out


def openai_tools(tools: Tools) -> list[dict[str, Any]]:
    """Each tool as an OpenAI ``{"type": "function", "function": {...}}`` entry.

    Raises:
      ValueError: two tools with one name.
      TypeError: a tool that is neither a tool, a function nor a tool dict.
    """
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for item in tools:
        if isinstance(item, Mapping):
            spec = dict(item)
            if "function" not in spec and "name" in spec:  # the flat (Responses) shape
                spec = {"type": "function", "function": spec}
            name = spec.get("function", {}).get("name")
        elif callable(getattr(item, "to_openai", None)):
            spec = item.to_openai()
            name = item.name
        elif callable(item):
            from ..tools import tool

            made = tool(item)
            spec, name = made.to_openai(), made.name
        else:
            raise TypeError(
                f"a tool is a @tool, a function or an OpenAI tool dict, not {item!r:.80}"
            )
        if not isinstance(name, str):
            raise TypeError(f"the tool {item!r:.80} has no function name")
        if name in names:
            raise ValueError(f"two tools are named {name!r}; give each tool its own name")
        names.add(name)
        out.append(spec)
    return out


def openai_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> Any:
    """``tool_choice``: ``"auto"``, ``"none"``, ``"required"``, a tool's name
    (the model must call it), or an OpenAI ``tool_choice`` dict."""
    if choice in ("auto", "none", "required") or isinstance(choice, Mapping):
        return choice
    if isinstance(choice, str):
        known = [t.get("function", {}).get("name") for t in tools]
        if choice not in known:
            raise ValueError(
                f"tool_choice={choice!r} names no tool of this call (tools: "
                f"{', '.join(map(repr, known)) or 'none'}); use 'auto', 'none', 'required' "
                "or a tool's name"
            )
        return {"type": "function", "function": {"name": choice}}
    raise TypeError(f"tool_choice is 'auto', 'none', 'required', a tool name or a dict, "
                    f"not {choice!r:.80}")


def _usage(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt = count(raw.get("prompt_tokens"))
    completion = count(raw.get("completion_tokens"))
    total = count(raw.get("total_tokens")) or prompt + completion
    details = raw.get("prompt_tokens_details")
    cached = count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    details = raw.get("completion_tokens_details")
    reasoning = count(details.get("reasoning_tokens")) if isinstance(details, Mapping) else 0
    return Usage(prompt, completion, total, cached, reasoning)


def ai_message(
    text: str,
    calls: tuple[list[ToolCall], list[InvalidToolCall]] | None,
    usage: Mapping[str, Any] | None,
) -> AIMessage:
    """The reply as an ``AIMessage`` with a new id."""
    tool_calls, invalid = calls if calls is not None else ([], [])
    return AIMessage(text, id=str(uuid.uuid4()), tool_calls=tool_calls,
                     invalid_tool_calls=invalid, usage=_usage(usage))

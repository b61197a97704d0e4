"""A sans-IO assembler of streamed tool calls, robust to how real
OpenAI-compatible servers send them.

OpenAI sends each call's ``id``, ``type`` and ``function.name`` once, on the
call's first delta, then its ``function.arguments`` in fragments split
anywhere, one call after the other by increasing ``index``. Servers deviate:
a whole call in one delta (Ollama, Groq), ``id`` and ``name`` repeated on
every delta (LiteLLM, SGLang), ``id: ""`` on continuations (vLLM), ``index``
always 0 for several calls (Ollama), no ``index`` at all, arguments as a
JSON object instead of text, a summary chunk repeating a whole call. The
rules here cover all of them:

- a delta belongs to the call of its ``index``, unless it brings a new
  non-empty ``id`` different from that call's (then it starts a new call);
  without an ``index``, to the call of its ``id``, else to the last call;
- ``id``, ``type`` and ``name`` are set once and never concatenated;
- argument text is appended; an argument object replaces it; a fragment
  that repeats the whole text so far is a summary and is skipped.

The invariant: every call the server began is in the result, either as a
``ToolCall`` (its arguments a JSON object) or as an ``InvalidToolCall``
naming what was wrong. Nothing is dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import attrs

from .._util import final
from ..messages import InvalidToolCall, ToolCall

__all__ = ["ToolCallAssembler"]


@attrs.define(slots=True)
class _Partial:
    index: int | None
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.Factory(list)
    text: str = ""  # the arguments so far, joined (kept for the summary check)


@final
class ToolCallAssembler:
    """Collects the ``delta.tool_calls`` of one streamed answer.

    Example:
      >>> a = ToolCallAssembler()
      >>> a.add([{"index": 0, "id": "c1", "type": "function",
      ...         "function": {"name": "add", "arguments": ""}}])
      >>> a.add([{"index": 0, "function": {"arguments": '{"a": '}}])
      >>> a.add([{"index": 0, "function": {"arguments": '1}'}}])
      >>> a.result()
      ([ToolCall(name='add', args={'a': 1}, id='c1')], [])
    """

    __slots__ = ("_by_id", "_by_index", "_calls")

    def __init__(self) -> None:
        self._calls: list[_Partial] = []
        self._by_index: dict[int, _Partial] = {}
        self._by_id: dict[str, _Partial] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, deltas: Iterable[Any]) -> None:
        """Take the ``tool_calls`` list of one chunk's delta."""
        for delta in deltas:
            if isinstance(delta, dict):
                self._add_one(delta)

    def _new(self, index: int | None) -> _Partial:
        call = _Partial(index)
        self._calls.append(call)
        if index is not None:
            self._by_index[index] = call
        return call

    def _add_one(self, delta: dict[str, Any]) -> None:
        index = delta.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = None
        call_id = delta.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else ""
        function = delta.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        name = name if isinstance(name, str) and name else ""
        call: _Partial | None
        if index is not None:
            call = self._by_index.get(index)
            if call is None or (call_id and call.id and call_id != call.id):
                call = self._by_id.get(call_id) if call_id else None
                if call is None or call.index != index:
                    call = self._new(index)
        elif call_id:
            call = self._by_id.get(call_id) or self._new(None)
        elif self._calls and not (name and self._calls[-1].name):
            call = self._calls[-1]
        else:
            call = self._new(None)
        if call_id and not call.id:
            call.id = call_id
            self._by_id[call_id] = call
        if name and not call.name:
            call.name = name
        args = function.get("arguments")
        if isinstance(args, str):
            if args and not (args == call.text and _is_object(args)):
                call.arguments.append(args)
                call.text += args
        elif isinstance(args, dict):
            text = json.dumps(args, ensure_ascii=False)
            call.arguments[:] = [text]
            call.text = text

    def result(self) -> tuple[list[ToolCall], list[InvalidToolCall]]:
        """The calls, in the order the server began them: the readable ones,
        and those whose arguments are not a JSON object (or that lack a name)."""
        calls: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for partial in self._calls:
            call_id = partial.id or f"call_{uuid.uuid4().hex[:24]}"
            text = partial.text
            if not partial.name:
                invalid.append(InvalidToolCall("", text, call_id, "the call has no tool name"))
                continue
            try:
                args = json.loads(text, strict=False) if text.strip() else {}
            except json.JSONDecodeError as exc:
                invalid.append(InvalidToolCall(
                    partial.name, text, call_id, f"the arguments are not valid JSON ({exc})"
                ))
                continue
            if not isinstance(args, dict):
                invalid.append(InvalidToolCall(
                    partial.name, text, call_id,
                    f"the arguments must be a JSON object, not {type(args).__name__}",
                ))
                continue
            calls.append(ToolCall(partial.name, args, call_id))
        return calls, invalid


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False

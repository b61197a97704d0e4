"""A sans-IO decoder for Server-Sent Events and the chat chunks they carry.

:class:`SSEDecoder` turns the bytes of a ``text/event-stream`` body, fed in
reads of any size, into :class:`ServerSentEvent` values; :func:`read_chunk`
reads the JSON of one OpenAI-style ``chat.completion.chunk``. Nothing here
does I/O, imports Trio or keeps global state, so every edge case is a plain
unit test. The invariant: the events decoded do not depend on how the body
was split into reads (a line, an event, a ``\\r\\n`` pair or a multi-byte
UTF-8 character may be cut anywhere).
"""

from __future__ import annotations

import codecs
import json
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from .._util import final

__all__ = ["DONE", "ChatChunk", "SSEDecoder", "ServerSentEvent", "read_chunk"]

DONE: Final = "[DONE]"
"""The ``data`` of the event that ends an OpenAI-style stream."""


class ServerSentEvent(NamedTuple):
    """One dispatched event: its ``data`` lines joined by ``\\n``, its type
    (``"message"`` unless an ``event:`` field said otherwise), and the last
    event id and ``retry:`` value the stream has set so far.

    A ``NamedTuple`` rather than a frozen attrs class (the project's usual
    value type): one is built per token, and frozen attrs' ``__init__``
    costs three times as much.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@final
class SSEDecoder:
    """Decode an event stream incrementally, following the WHATWG rules.

    Lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r``; a blank line
    dispatches the event being built; lines starting with ``:`` are comments
    (keep-alives); an event without ``data:`` lines is not dispatched; an
    event left unfinished when the body ends is discarded. Bytes that are not
    UTF-8 are replaced with U+FFFD, and a leading byte-order mark is dropped.

    Two ways to use it, as h11 is used: :meth:`receive_data` with each read
    of the body, then :meth:`next_event` until it returns ``None`` (events are
    then built only as they are wanted), or :meth:`feed`, which does both.

    Example:
      >>> decoder = SSEDecoder()
      >>> decoder.feed(b': keep-alive\\r\\n\\r\\ndata: {"a"')
      []
      >>> [e.data for e in decoder.feed(b': 1}\\r\\n\\r\\ndata: [DONE]\\n\\n')]
      ['{"a": 1}', '[DONE]']
    """

    __slots__ = (
        "_after_cr",
        "_data",
        "_decoder",
        "_event",
        "_id",
        "_lines",
        "_partial",
        "_retry",
        "_started",
    )

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: deque[str] = deque()  # complete lines not yet interpreted
        self._partial: list[str] = []  # pieces of a line whose end has not arrived
        self._after_cr = False  # the last read ended with "\r": a "\n" next is its pair
        self._started = False  # the byte-order mark check is done
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def pending(self) -> bool:
        """Whether an event has begun but has not been dispatched yet."""
        return bool(self._lines or self._partial or self._data or self._event)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next read of the body; return the events it completed."""
        self.receive_data(chunk)
        events = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def receive_data(self, chunk: bytes) -> None:
        """Take the next read of the body (split into lines, not yet interpreted)."""
        text = self._decoder.decode(chunk)
        if not text:
            return
        if not self._started:
            self._started = True
            if text[:1] == "\ufeff":
                text = text[1:]
        if self._after_cr:
            self._after_cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:
                self._partial.append(text)
            return
        lines = text.split("\n")
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
            self._partial.clear()
        last = lines.pop()
        if last:
            self._partial.append(last)
        self._lines.extend(lines)

    def next_event(self) -> ServerSentEvent | None:
        """The next complete event of the data received, or ``None`` for now."""
        lines = self._lines
        data = self._data
        while lines:
            line = lines.popleft()
            if line[:5] == "data:":  # the common case, without a call
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif line:
                self._field(line)
            elif data:
                event = ServerSentEvent(
                    data[0] if len(data) == 1 else "\n".join(data),
                    self._event or "message",
                    self._id,
                    self._retry,
                )
                data.clear()
                self._event = ""
                return event
            else:
                self._event = ""
        return None

    def _field(self, line: str) -> None:
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)


class ChatChunk(NamedTuple):
    """What one ``chat.completion.chunk`` says about the first choice
    (a ``NamedTuple`` for the reason given at :class:`ServerSentEvent`).

    Attributes:
      text: the content delta (``""`` for role-only, tool-call, usage and
        finish chunks).
      finish_reason: why the answer ended, on the chunk that ends it.
      model: the model name the server reported, if any.
      error: the server's message when the chunk is an error object
        (``{"error": {"message": ...}}``) instead of a completion chunk.
      tool_calls: the raw ``delta.tool_calls`` list, if the chunk has one
        (assembled by ``_toolcalls.ToolCallAssembler``).
      usage: the ``usage`` object (the last chunk with
        ``stream_options.include_usage``), if any.
    """

    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    error: str | None = None
    tool_calls: list[Any] | None = None
    usage: dict[str, Any] | None = None


def read_chunk(data: str) -> ChatChunk:
    """Read the JSON *data* of one streamed chat event.

    Only choice ``0`` is read (``n=1``, the default). A chunk with an empty
    ``choices`` list (the usage chunk of ``stream_options.include_usage``)
    carries no text.

    Raises:
      ValueError: *data* is not a JSON object.

    Example:
      >>> read_chunk('{"model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}').text
      'Hi'
      >>> read_chunk('{"choices": [], "usage": {"total_tokens": 3}}').usage
      {'total_tokens': 3}
    """
    obj = _decode(data)
    if type(obj) is not dict:
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    model = obj.get("model")
    if type(model) is not str:
        model = None
    usage = obj.get("usage")
    if type(usage) is not dict:
        usage = None
    choices = obj.get("choices")
    if not choices or type(choices) is not list:
        if "error" in obj:
            return ChatChunk(model=model, error=error_message(obj) or data)
        return ChatChunk(model=model, usage=usage)
    choice = choices[0]
    if type(choice) is not dict or choice.get("index", 0) != 0:
        return ChatChunk(model=model, usage=usage)
    delta = choice.get("delta")
    text = None
    calls = None
    if type(delta) is dict:
        text = delta.get("content")
        calls = delta.get("tool_calls")
        if type(calls) is not list:
            calls = None
    reason = choice.get("finish_reason")
    return ChatChunk(
        text if type(text) is str else "",
        reason if type(reason) is str else None,
        model,
        None,
        calls,
        usage,
    )


_decode: Final = json.JSONDecoder().decode  # json.loads without its argument checks


def error_message(body: Any) -> str | None:
    """The message of an OpenAI-style error body, or ``None`` if it has none.

    Accepts ``{"error": {"message": ...}}``, ``{"error": "..."}`` and
    ``{"message": ...}``, the shapes compatible servers use.

    Example:
      >>> error_message({"error": {"message": "Rate limit reached", "type": "requests"}})
      'Rate limit reached'
    """
    if not isinstance(body, Mapping):
        return None
    error = body.get("error", body)
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, str):
            return message
    return None

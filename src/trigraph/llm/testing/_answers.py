"""What the token server says: the scripts that steer it, the story it
tells, and the exact chunks of an OpenAI-style answer.

Everything here is sync and pure (no I/O), so ``_server`` only moves
bytes. The invariant: an answer's content chunks, joined, are exactly the
tokens :func:`answer_tokens` gives for the request, so a test can predict
every token of every answer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs
import trio

from ..._util import final
from ...messages import ToolCall

__all__ = [
    "QUIRKS",
    "ChatRequest",
    "ChunkWriter",
    "Script",
    "ScriptSource",
    "answer_tokens",
    "completion_body",
    "scripted_calls",
    "turn_of",
    "prompt_token_count",
    "story_tokens",
]

_REASONS: Final = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                   405: "Method Not Allowed", 429: "Rate limit reached",
                   500: "The server had an error", 503: "The engine is overloaded"}


QUIRKS: Final = frozenset({
    "whole_calls", "repeat_id", "repeat_name", "empty_id", "index_zero", "no_index",
    "object_arguments", "summary_chunk", "finish_stop", "finish_with_last_delta",
})
"""The deviations from OpenAI's tool-call stream a :class:`Script` can play."""

ScriptedCall: TypeAlias = ToolCall | tuple[str, Mapping[str, Any] | str] | Mapping[str, Any]


def _check_quirks(instance: object, attribute: object, value: frozenset[str]) -> None:
    unknown = set(value) - QUIRKS
    if unknown:
        raise ValueError(
            f"unknown tool-call quirk(s) {sorted(unknown)}; choose from {sorted(QUIRKS)}"
        )


def _call_tuple(calls: Sequence[ScriptedCall]) -> tuple[ScriptedCall, ...]:
    return tuple(calls)


@final
@attrs.frozen(kw_only=True)
class Script:
    """How the server answers one chat request; the default answers normally.

    Args:
      answer: the answer to give instead of the story: a string (split into
        word tokens, each space starting a token) or the exact tokens.
      status: an HTTP error status to answer with instead (e.g. 429, 500),
        with an OpenAI-style body ``{"error": {"message": error, ...}}``.
      error: the message of that error body.
      stall_after: send this many tokens, then nothing more until the client
        disconnects.
      cut_after: send this many tokens, then end the response properly but
        without ``data: [DONE]``.
      drop_after: send this many tokens, then close the connection in the
        middle of the response body.
      hold: send the headers and the role chunk, then wait until this event
        is set before the first token, e.g. to have many answers open at once.
      tool_calls: tool calls to answer with (after the text, if any): each a
        ``ToolCall``, a ``(name, args)`` pair or a ``{"name", "args", "id"}``
        dict, whose *args* is a dict or the exact argument text (to send
        text that is not JSON). A call without an id gets
        ``call_<turn>_<i>`` (*turn*: the assistant messages in the request).
        With tool calls and no *answer*, the reply has no text.
      quirks: how the calls deviate from OpenAI's stream, as real servers
        do (see :data:`QUIRKS`): ``"whole_calls"`` (each call in one delta,
        as Ollama and Groq), ``"repeat_id"`` / ``"repeat_name"`` (on every
        delta, as LiteLLM and SGLang), ``"empty_id"`` (``id: ""`` on
        continuations, as vLLM), ``"index_zero"`` (every call at index 0,
        as Ollama), ``"no_index"``, ``"object_arguments"`` (arguments as a
        JSON object), ``"summary_chunk"`` (a last delta repeating each whole
        call, as LiteLLM), ``"finish_stop"`` (``finish_reason: "stop"``, as a
        forced ``tool_choice``), ``"finish_with_last_delta"`` (the finish
        reason on the last argument delta).
      fragment: the length of the argument pieces each call is split into.

    A list of scripts is a conversation: each request gets the script of
    its turn (the number of assistant messages it carries), so a resumed
    or repeated request gets the same answer. A request past the last turn
    gets an HTTP 500 saying so.

    Example:
      >>> Script(status=429).error
      'Rate limit reached (trigraph token server)'
      >>> turns = [Script(tool_calls=[("get_weather", {"city": "Paris"})]),
      ...          Script(answer="It is sunny in Paris.")]

    .. versionadded:: 0.1
    """

    answer: str | Sequence[str] | None = None
    status: int = 200
    error: str = attrs.field()
    stall_after: int | None = None
    cut_after: int | None = None
    drop_after: int | None = None
    hold: trio.Event | None = None
    tool_calls: Sequence[ScriptedCall] = attrs.field(default=(), converter=_call_tuple)
    quirks: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset,
                                         validator=_check_quirks)
    fragment: int = 7

    @error.default
    def _error(self) -> str:
        return f"{_REASONS.get(self.status, 'Error')} (trigraph token server)"


@final
@attrs.frozen
class ChatRequest:
    """A chat request the server received: its headers (names in lower case)
    and its JSON body.

    .. versionadded:: 0.1
    """

    headers: dict[str, str]
    body: dict[str, Any]


ScriptSource: TypeAlias = Script | Sequence[Script] | Callable[[dict[str, Any]], Script]
"""A script, a conversation (one script per turn), or a function choosing a
script from each request's JSON body."""


def turn_of(chat: Mapping[str, Any]) -> int:
    """The turn a request asks for: the assistant messages in its history."""
    return sum(1 for m in chat.get("messages", ())
               if isinstance(m, Mapping) and m.get("role") == "assistant")


def scripted_calls(chat: Mapping[str, Any], script: Script) -> list[tuple[str, str, str]]:
    """``(id, name, argument text)`` of each call the script answers with."""
    turn = turn_of(chat)
    out = []
    for i, call in enumerate(script.tool_calls):
        args: Mapping[str, Any] | str
        if isinstance(call, ToolCall):
            name, args, call_id = call.name, call.args, call.id
        elif isinstance(call, Mapping):
            name, args, call_id = call["name"], call.get("args", {}), call.get("id")
        else:
            name, args = call
            call_id = None
        text = args if isinstance(args, str) else json.dumps(dict(args))
        out.append((call_id or f"call_{turn}_{i}", str(name), text))
    return out


_json_text: Final = functools.lru_cache(maxsize=4096)(json.dumps)


@final
class ChunkWriter:
    """The SSE lines of one answer; the JSON around a token is built once."""

    __slots__ = ("_head",)

    def __init__(self, model: str, id: str) -> None:
        head = json.dumps({"id": id, "object": "chat.completion.chunk", "created": 0,
                           "model": model})
        self._head = "data: " + head[:-1] + ', "choices": ['

    def _choice(self, delta: str, finish: str | None) -> str:
        return (f'{self._head}{{"index": 0, "delta": {delta}, "finish_reason": '
                f"{json.dumps(finish)}}}]}}\n\n")

    def role(self) -> str:
        return self._choice('{"role": "assistant", "content": ""}', None)

    def token(self, text: str) -> str:
        return (f'{self._head}{{"index": 0, "delta": {{"content": {_json_text(text)}}}, '
                '"finish_reason": null}]}\n\n')

    def finish(self, reason: str) -> str:
        return self._choice("{}", reason)

    def tool_calls(
        self, calls: list[tuple[str, str, str]], script: Script, finish: str | None
    ) -> list[str]:
        """The chunks of the tool calls (and the finish, when a quirk puts it
        on the last delta); ``finish`` is then sent by the caller otherwise."""
        quirks = script.quirks
        deltas: list[dict[str, Any]] = []
        for i, (call_id, name, text) in enumerate(calls):
            index = 0 if "index_zero" in quirks else i

            def delta(first: bool, args: Any, *, whole: bool = False, index: int = index,
                      call_id: str = call_id, name: str = name) -> dict[str, Any]:
                d: dict[str, Any] = {} if "no_index" in quirks else {"index": index}
                if first or whole or "repeat_id" in quirks:
                    d["id"] = call_id
                    d["type"] = "function"
                elif "empty_id" in quirks:
                    d["id"] = ""
                function: dict[str, Any] = {}
                if first or whole or "repeat_name" in quirks:
                    function["name"] = name
                function["arguments"] = args
                d["function"] = function
                return d

            if "object_arguments" in quirks:
                try:
                    deltas.append(delta(True, json.loads(text)))
                except ValueError:
                    deltas.append(delta(True, text))
            elif "whole_calls" in quirks:
                deltas.append(delta(True, text))
            else:
                deltas.append(delta(True, ""))
                size = max(1, script.fragment)
                deltas.extend(delta(False, text[j:j + size]) for j in range(0, len(text), size))
        if "summary_chunk" in quirks:
            for i, (call_id, name, text) in enumerate(calls):
                deltas.append({"index": 0 if "index_zero" in quirks else i, "id": call_id,
                               "type": "function",
                               "function": {"name": name, "arguments": text}})
        out = []
        last = len(deltas) - 1
        for j, d in enumerate(deltas):
            reason = finish if j == last and "finish_with_last_delta" in quirks else None
            out.append(self._choice(json.dumps({"tool_calls": [d]}), reason))
        return out

    def usage(self, prompt: int, completion: int) -> str:
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
        return f"{self._head}], \"usage\": {json.dumps(usage)}}}\n\n"


def completion_body(
    model: str, tokens: list[str], finish: str, calls: Sequence[tuple[str, str, str]] = ()
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens)}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": t}}
            for i, n, t in calls
        ]
    return {
        "id": "chatcmpl-0", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 0, "completion_tokens": len(tokens),
                  "total_tokens": len(tokens)},
    }


_STOP_WORDS: Final = frozenset({
    "a", "about", "an", "and", "are", "as", "at", "be", "can", "do", "does", "explain",
    "for", "give", "how", "i", "in", "is", "it", "me", "my", "of", "on", "or", "please",
    "simple", "story", "summarise", "summarize", "tell", "terms", "that", "the", "this",
    "to", "what", "why", "with", "write", "you", "your",
})
_MIDDLE: Final = (
    "It dreamed of {}.",
    "One day it met a {}.",
    "Together they went looking for the {}.",
    "Nobody had ever seen such a {}.",
    "At night the {} told it a secret.",
)


def _prompt_text(chat: Mapping[str, Any]) -> str:
    for message in reversed(chat.get("messages", [])):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def prompt_token_count(chat: Mapping[str, Any]) -> int:
    """The prompt's length for the usage chunk: its last user message's words."""
    return len(_prompt_text(chat).split())


def story_tokens(prompt: str) -> Iterator[str]:
    """The server's answer to *prompt*: a short story built from its words,
    as tokens (each space starts a token, so ``"".join`` gives the text).

    Example:
      >>> "".join(story_tokens("Tell me about the trio and the nursery"))
      'Once upon a time, there was a trio. It dreamed of nursery. In the end, the trio was happy.'

    .. versionadded:: 0.1
    """
    words: list[str] = []
    for raw in prompt.split():
        word = raw.strip(".,;:!?\"'()[]{}<>").lower()
        if any(c.isalpha() for c in word) and word not in _STOP_WORDS and word not in words:
            words.append(word)
    hero, *rest = words[:8] or ["trio"]
    sentences = [f"Once upon a time, there was a {hero}."]
    sentences += [_MIDDLE[i % len(_MIDDLE)].format(w) for i, w in enumerate(rest)]
    sentences.append(f"In the end, the {hero} was happy.")
    first = True
    for word in " ".join(sentences).split(" "):
        yield word if first else " " + word
        first = False


def answer_tokens(chat: Mapping[str, Any], script: Script) -> Iterator[str]:
    """The tokens that answer *chat*: the script's fixed answer, else the
    story (no text for a script of tool calls alone)."""
    if script.answer is None:
        if script.tool_calls:
            return iter(())
        return story_tokens(_prompt_text(chat))
    if isinstance(script.answer, str):
        words = script.answer.split(" ")
        return iter([words[0], *(" " + w for w in words[1:])])
    return iter(script.answer)

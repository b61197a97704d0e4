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

__all__ = [
    "ChatRequest",
    "ChunkWriter",
    "Script",
    "ScriptSource",
    "answer_tokens",
    "completion_body",
    "prompt_token_count",
    "story_tokens",
]

_REASONS: Final = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                   405: "Method Not Allowed", 429: "Rate limit reached",
                   500: "The server had an error", 503: "The engine is overloaded"}


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

    Example:
      >>> Script(status=429).error
      'Rate limit reached (trigraph token server)'

    .. versionadded:: 0.1
    """

    answer: str | Sequence[str] | None = None
    status: int = 200
    error: str = attrs.field()
    stall_after: int | None = None
    cut_after: int | None = None
    drop_after: int | None = None
    hold: trio.Event | None = None

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


ScriptSource: TypeAlias = Script | Callable[[dict[str, Any]], Script]
"""A script, or a function choosing one from each request's JSON body."""


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

    def usage(self, prompt: int, completion: int) -> str:
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
        return f"{self._head}], \"usage\": {json.dumps(usage)}}}\n\n"


def completion_body(model: str, tokens: list[str], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-0", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": "".join(tokens)}}],
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
    """The tokens that answer *chat*: the script's fixed answer, else the story."""
    if script.answer is None:
        return story_tokens(_prompt_text(chat))
    if isinstance(script.answer, str):
        words = script.answer.split(" ")
        return iter([words[0], *(" " + w for w in words[1:])])
    return iter(script.answer)

"""``ChatModel``: an OpenAI-compatible chat client on ``httpx.AsyncClient``.

The facade: it builds each request (``_request``), opens the streamed
response and hands its reading to a ``_tokens.Tokens`` channel, and closes
the response (and with it the connection) when the block is left, shielded
and bounded. ``ainvoke`` reads a whole answer with its tool calls
(``_toolcalls``) and usage into an ``AIMessage``.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Final, TypeAlias

import httpx
import trio

from .._context import next_stream_id
from .._util import Sentinel, final
from .._version import __version__
from ..messages import AIMessage
from ._errors import translate
from ._request import Messages, ai_message, openai_messages, openai_tool_choice, openai_tools
from ._tokens import Tokens, run_out, status_error

__all__ = ["DEFAULT_TIMEOUT", "INHERIT", "ChatModel", "Messages", "Timeout"]

INHERIT: Final = Sentinel("INHERIT")
"""The default of a call's ``timeout=``: use the model's own timeout."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(600.0, connect=10.0, pool=None)
"""Ten minutes without a byte (a long answer may think first), ten seconds to
connect, and no limit on waiting for a free pooled connection."""

_LIMITS: Final = httpx.Limits(max_connections=256, max_keepalive_connections=64)
_CLOSE_GRACE: Final = 1.0  # bound of the shielded close (it does not block on I/O)

Timeout: TypeAlias = float | httpx.Timeout | None


@final
class ChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Every answer is streamed (``"stream": true``, Server-Sent Events), so its
    tokens reach the caller as they arrive; inside a running graph node they
    also reach the run's ``"messages"`` stream as ``Token`` events, with no
    code in the node. One model serves any number of concurrent answers over
    one connection pool: up to 256 connections at once, and answers beyond
    that wait for a free connection (no pool timeout).

    Args:
      base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"``; default
        ``$OPENAI_BASE_URL``, else ``"https://api.openai.com/v1"``.
      model: the model name sent with each request; default ``$OPENAI_MODEL``,
        else ``"gpt-4o-mini"``.
      api_key: sent as ``Authorization: Bearer ...``; default
        ``$OPENAI_API_KEY``. ``""`` sends no key.
      timeout: for each request, in seconds or as an ``httpx.Timeout``
        (``None``: none). httpx timeouts bound each wait (to connect, for the
        next bytes), not the whole answer; bound that with a node's
        ``timeout=`` or ``trio.fail_after``. Applies with *client* too.
      headers: extra headers for each request.
      client: an ``httpx.AsyncClient`` to send through. It stays the
        caller's: :meth:`aclose` leaves it open. Without it the model opens
        its own connection pool on first use and closes it in :meth:`aclose`.
      **params: request parameters sent with every call (``temperature``,
        ``max_tokens``, ...); a call's own parameters override them.

    Every failure is an ``LLMError``: httpx exceptions are translated where
    they are met (``raise LLMError(...) from exc``), so none reaches the
    caller, and ``LLMError.retryable`` tells a ``RetryPolicy`` what to retry.

    Example:
      >>> import trio
      >>> from trigraph.llm import ChatModel
      >>> from trigraph.llm.testing import open_token_server
      >>> async def main():
      ...     async with open_token_server() as server:
      ...         async with ChatModel(server.base_url, "story") as model:
      ...             return await model.complete("a fox", max_tokens=4)
      >>> trio.run(main)
      'Once upon a time,'

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        **params: Any,
    ) -> None:
        _check_params(params)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.base_url = base_url.rstrip("/")
        self.model = model or os.environ.get("OPENAI_MODEL") or "gpt-4o-mini"
        self.params = params
        self.timeout = timeout
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY")
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"Accept": "text/event-stream", "User-Agent": f"trigraph/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})
        self._client = client
        self._owns_client = client is None
        self._closed = False

    def __repr__(self) -> str:
        return f"<ChatModel {self.model!r} at {self.base_url}>"

    async def __aenter__(self) -> ChatModel:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the model's own connection pool (a *client* passed in stays open).

        Later calls raise ``RuntimeError``; closing twice is allowed.

        Cancellation:
          A checkpoint. The pool's connections are closed even when the
          calling task is cancelled (httpx shields that close).
        """
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()  # shielded inside: not a cancel point
        await trio.lowlevel.checkpoint()

    def stream(
        self, prompt: Messages, *, timeout: Timeout | Sentinel = INHERIT, **params: Any
    ) -> AbstractAsyncContextManager[trio.abc.ReceiveChannel[str]]:
        """Ask for an answer and receive its tokens as they arrive.

        ``async with model.stream(prompt) as tokens:`` gives a
        ``trio.abc.ReceiveChannel[str]``; ``async for text in tokens`` gets
        each token as soon as the server sends it and ends after the server's
        ``data: [DONE]``. A string *prompt* is one user message; otherwise
        pass the message list. Inside a graph node each token is also sent as
        a ``Token`` event of the node (one ``stream_id`` per answer) just
        before the reader gets it, so the node's events keep their order.
        Nothing is read before the reader asks: a reader that stops reading
        stops the download and holds no more than the socket's buffers.

        Args:
          prompt: a user message, or a list of ``{"role": ..., "content": ...}``.
          timeout: this call's timeout; default: the model's (``None``: none).
          **params: request parameters for this call, over the model's.

        Cancellation:
          Entering sends the request and waits for the response's status (an
          error status raises there); it is a checkpoint. Each ``receive()``
          is a checkpoint. Leaving the block (at the end, by ``break``, an
          exception or a cancellation) closes the response and its
          connection before it returns: the server sees the disconnect and
          nothing reads on in the background. A ``receive()`` cancelled while
          it waits for the server ends the answer the same way (httpx closes
          an interrupted response; later calls raise ``LLMError``), unlike a
          memory channel's. The channel accepts one reader at a time
          (``trio.BusyResourceError``) and raises ``trio.ClosedResourceError``
          once the block is left.

        Raises:
          LLMError: an error status (on entering), a connection failure, a
            timeout, or a stream that broke off before ``[DONE]`` (from
            ``receive()``, after the tokens that came before the failure).

        Example:
          >>> import trio
          >>> from trigraph.llm import ChatModel
          >>> from trigraph.llm.testing import open_token_server
          >>> async def main():
          ...     async with open_token_server() as server, ChatModel(server.base_url) as model:
          ...         async with model.stream("Tell me about a fox") as tokens:
          ...             async for text in tokens:
          ...                 print(text, end="|")
          >>> trio.run(main)
          Once| upon| a| time,| there| was| a| fox.| In| the| end,| the| fox| was| happy.|

        .. versionadded:: 0.1
        """
        return self._open(self._body(prompt, params), timeout)

    async def complete(
        self, prompt: Messages, *, timeout: Timeout | Sentinel = INHERIT, **params: Any
    ) -> str:
        """Stream an answer (as :meth:`stream` does) and return its whole text.

        Inside a graph node the tokens still reach the ``"messages"`` stream
        one by one as they arrive.

        Cancellation:
          A checkpoint. Cancelling closes the response and its connection
          before the cancellation propagates; no partial text is returned.

        Raises:
          LLMError: as for :meth:`stream`.

        .. versionadded:: 0.1
        """
        async with self._open(self._body(prompt, params), timeout) as tokens:
            return await tokens.collect()

    async def ainvoke(
        self,
        messages: Messages,
        *,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        timeout: Timeout | Sentinel = INHERIT,
        **params: Any,
    ) -> AIMessage:
        """Stream an answer that may call tools; return it as an ``AIMessage``.

        The reply's text streams as :meth:`complete`'s does (inside a node,
        each token reaches the ``"messages"`` stream as it arrives); its tool
        calls are assembled from the streamed deltas however the server
        splits, repeats or bundles them, and a call whose arguments are not
        a JSON object is kept in ``invalid_tool_calls`` (``ToolNode``
        answers it with an error), never dropped. Token usage is asked for
        (``stream_options.include_usage``; pass ``stream_options=`` to
        change that) and lands in ``usage`` when the server sends it.

        Args:
          messages: a user message, or the history: message values,
            ``(role, content)`` pairs or OpenAI-style dicts.
          tools: ``@tool`` tools, plain functions (made tools) or OpenAI
            tool dicts the model may call.
          tool_choice: ``"auto"``, ``"none"``, ``"required"``, a tool's name
            (the model must call it) or an OpenAI ``tool_choice`` dict;
            ``None`` leaves it to the server.
          timeout: this call's timeout; default: the model's (``None``: none).
          **params: request parameters for this call, over the model's.

        Cancellation:
          A checkpoint. Cancelling closes the response and its connection
          before the cancellation propagates; nothing is returned and the
          answer's usage is unknown.

        Raises:
          LLMError: as for :meth:`stream`.
          TypeError, ValueError: a message or tool that cannot be sent, two
            tools of one name, a ``tool_choice`` naming no tool (before any
            request).

        Example:
          >>> import trio
          >>> from trigraph.llm import ChatModel
          >>> from trigraph.llm.testing import Script, open_token_server
          >>> from trigraph.messages import ToolCall
          >>> def add(a: int, b: int) -> int:
          ...     '''Add two numbers.'''
          ...     return a + b
          >>> async def main():
          ...     script = Script(tool_calls=[ToolCall("add", {"a": 1, "b": 2})])
          ...     async with open_token_server(script=script) as server:
          ...         async with ChatModel(server.base_url) as model:
          ...             return await model.ainvoke("1 + 2?", tools=[add])
          >>> reply = trio.run(main)
          >>> reply.tool_calls[0].name, reply.tool_calls[0].args, reply.usage.output_tokens > 0
          ('add', {'a': 1, 'b': 2}, True)

        .. versionadded:: 0.2
        """
        body = self._body(messages, params)
        if tools:
            specs = openai_tools(tools)
            body["tools"] = specs
            if tool_choice is not None:
                body["tool_choice"] = openai_tool_choice(tool_choice, specs)
        elif tool_choice is not None:
            raise ValueError("tool_choice= needs tools=")
        body.setdefault("stream_options", {"include_usage": True})
        async with self._open(body, timeout, tool_calls=True) as tokens:
            text = await tokens.collect()
            calls = tokens.calls.result() if tokens.calls else None
            return ai_message(text, calls, tokens.usage)

    # -- internals --------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; make a new ChatModel")
        client = self._client
        if client is None:
            client = self._client = httpx.AsyncClient(
                limits=_LIMITS, timeout=self.timeout, verify=_ssl_context()
            )
        return client

    def _body(self, prompt: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        _check_params(params)
        return {"model": self.model, **self.params, **params,
                "messages": openai_messages(prompt), "stream": True}

    @asynccontextmanager
    async def _open(
        self, body: dict[str, Any], timeout: Timeout | Sentinel, *, tool_calls: bool = False
    ) -> AsyncIterator[Tokens]:
        client = self._http()
        url = self._url
        request = client.build_request(
            "POST", url, json=body, headers=self._headers,
            timeout=self.timeout if isinstance(timeout, Sentinel) else timeout,  # INHERIT
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.RequestError as exc:
            raise translate(exc, url) from exc
        chunks = response.aiter_bytes()
        try:
            if response.status_code >= 400:
                raise await status_error(response, chunks, url)
            tokens = Tokens(response, chunks, url, str(body["model"]), next_stream_id(),
                            tool_calls=tool_calls)
            try:
                yield tokens
            finally:
                tokens.closed = True
        finally:
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await response.aclose()
                await run_out(response, chunks)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context, made once: loading the CA bundle takes ~0.1 s,
    which httpx would otherwise pay for every model's pool."""
    return httpx.create_ssl_context()


def _check_params(params: Mapping[str, Any]) -> None:
    if "messages" in params:
        raise TypeError("messages= is set by ChatModel: pass the messages as the prompt")
    if "stream" in params:
        raise TypeError("stream= is set by ChatModel: every answer is streamed")

"""``ChatModel``: an OpenAI-compatible chat client on ``httpx.AsyncClient``.

One answer is one streamed HTTP response, read by the task that reads the
tokens. ``stream()`` opens the response and hands out a ``_Tokens`` channel;
its ``receive()`` decodes the event stream (``_sse``) only as far as the next
token, sends that token to the run's ``"messages"`` stream (``emit_token``)
and returns it. There is no helper task, so the invariant is simple: nothing
reads ahead or in the background. A reader that stops reading stops the
download (TCP backpressure), a cancelled reader stops it at once, and leaving
the ``stream()`` block closes the response, and with it the connection,
before the exit returns.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Final, TypeAlias

import httpx
import trio

from .._context import current_task, emit_token, next_stream_id
from .._util import Sentinel, final
from .._version import __version__
from ._errors import LLMError, status_retryable, translate
from ._sse import DONE, SSEDecoder, error_message, read_chunk

__all__ = ["DEFAULT_TIMEOUT", "INHERIT", "ChatModel", "Messages", "Timeout"]

INHERIT: Final = Sentinel("INHERIT")
"""The default of a call's ``timeout=``: use the model's own timeout."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(600.0, connect=10.0, pool=None)
"""Ten minutes without a byte (a long answer may think first), ten seconds to
connect, and no limit on waiting for a free pooled connection."""

_LIMITS: Final = httpx.Limits(max_connections=256, max_keepalive_connections=64)
_DRAIN_GRACE: Final = 1.0  # seconds to wait for the end of a body after [DONE]
_CLOSE_GRACE: Final = 1.0  # bound of the shielded close (it does not block on I/O)
_ERROR_BODY_LIMIT: Final = 64 * 1024

Messages: TypeAlias = str | Sequence[Mapping[str, Any]]
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
        if isinstance(prompt, str):
            messages: list[Mapping[str, Any]] = [{"role": "user", "content": prompt}]
        else:
            messages = list(prompt)
            if not messages or not all(isinstance(m, Mapping) for m in messages):
                raise TypeError(
                    "a prompt is a string or a non-empty list of message dicts like "
                    f"{{'role': 'user', 'content': '...'}}, not {prompt!r:.80}"
                )
        return {"model": self.model, **self.params, **params, "messages": messages,
                "stream": True}

    @asynccontextmanager
    async def _open(
        self, body: dict[str, Any], timeout: Timeout | Sentinel
    ) -> AsyncIterator[_Tokens]:
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
                raise await _status_error(response, chunks, url)
            tokens = _Tokens(response, chunks, url, str(body["model"]), next_stream_id())
            try:
                yield tokens
            finally:
                tokens.closed = True
        finally:
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await response.aclose()
                await _run_out(response, chunks)


@final
class _Tokens(trio.abc.ReceiveChannel[str]):
    """The tokens of one streamed answer, decoded on demand in the reader's task.

    A read of the body is only split into lines when it arrives; events are
    built and their JSON parsed as the reader asks for the next token, so the
    first token of a large read is not held back by the others.
    """

    __slots__ = ("_body", "_count", "_decoder", "_done", "_drained", "_error",
                 "_in_node", "_model", "_receiving", "_response", "_stream_id", "_url", "closed")

    def __init__(
        self,
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        url: str,
        model: str,
        stream_id: int,
    ) -> None:
        self._response = response
        self._body = chunks
        self._decoder = SSEDecoder()
        self._error: LLMError | None = None  # raised when the reader reaches it
        self._done = False  # [DONE] seen
        self._drained = False  # and the rest of the body read
        self._receiving = False
        self._count = 0
        self._url = url
        self._model = model
        self._stream_id = stream_id
        self._in_node = current_task() is not None  # else emit_token() does nothing
        self.closed = False

    async def receive(self) -> str:
        """The next token: at once if it has arrived, else when it does.

        Cancellation:
          Always a checkpoint. Cancelled at that checkpoint, it loses
          nothing. Cancelled while it waits for the server, it ends the
          answer: httpx closes a response whose read was interrupted, so the
          server sees the disconnect at once and later calls raise
          ``LLMError``.

        Raises:
          trio.EndOfChannel: after the server's ``[DONE]``.
          LLMError: the answer broke off (again on every later call).
        """
        if self.closed:
            raise trio.ClosedResourceError("the token stream is closed (its block was left)")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving from this stream")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint()
            text = self._next_text()
            while text is None:
                await self._fill()
                text = self._next_text()
            if self._in_node:
                await emit_token(text, model=self._model, stream_id=self._stream_id)
            return text
        finally:
            self._receiving = False

    async def collect(self) -> str:
        """Receive every token (one checkpoint, not one per token); return the text.

        Cancellation:
          A checkpoint. Cancelling it ends the answer: the response is closed
          when the ``stream()`` block is left, and what was read is lost.
        """
        await trio.lowlevel.checkpoint()
        parts: list[str] = []
        stream_id = self._stream_id
        in_node = self._in_node
        while True:
            text = self._next_text()
            if text is not None:
                if in_node:
                    await emit_token(text, model=self._model, stream_id=stream_id)
                parts.append(text)
                continue
            try:
                await self._fill()
            except trio.EndOfChannel:
                return "".join(parts)

    async def aclose(self) -> None:
        """Stop reading: close the response and its connection now (the
        ``stream()`` block does it anyway when it is left).

        Cancellation:
          A checkpoint, after the close: the connection is closed even if the
          caller is cancelled.
        """
        self.closed = True
        await self._response.aclose()  # shielded inside: not a cancel point
        await trio.lowlevel.checkpoint()

    def _next_text(self) -> str | None:
        """The next token of the data received, or ``None`` when it holds none."""
        if self._done or self._error is not None:
            return None  # what follows [DONE] or an error is not read
        next_event = self._decoder.next_event
        while (event := next_event()) is not None:
            data = event.data
            if data == DONE:
                self._done = True
                return None
            try:
                chunk = read_chunk(data)
            except ValueError:
                self._fail(LLMError(
                    f"{self._url} sent a chunk that is not a JSON object after "
                    f"{self._count} tokens", message=data[:200],
                ))
                return None
            if chunk.error is not None:
                self._fail(LLMError(
                    f"{self._url} reported an error after {self._count} tokens",
                    message=chunk.error, retryable=True,
                ))
                return None
            if chunk.model:
                self._model = chunk.model
            if chunk.text:
                self._count += 1
                return chunk.text
        return None

    def _fail(self, error: LLMError) -> LLMError:
        self._error = error
        return error

    async def _fill(self) -> None:
        """Read and decode the next part of the body, or raise how the answer ended."""
        if self._error is not None:
            raise self._error
        if self._done:
            if not self._drained:
                await self._drain()
            raise trio.EndOfChannel
        try:
            raw = await self._body.__anext__()
        except StopAsyncIteration:
            kind = self._response.headers.get("content-type")
            raise self._fail(LLMError(
                f"the answer from {self._url} ended after {self._count} tokens without "
                f"'data: [DONE]' (content type {kind!r}); it was cut off",
                retryable=True,
            )) from None
        except httpx.RequestError as exc:
            raise self._fail(translate(exc, self._url)) from exc
        except trio.Cancelled:
            # httpx closes a response whose read was interrupted: nothing more comes.
            self._fail(LLMError(
                f"the answer from {self._url} was abandoned after {self._count} tokens: a "
                "receive() was cancelled while waiting for the server",
                retryable=True,
            ))
            raise
        self._decoder.receive_data(raw)

    async def _drain(self) -> None:
        """Read the end of the body after ``[DONE]``, so the connection can be
        reused; give up after ``_DRAIN_GRACE`` (the connection is closed then)."""
        self._drained = True
        with trio.move_on_after(_DRAIN_GRACE):
            try:
                async for _ in self._body:
                    pass
            except httpx.RequestError:
                pass  # the answer is complete; a connection that broke is not reused


async def _status_error(
    response: httpx.Response, chunks: AsyncIterator[bytes], url: str
) -> LLMError:
    status = response.status_code
    raw = bytearray()
    try:
        async for part in chunks:
            raw += part
            if len(raw) >= _ERROR_BODY_LIMIT:
                break
    except httpx.RequestError:
        pass  # the status alone is the error
    text = raw.decode("utf-8", "replace").strip()
    try:
        message = error_message(json.loads(text))
    except ValueError:
        message = None
    return LLMError(
        f"HTTP {status} from {url}",
        status=status,
        message=message or text[:500] or response.reason_phrase or None,
        retryable=status_retryable(status),
    )


async def _run_out(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
    """Run a closed response's body iterator to its end.

    httpx reads a body through a stack of async generators (httpx#3686); one
    left suspended is finalized by the garbage collector, and Trio warns
    about each (``ResourceWarning``). Once the response is closed the next
    read fails at once, which ends every generator of the stack.
    """
    assert response.is_closed, "reading on would keep the connection busy"
    try:
        async for _ in chunks:
            pass  # pragma: no cover - the response is closed
    except (httpx.HTTPError, httpx.StreamError):
        pass


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

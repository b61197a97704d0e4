"""The token channel of one streamed answer, and what it leaves behind.

One answer is one streamed HTTP response, read by the task that reads the
tokens: ``_Tokens.receive()`` decodes the event stream (``_sse``) only as
far as the next token, sends that token to the run's ``"messages"`` stream
(``emit_token``) and returns it. There is no helper task, so the invariant
is simple: nothing reads ahead or in the background. A reader that stops
reading stops the download (TCP backpressure), a cancelled reader stops it
at once, and the ``stream()`` block closes the response before it exits.

Beside the text, a channel made for ``ChatModel.ainvoke`` collects the
answer's tool calls (``_toolcalls``), its usage and its finish reason from
the same chunks, at no cost to plain token streams.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import trio

from .._context import current_task, emit_token
from .._util import final
from ._errors import LLMError, status_retryable, translate
from ._sse import DONE, SSEDecoder, error_message, read_chunk
from ._toolcalls import ToolCallAssembler

__all__ = ["Tokens", "run_out", "status_error"]

_DRAIN_GRACE: Final = 1.0  # seconds to wait for the end of a body after [DONE]
_ERROR_BODY_LIMIT: Final = 64 * 1024


@final
class Tokens(trio.abc.ReceiveChannel[str]):
    """The tokens of one streamed answer, decoded on demand in the reader's task.

    A read of the body is only split into lines when it arrives; events are
    built and their JSON parsed as the reader asks for the next token, so the
    first token of a large read is not held back by the others.
    """

    __slots__ = ("_body", "_count", "_decoder", "_done", "_drained", "_error",
                 "_in_node", "_model", "_receiving", "_response", "_stream_id", "_url", "calls",
                 "closed", "finish_reason", "usage")

    def __init__(
        self,
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        url: str,
        model: str,
        stream_id: int,
        *,
        tool_calls: bool = False,
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
        self.calls = ToolCallAssembler() if tool_calls else None
        """The answer's tool calls, for a channel made to collect them."""
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    @property
    def model(self) -> str:
        """The model name the server reported (else the one asked for)."""
        return self._model

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
            if chunk.tool_calls is not None and self.calls is not None:
                self.calls.add(chunk.tool_calls)
            if chunk.usage is not None:
                self.usage = chunk.usage
            if chunk.finish_reason is not None:
                self.finish_reason = chunk.finish_reason
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


async def status_error(
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


async def run_out(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
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



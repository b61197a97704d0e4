"""The token server: HTTP/1.1 over ``h11`` on Trio sockets, one task per
connection, and the counters tests read.

A streamed answer runs beside a task that watches the connection, so a
client that hangs up stops the answer at once (even a stalled one) and is
counted; nothing outlives :func:`serve`, whose cancellation closes the
listener and every connection.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import trio

from ..._util import collapse, final
from .._client import ChatModel
from ._answers import (
    ChatRequest,
    ChunkWriter,
    Script,
    ScriptSource,
    answer_tokens,
    completion_body,
    prompt_token_count,
    scripted_calls,
    turn_of,
)

__all__ = [
    "TokenServer",
    "TokenServerStatistics",
    "open_demo_model",
    "open_token_server",
    "serve",
]


@final
@attrs.frozen(slots=True)
class TokenServerStatistics:
    """Counters of a :class:`TokenServer`.

    Attributes:
      connections: connections accepted so far.
      open_connections: connections not yet closed (by either side).
      requests: HTTP requests read.
      aborted: streamed answers the client left before their end (it closed
        the connection while tokens were still being sent or stalled).

    .. versionadded:: 0.1
    """

    connections: int
    open_connections: int
    requests: int
    aborted: int


@final
@attrs.define(eq=False)
class TokenServer:
    """A running token server, from :func:`open_token_server` or :func:`serve`.

    Attributes:
      base_url: the API root to give ``ChatModel``, ``http://127.0.0.1:<port>/v1``.
      script: what the next requests get; may be replaced between requests.
      tokens_per_second: the answer's pace (``None``: as fast as possible).
      requests: every chat request (headers and JSON body), in order of arrival.

    .. versionadded:: 0.1
    """

    base_url: str
    script: ScriptSource = attrs.Factory(Script)
    tokens_per_second: float | None = None
    static: Mapping[str, Any] = attrs.Factory(dict)
    requests: list[ChatRequest] = attrs.Factory(list)
    _connections: int = 0
    _open: int = 0
    _served: int = 0
    _aborted: int = 0
    _changed: trio.Event = attrs.Factory(trio.Event)

    def statistics(self) -> TokenServerStatistics:
        """The server's counters now."""
        return TokenServerStatistics(
            self._connections, self._open, self._served, self._aborted
        )

    async def wait_idle(self) -> None:
        """Wait until no connection is open.

        Cancellation:
          A checkpoint; waiting changes nothing.
        """
        while self._open:
            await self._changed.wait()
        await trio.lowlevel.checkpoint()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- one connection ---------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._connections += 1
        self._open += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(conn, stream)
                if request is None:
                    return
                self._served += 1
                if not await self._respond(conn, stream, *request):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            self._open -= 1
            self._touch()
            await trio.aclose_forcefully(stream)

    async def _respond(
        self, conn: h11.Connection, stream: trio.SocketStream, request: h11.Request, body: bytes
    ) -> bool:
        """Answer *request*; return whether the connection may serve another."""
        method = request.method.decode()
        path = request.target.decode().split("?", 1)[0]
        if path in self.static and method == "GET":
            return await _send_json(conn, stream, 200, self.static[path])
        if path == "/v1/models" and method == "GET":
            return await _send_json(conn, stream, 200, {"object": "list", "data": [
                {"id": "trigraph-story", "object": "model", "owned_by": "trigraph"}]})
        if path != "/v1/chat/completions":
            return await _send_error(conn, stream, 404, f"no route for {method} {path}")
        if method != "POST":
            return await _send_error(conn, stream, 405, "use POST")
        try:
            chat = json.loads(body)
            if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
                raise ValueError("the body needs a 'messages' list")
        except ValueError as exc:
            return await _send_error(conn, stream, 400, f"invalid request body: {exc}")
        self.requests.append(ChatRequest(
            {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}, chat
        ))
        source = self.script
        if isinstance(source, Script):
            script = source
        elif callable(source):
            script = source(chat)
        else:
            turns = list(source)
            turn = turn_of(chat)
            if turn >= len(turns):
                return await _send_error(
                    conn, stream, 500,
                    f"the script has {len(turns)} turn(s), and this request is turn "
                    f"{turn + 1} ({turn} assistant messages in its history)",
                )
            script = turns[turn]
        if script.status >= 400:
            return await _send_error(conn, stream, script.status, script.error)
        tokens = list(answer_tokens(chat, script))
        calls = scripted_calls(chat, script)
        limit = chat.get("max_completion_tokens", chat.get("max_tokens"))
        finish = "tool_calls" if calls else "stop"
        if calls and "finish_stop" in script.quirks:
            finish = "stop"
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, finish, calls = tokens[:limit], "length", []
        model = str(chat.get("model", "trigraph-story"))
        if not chat.get("stream"):
            return await _send_json(conn, stream, 200,
                                    completion_body(model, tokens, finish, calls))
        return await self._stream(conn, stream, chat, script, model, tokens, finish, calls)

    async def _stream(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        chat: dict[str, Any],
        script: Script,
        model: str,
        tokens: list[str],
        finish: str,
        calls: list[tuple[str, str, str]],
    ) -> bool:
        headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
        hung_up = trio.Event()
        ended = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_hangup, conn, stream, nursery.cancel_scope, hung_up)
            try:
                ended = await self._send_events(conn, stream, chat, script, model, tokens,
                                                finish, calls)
            except trio.BrokenResourceError:
                hung_up.set()
            nursery.cancel_scope.cancel()
        if hung_up.is_set():
            self._aborted += 1
            self._touch()
        return ended and not hung_up.is_set()

    async def _send_events(
        self,
        conn: h11.Connection,
        stream: trio.SocketStream,
        chat: dict[str, Any],
        script: Script,
        model: str,
        tokens: list[str],
        finish: str,
        calls: list[tuple[str, str, str]],
    ) -> bool:
        """Send the answer's events; return whether the response was ended properly."""
        delay = 0.0 if self.tokens_per_second is None else 1.0 / self.tokens_per_second
        stops = [(n, how) for n, how in ((script.stall_after, "stall"),
                                         (script.cut_after, "cut"),
                                         (script.drop_after, "drop")) if n is not None]
        stop_at, how = min(stops) if stops else (len(tokens), "")
        events = ChunkWriter(model, f"chatcmpl-{self._served}")
        out = [": trigraph token server\n\n", events.role()]
        if script.hold is not None:
            await _flush(conn, stream, out)
            await script.hold.wait()
        for token in tokens[:stop_at]:
            if delay:
                await _flush(conn, stream, out)
                await trio.sleep(delay)
            out.append(events.token(token))
            if len(out) >= 128:
                await _flush(conn, stream, out)
        if how == "stall":
            await _flush(conn, stream, out)
            await trio.sleep_forever()
        if how == "drop":
            await _flush(conn, stream, out)
            return False
        if how != "cut":
            if calls:
                out.extend(events.tool_calls(calls, script, finish))
            if not (calls and "finish_with_last_delta" in script.quirks):
                out.append(events.finish(finish))
            options = chat.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                completion = len(tokens) + sum(1 + len(t) // 4 for _, _, t in calls)
                out.append(events.usage(prompt_token_count(chat), completion))
            out.append("data: [DONE]\n\n")
        # The end of the body goes out with the last events, in one write.
        await _flush(conn, stream, out, end=True)
        return True


# -- HTTP plumbing ----------------------------------------------------------

async def _read_request(
    conn: h11.Connection, stream: trio.SocketStream
) -> tuple[h11.Request, bytes] | None:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, bytes(body)
        else:  # ConnectionClosed, or PAUSED after a half-closed connection
            return None


async def _watch_hangup(
    conn: h11.Connection, stream: trio.SocketStream, scope: trio.CancelScope, gone: trio.Event
) -> None:
    """Read while an answer streams; when the client hangs up, set *gone* and
    cancel *scope* (the answer being sent)."""
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            gone.set()
            scope.cancel()
            return
        conn.receive_data(data)  # a pipelined request, read after this answer


async def _flush(
    conn: h11.Connection, stream: trio.SocketStream, out: list[str], *, end: bool = False
) -> None:
    data = conn.send(h11.Data(data="".join(out).encode())) if out else b""
    out.clear()
    if end:
        data += conn.send(h11.EndOfMessage())
    if data:
        await stream.send_all(data)


async def _send_json(
    conn: h11.Connection, stream: trio.SocketStream, status: int, obj: Any
) -> bool:
    body = json.dumps(obj).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
    await stream.send_all(conn.send(h11.Data(data=body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return True


async def _send_error(
    conn: h11.Connection, stream: trio.SocketStream, status: int, message: str
) -> bool:
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": None, "code": status}
    return await _send_json(conn, stream, status, {"error": error})


# -- running it -------------------------------------------------------------


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens_per_second: float | None = None,
    script: ScriptSource | None = None,
    static: Mapping[str, Any] | None = None,
    task_status: trio.TaskStatus[TokenServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the token API on *host*:*port* until cancelled.

    ``server = await nursery.start(serve)`` returns the :class:`TokenServer`
    once it listens (*port* 0 picks a free port; read ``server.base_url``).
    *static* maps extra ``GET`` paths to JSON documents, for demos that
    fetch data before they ask the model.

    Cancellation:
      Runs until cancelled; then the listener and every open connection are
      closed before it returns.

    .. versionadded:: 0.1
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    server = TokenServer(
        f"http://{bound[0]}:{bound[1]}/v1",
        script=script or Script(),
        tokens_per_second=tokens_per_second,
        static=dict(static or {}),
    )
    task_status.started(server)
    await trio.serve_listeners(server._handle, listeners)


@asynccontextmanager
async def open_token_server(
    *,
    tokens_per_second: float | None = None,
    script: ScriptSource | None = None,
    static: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[TokenServer]:
    """Run a token server for the duration of the block; see :func:`serve`.

    Cancellation:
      Entering is a checkpoint and returns once the server listens. Leaving
      stops it and closes every connection it still has before returning.

    .. versionadded:: 0.1
    """
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            server: TokenServer = await nursery.start(
                functools.partial(
                    serve, host=host, port=port, tokens_per_second=tokens_per_second,
                    script=script, static=static,
                )
            )
            yield server
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # an error of the block leaves it as itself
        failure = collapse(group)
        if failure is group:
            raise
    if failure is not None:
        raise failure


@asynccontextmanager
async def open_demo_model(*, tokens_per_second: float | None = 40.0) -> AsyncIterator[ChatModel]:
    """A ``ChatModel`` for demos: the API ``$OPENAI_BASE_URL`` names if it is
    set (with ``$OPENAI_API_KEY`` and ``$OPENAI_MODEL``), else a token server
    started here, answering at *tokens_per_second* so that streaming shows.

    Cancellation:
      Entering is a checkpoint. Leaving closes the model's connections and
      stops the server, if one was started, before it returns.

    Example:
      >>> import trio
      >>> from trigraph.llm.testing import open_demo_model
      >>> async def main():
      ...     async with open_demo_model() as model:
      ...         async with model.stream("Tell me a story about a fox") as tokens:
      ...             async for text in tokens:
      ...                 print(text, end="", flush=True)
      >>> trio.run(main)  # doctest: +SKIP
      Once upon a time, there was a fox. In the end, the fox was happy.

    .. versionadded:: 0.1
    """
    if os.environ.get("OPENAI_BASE_URL"):
        async with ChatModel() as model:
            yield model
        return
    async with open_token_server(tokens_per_second=tokens_per_second) as server, \
            ChatModel(server.base_url, "trigraph-story", api_key="") as model:
        yield model

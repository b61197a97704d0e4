"""Server-sent events in the LangGraph Server API's framing, read from the store.

A frame is ``event: <name>\\r\\ndata: <one-line JSON>\\r\\nid: <seq>\\r\\n\\r\\n``;
every stored event carries its id, so a client that reconnects with
``Last-Event-ID: n`` gets exactly the events after *n*. When the run has
ended and every event has been sent, the stream sends ``event: end`` (no id)
and closes. A ``: heartbeat`` comment goes out every
:data:`HEARTBEAT` seconds of silence.

:func:`event_stream` is the body of a streaming response: it reads batches
of at most :data:`BATCH` events from the store, frames them into one chunk,
and only reads the next batch after the chunk was handed to the client, so
a client that stops reading stops the reads: its events wait in the
database, and the server holds one batch for it at most.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import trio
from sse_starlette import EventSourceResponse, ServerSentEvent

from ._store import SAFETY, TERMINAL, EventRow, RunStore

__all__ = ["BATCH", "HEARTBEAT", "END_FRAME", "event_stream", "frame", "sse_response"]

BATCH = 500
HEARTBEAT = 5.0
END_FRAME = b"event: end\r\ndata: null\r\n\r\n"
_ALWAYS = frozenset({"metadata", "error", "end"})


def frame(row: EventRow) -> bytes:
    """One stored event as an SSE frame (CRLF line ends, id after data)."""
    return b"event: %s\r\ndata: %s\r\nid: %d\r\n\r\n" % (row.event.encode(), row.data, row.seq)


def wanted(modes: Collection[str] | None) -> Callable[[str], bool] | None:
    """A filter on event names keeping the API *modes* (``None``: keep all)."""
    if not modes:
        return None
    names = {"messages" if m == "messages-tuple" else m for m in modes}
    if "messages" in modes:
        names.update(("messages/metadata", "messages/partial", "messages/complete"))

    def keep(event: str) -> bool:
        base = event.split("|", 1)[0]
        return base in _ALWAYS or base in names

    return keep


async def event_stream(
    store: RunStore,
    run_id: str,
    *,
    after: int = 0,
    modes: Collection[str] | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body of run *run_id*'s events after id *after*, then ``end``.

    Cancellation:
      Each read of the store and each wait is a checkpoint; cancelling (the
      client went away) leaves nothing behind: the run goes on and its
      events stay in the store for a later reader.
    """
    keep = wanted(modes)
    hub = store.hub
    last = after
    while True:
        wake = hub.event(f"events:{run_id}")
        rows, status = await store.read_events(run_id, last, BATCH)
        if rows:
            last = rows[-1].seq
            chunk = b"".join(frame(r) for r in rows if keep is None or keep(r.event))
            if chunk:
                yield chunk
            if len(rows) == BATCH:
                continue
        if status is None or status in TERMINAL:
            if not rows:
                yield END_FRAME
                return
            continue
        await hub.wait(wake, SAFETY)


def _heartbeat() -> ServerSentEvent:
    return ServerSentEvent(comment="heartbeat", sep="\r\n")


def sse_response(
    body: AsyncIterator[bytes],
    *,
    headers: dict[str, str],
    on_disconnect: Callable[[], Awaitable[Any]] | None = None,
) -> EventSourceResponse:
    """A streaming SSE response of *body* with heartbeats; *on_disconnect*
    runs (shielded, bounded) if the client goes away first."""

    async def closed(message: Any) -> None:
        if on_disconnect is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await on_disconnect()

    return EventSourceResponse(
        body,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
        ping=HEARTBEAT,
        ping_message_factory=_heartbeat,
        sep="\r\n",
        client_close_handler_callable=closed,
    )

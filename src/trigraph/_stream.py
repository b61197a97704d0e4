"""The ``stream()`` context manager: a run in a nursery, its events in a
bounded channel.

The run is a child task that owns the send side and closes it when it ends,
however it ends; the caller owns the receive side. Leaving the block cancels
the run and waits for it, so no task of the run outlives the block, and an
error of the run is raised out of the block as itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ._events import Event
from ._util import open_unwrapped_nursery

if TYPE_CHECKING:
    from ._compiled import CompiledGraph

__all__ = ["open_stream"]


@asynccontextmanager
async def open_stream(
    graph: CompiledGraph,
    input: Any,
    modes: Sequence[str] | str,
    buffer: int,
    options: dict[str, Any],
) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
    send, receive = trio.open_memory_channel[Event](buffer)
    async with open_unwrapped_nursery() as nursery:
        nursery.start_soon(_run, graph, input, send, modes, options)
        try:
            yield receive
        finally:
            # Cancel before closing: a node blocked on a full buffer must see
            # its run cancelled, not a BrokenResourceError from the close.
            nursery.cancel_scope.cancel()
            receive.close()


async def _run(
    graph: CompiledGraph,
    input: Any,
    send: trio.MemorySendChannel[Event],
    modes: Sequence[str] | str,
    options: dict[str, Any],
) -> None:
    await graph.ainvoke(input, events=send, modes=modes, **options)

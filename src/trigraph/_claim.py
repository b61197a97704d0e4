"""One run per thread: holding a thread's claim for the length of a run.

:func:`claim` takes the thread's :class:`~trigraph.abc.ThreadLock` from the
checkpointer before the run reads or writes anything, keeps it alive while
the run lives (renewing a claim with a ``ttl`` every ``ttl / 3`` seconds),
and releases it however the run ends. A claim that cannot be renewed means
another process took the thread over: the run is cancelled at once and
fails with ``ThreadBusyError(lost=True)``; its writes were fenced by the
claim, so none of them lands after the takeover.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._abc import Checkpointer, ThreadLock
from ._util import open_unwrapped_nursery

__all__ = ["RELEASE_TIMEOUT", "claim"]

RELEASE_TIMEOUT = 10.0
"""Seconds a cancelled run may spend releasing its claim (shielded)."""


@asynccontextmanager
async def claim(cp: Checkpointer, thread: str) -> AsyncIterator[ThreadLock]:
    """Hold *thread* for the body of the ``async with``.

    Cancellation:
      Entering is a checkpoint and raises ``ThreadBusyError`` before the body
      runs if another run holds the thread. Leaving releases the claim,
      shielded from cancellation and bounded by :data:`RELEASE_TIMEOUT`.
    """
    lock = await cp.lock_thread(thread)
    try:
        if lock.ttl is None:
            yield lock
            return
        async with open_unwrapped_nursery() as nursery:
            nursery.start_soon(_renew, cp, lock)
            yield lock
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_TIMEOUT):
            await cp.unlock_thread(lock)


async def _renew(cp: Checkpointer, lock: ThreadLock) -> None:
    assert lock.ttl is not None
    while True:
        await trio.sleep(lock.ttl / 3)
        await cp.renew_lock(lock)

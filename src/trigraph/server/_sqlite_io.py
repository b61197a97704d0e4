"""The SQLite run store's plumbing: its database threads, and the write lock
it shares with the checkpointer of the same file.

A :class:`_DbThread` runs one connection's calls, in order, in one
long-lived thread (cheaper than a ``trio.to_thread`` hop per call, which
finds and names a thread each time). :class:`LockedCheckpointer` makes a
checkpointer's writes take the store's write lock, so the two connections
of one process never meet in SQLite's busy handler, which sleeps in steps
of milliseconds.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from trigraph.abc import Checkpointer, CheckpointRecord, ThreadLock

__all__ = ["LockedCheckpointer", "_DbThread"]

T = TypeVar("T")


class _DbThread:
    """One long-lived thread running the store's calls one after the other.

    Cheaper than a ``trio.to_thread`` hop per call (no thread to find or
    name each time), and the calls keep their order. Like ``to_thread`` with
    ``abandon_on_cancel=False``: a call that has started is waited for, so
    a write is never left half-known.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, deliver = job
            deliver(outcome.capture(fn))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run *fn* in the thread. Cancellation: a checkpoint before *fn*
        starts; once it has started, it is waited for (shielded)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trigraph run store",
                                            daemon=True)
            self._thread.start()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []

        def deliver(result: outcome.Outcome[T]) -> None:
            def finish() -> None:
                box.append(result)
                done.set()

            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(finish)

        self._jobs.put((fn, deliver))
        with trio.CancelScope(shield=True):
            await done.wait()
        return box[0].unwrap()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


class LockedCheckpointer:
    """*inner* (a checkpointer on the store's file) with its writes taken under
    *lock*, the store's write lock; everything else is passed through."""

    def __init__(self, inner: Checkpointer, lock: trio.Lock) -> None:
        self.inner = inner
        self.lock = lock

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None:
        async with self.lock:
            await self.inner.put(record, lock=lock)

    async def put_pending(
        self, thread: str, ns: str, checkpoint_id: str, pending: bytes | None,
        *, lock: ThreadLock | None = None,
    ) -> None:
        async with self.lock:
            await self.inner.put_pending(thread, ns, checkpoint_id, pending, lock=lock)

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None:
        return await self.inner.get(thread, ns, checkpoint_id)

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]:
        return await self.inner.chain(thread, ns, checkpoint_id)

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]:
        return await self.inner.history(thread, ns)

    async def threads(self) -> list[str]:
        return await self.inner.threads()

    async def lock_thread(self, thread: str) -> ThreadLock:
        return await self.inner.lock_thread(thread)

    async def renew_lock(self, lock: ThreadLock) -> None:
        await self.inner.renew_lock(lock)

    async def unlock_thread(self, lock: ThreadLock) -> None:
        await self.inner.unlock_thread(lock)

    async def delete_thread(self, thread: str) -> None:
        async with self.lock:
            await self.inner.delete_thread(thread)

    async def prune(self, thread: str, *, keep: int) -> int:
        async with self.lock:
            return await self.inner.prune(thread, keep=keep)

    async def aclose(self) -> None:
        await self.inner.aclose()

"""The SQLite run store's plumbing: its database threads, and the write lock
it shares with the checkpointer of the same file.

Each connection's calls run, in order, in one long-lived thread (the
engine's ``WorkerThread``: cheaper than a ``trio.to_thread`` hop per call,
which finds and names a thread each time). :class:`LockedCheckpointer` makes a
checkpointer's writes take the store's write lock, so the two connections
of one process never meet in SQLite's busy handler, which sleeps in steps
of milliseconds.
"""

from __future__ import annotations

import trio

from trigraph.abc import Checkpointer, CheckpointRecord, ThreadLock

__all__ = ["LockedCheckpointer"]

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

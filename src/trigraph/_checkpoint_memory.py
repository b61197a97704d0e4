"""``MemoryCheckpointer``: the reference checkpoint store, in process memory.

It keeps records exactly as a persistent store would (serialized bytes), so a
graph behaves the same on it as on SQLite, minus surviving the process.
Every method is a Trio checkpoint, like any store that does I/O. Thread
claims live in the instance: a claim lasts until it is released (a process
that dies takes its memory, and its claims, with it).
"""

from __future__ import annotations

import secrets

import attrs
import trio

from ._abc import CheckpointRecord, ThreadLock, prunable
from ._exceptions import ThreadBusyError
from ._util import final

__all__ = ["MemoryCheckpointer"]


@final
class MemoryCheckpointer:
    """Checkpoints in memory: for tests, notebooks and runs that need pauses
    and time travel but not a restart.

    Example:
      >>> import trio
      >>> from trigraph import END, START, MemoryCheckpointer, StateGraph
      >>> async def inc(state: dict) -> dict:
      ...     return {"n": state["n"] + 1}
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(inc).add_edge(START, "inc").add_edge("inc", END)
      >>> graph = g.compile(checkpointer=MemoryCheckpointer())
      >>> async def main():
      ...     await graph.ainvoke({"n": 1}, thread="t")
      ...     return (await graph.get_state("t")).values
      >>> trio.run(main)
      {'n': 2}

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], dict[str, CheckpointRecord]] = {}
        self._threads: dict[str, None] = {}
        self._locks: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<MemoryCheckpointer with {len(self._threads)} threads>"

    def _fence(self, thread: str, lock: ThreadLock | None) -> None:
        if lock is not None and self._locks.get(thread) != lock.token:
            raise ThreadBusyError(thread, lost=True)

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None:
        """Store *record*. Cancellation: a checkpoint; stored iff it returns."""
        await trio.lowlevel.checkpoint()
        self._fence(record.thread, lock)
        self._records.setdefault((record.thread, record.ns), {})[record.id] = record
        if record.ns == "":
            self._threads.pop(record.thread, None)
            self._threads[record.thread] = None

    async def put_pending(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        pending: bytes | None,
        *,
        lock: ThreadLock | None = None,
    ) -> None:
        """Replace the pending writes of a record. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        self._fence(thread, lock)
        records = self._records[(thread, ns)]
        records[checkpoint_id] = attrs.evolve(records[checkpoint_id], pending=pending)

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None:
        """One record, or the latest. Cancellation: a checkpoint; reads only."""
        await trio.lowlevel.checkpoint()
        records = self._records.get((thread, ns))
        if not records:
            return None
        if checkpoint_id is None:
            return next(reversed(records.values()))
        return records.get(checkpoint_id)

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]:
        """A record and its ancestors back to a snapshot. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        records = self._records.get((thread, ns), {})
        out: list[CheckpointRecord] = []
        current = records.get(checkpoint_id)
        while current is not None:
            out.append(current)
            if current.snapshot is not None or current.parent_id is None:
                break
            current = records.get(current.parent_id)
        return out

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]:
        """All records, newest first. Cancellation: a checkpoint; reads only."""
        await trio.lowlevel.checkpoint()
        return list(reversed(self._records.get((thread, ns), {}).values()))

    async def threads(self) -> list[str]:
        """Thread ids, most recently written first. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        return list(reversed(self._threads))

    async def lock_thread(self, thread: str) -> ThreadLock:
        """Claim *thread* for one run until :meth:`unlock_thread`.

        Cancellation: a checkpoint; a cancelled call holds nothing.

        Raises:
          ThreadBusyError: another run holds the thread.
        """
        await trio.lowlevel.checkpoint()
        if thread in self._locks:
            raise ThreadBusyError(thread, holder="another run on this MemoryCheckpointer")
        lock = ThreadLock(thread, secrets.token_hex(8))
        self._locks[thread] = lock.token
        return lock

    async def renew_lock(self, lock: ThreadLock) -> None:
        """Check that *lock* is still held (claims here never lapse).

        Cancellation: a checkpoint.
        """
        await trio.lowlevel.checkpoint()
        self._fence(lock.thread, lock)

    async def unlock_thread(self, lock: ThreadLock) -> None:
        """Release *lock*; a claim no longer held is left alone. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        if self._locks.get(lock.thread) == lock.token:
            del self._locks[lock.thread]

    async def delete_thread(self, thread: str) -> None:
        """Forget every record of *thread*. Cancellation: a checkpoint.

        Raises:
          ThreadBusyError: a run holds the thread.
        """
        await trio.lowlevel.checkpoint()
        if thread in self._locks:
            raise ThreadBusyError(thread, holder="a run on this MemoryCheckpointer")
        for key in [k for k in self._records if k[0] == thread]:
            del self._records[key]
        self._threads.pop(thread, None)

    async def prune(self, thread: str, *, keep: int) -> int:
        """Drop the records older than the latest *keep* that those do not need.

        Cancellation: a checkpoint; pruned whole or not at all.
        """
        await trio.lowlevel.checkpoint()
        prunable((), keep)  # checks keep, even for a thread with no records
        removed = 0
        for key, records in self._records.items():
            if key[0] != thread:
                continue
            rows = [(r.id, r.parent_id, r.snapshot is not None) for r in records.values()]
            for rid in prunable(rows, keep, ns=key[1]):
                del records[rid]
                removed += 1
        return removed

    async def aclose(self) -> None:
        """Forget everything. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        self._records.clear()
        self._threads.clear()
        self._locks.clear()

"""``MemoryCheckpointer``: the reference checkpoint store, in process memory.

It keeps records exactly as a persistent store would (serialized bytes), so a
graph behaves the same on it as on SQLite, minus surviving the process.
Every method is a Trio checkpoint, like any store that does I/O.
"""

from __future__ import annotations

import attrs
import trio

from ._abc import CheckpointRecord
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

    def __repr__(self) -> str:
        return f"<MemoryCheckpointer with {len(self._threads)} threads>"

    async def put(self, record: CheckpointRecord) -> None:
        """Store *record*. Cancellation: a checkpoint; stored iff it returns."""
        await trio.lowlevel.checkpoint()
        self._records.setdefault((record.thread, record.ns), {})[record.id] = record
        if record.ns == "":
            self._threads.pop(record.thread, None)
            self._threads[record.thread] = None

    async def put_pending(
        self, thread: str, ns: str, checkpoint_id: str, pending: bytes | None
    ) -> None:
        """Replace the pending writes of a record. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
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

    async def aclose(self) -> None:
        """Forget everything. Cancellation: a checkpoint."""
        await trio.lowlevel.checkpoint()
        self._records.clear()
        self._threads.clear()

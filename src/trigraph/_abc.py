"""Protocols for implementers: the checkpoint store and the value serializer.

A checkpointer stores opaque, already-serialized records; it never sees a
Python state value, so every store behaves the same (and none can be made to
run code by what it reads). The engine decides what a record holds (a delta
of the keys one superstep wrote, or now and then a full snapshot) and how a
state is rebuilt from a chain of records.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

from ._util import final

__all__ = ["CheckpointRecord", "Checkpointer", "Serializer"]


@final
@attrs.frozen(slots=True)
class CheckpointRecord:
    """One checkpoint of one thread, as stored.

    Attributes:
      thread: the thread id.
      ns: the subgraph namespace (``""`` at the top level).
      id: this checkpoint's id, unique within the thread and namespace.
      parent_id: the checkpoint it follows (``None`` for a thread's first).
      step: the superstep it was written after.
      created_at: wall-clock time of writing (``time.time()``).
      body: serialized delta, next tasks and join state (JSON bytes).
      snapshot: serialized full state when this record carries one, else ``None``.
      pending: serialized pending writes and interrupts of the step that
        follows this checkpoint and has not completed, else ``None``.

    .. versionadded:: 0.1
    """

    thread: str
    ns: str
    id: str
    parent_id: str | None
    step: int
    created_at: float
    body: bytes
    snapshot: bytes | None = None
    pending: bytes | None = None


@runtime_checkable
class Checkpointer(Protocol):
    """Where durable threads keep their checkpoints.

    Required methods (all ``async``, all checkpoints in Trio's sense):

    - ``put(record)``: store a new record atomically (all of it or none).
    - ``put_pending(thread, ns, checkpoint_id, pending)``: replace the
      ``pending`` field of a stored record.
    - ``get(thread, ns, checkpoint_id=None)``: one record, the most recently
      written of the thread and namespace when *checkpoint_id* is ``None``;
      ``None`` if there is none.
    - ``chain(thread, ns, checkpoint_id)``: the record and its ancestors,
      newest first, up to and including the first one with a snapshot or no
      parent.
    - ``history(thread, ns)``: every record of the thread and namespace,
      newest first (forks included).
    - ``threads()``: the ids of all threads with a top-level checkpoint, most
      recently written first.
    - ``aclose()``: release resources; the checkpointer is unusable after.

    ``MemoryCheckpointer`` is the reference implementation.

    Cancellation:
      Every method is a checkpoint. A write (``put``, ``put_pending``) is
      atomic: if it is cancelled, the record is stored whole or not at all,
      and the engine never treats a cancelled write as done. Reads leave
      nothing behind.

    .. versionadded:: 0.1
    """

    async def put(self, record: CheckpointRecord) -> None: ...

    async def put_pending(
        self, thread: str, ns: str, checkpoint_id: str, pending: bytes | None
    ) -> None: ...

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None: ...

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]: ...

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]: ...

    async def threads(self) -> list[str]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Serializer(Protocol):
    """Turns state values into bytes and back.

    Required methods: ``dumps(value) -> bytes`` (raises ``TypeError`` or
    ``ValueError`` for a value it cannot store) and ``loads(data) -> value``.
    Must never execute code found in the data (no pickle).

    .. versionadded:: 0.1
    """

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...

"""Protocols for implementers: the checkpoint store and the value serializer.

A checkpointer stores opaque, already-serialized records; it never sees a
Python state value, so every store behaves the same (and none can be made to
run code by what it reads). The engine decides what a record holds (a delta
of the keys one superstep wrote, or now and then a full snapshot) and how a
state is rebuilt from a chain of records.

Reducers (``Annotated[T, reducer]``) may carry one hook: a ``prepare``
attribute, ``prepare(value) -> value``, which the engine calls once on each
write to the key when the write is made (a node returning, the run's input,
``update_state``), before the write is streamed, stored or merged. A reducer
of messages uses it to give each new message its id once, so that ids do
not change when a write is replayed from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import attrs

from ._util import final

__all__ = ["CheckpointRecord", "Checkpointer", "Serializer", "ThreadLock", "prunable"]


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


@final
@attrs.frozen(slots=True)
class ThreadLock:
    """One run's claim on a thread, from :meth:`Checkpointer.lock_thread`.

    While a claim is held, every other ``lock_thread`` of the thread raises
    ``ThreadBusyError``, in this process or (with a shared database) in any
    other. Writes made with ``lock=`` are *fenced*: a store refuses them once
    the claim is no longer held, so a run that lost its thread can never
    interleave its checkpoints with the run that took it over.

    Attributes:
      thread: the thread claimed.
      token: unique to this claim; what fenced writes are checked against.
      ttl: seconds the claim lasts unless renewed with ``renew_lock`` (the
        engine renews it every ``ttl / 3`` while the run lives); ``None``
        when the claim lasts until it is released or its process dies.

    .. versionadded:: 0.2
    """

    thread: str
    token: str
    ttl: float | None = None


@runtime_checkable
class Checkpointer(Protocol):
    """Where durable threads keep their checkpoints.

    Required methods (all ``async``, all checkpoints in Trio's sense):

    - ``put(record, *, lock=None)``: store a new record atomically (all of it
      or none).
    - ``put_pending(thread, ns, checkpoint_id, pending, *, lock=None)``:
      replace the ``pending`` field of a stored record.
    - ``get(thread, ns, checkpoint_id=None)``: one record, the most recently
      written of the thread and namespace when *checkpoint_id* is ``None``;
      ``None`` if there is none.
    - ``chain(thread, ns, checkpoint_id)``: the record and its ancestors,
      newest first, up to and including the first one with a snapshot or no
      parent (or whose parent was pruned).
    - ``history(thread, ns)``: every record of the thread and namespace,
      newest first (forks included).
    - ``threads()``: the ids of all threads with a top-level checkpoint, most
      recently written first.
    - ``lock_thread(thread) -> ThreadLock``: claim the thread for one run;
      raise ``ThreadBusyError`` (naming the thread) if another claim holds it.
      A claim whose holder died must not hold the thread for longer than a
      bounded, documented time.
    - ``renew_lock(lock)``: extend a claim with a ``ttl``; raise
      ``ThreadBusyError(lost=True)`` if it is no longer held.
    - ``unlock_thread(lock)``: release a claim; releasing one that is no longer
      held does nothing.
    - ``delete_thread(thread)``: remove every record of the thread, in every
      namespace; ``ThreadBusyError`` if a run holds it.
    - ``prune(thread, *, keep)``: in each namespace of the thread, remove the
      records older than the latest *keep* (by write order) that those
      records do not need (their ancestors back to a snapshot; in a
      subgraph's namespace, all their ancestors); return how many records
      were removed. :func:`prunable` computes it. ``get`` of the latest record, ``chain`` of
      every kept record, and therefore ``get_state`` and resuming, are
      unchanged by it.
    - ``aclose()``: release resources; the checkpointer is unusable after.

    A write given ``lock=`` is fenced: it raises ``ThreadBusyError(lost=True)``
    and stores nothing if that claim is no longer held.

    ``MemoryCheckpointer`` is the reference implementation.

    Cancellation:
      Every method is a checkpoint. A write (``put``, ``put_pending``,
      ``delete_thread``, ``prune``) is atomic: if it is cancelled, it happened
      whole or not at all, and the engine never treats a cancelled write as
      done. A cancelled ``lock_thread`` holds nothing. Reads leave nothing
      behind.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``lock_thread``, ``renew_lock``, ``unlock_thread``, ``delete_thread``,
       ``prune``, and the *lock* argument of the writes.
    """

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None: ...

    async def put_pending(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        pending: bytes | None,
        *,
        lock: ThreadLock | None = None,
    ) -> None: ...

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None: ...

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]: ...

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]: ...

    async def threads(self) -> list[str]: ...

    async def lock_thread(self, thread: str) -> ThreadLock: ...

    async def renew_lock(self, lock: ThreadLock) -> None: ...

    async def unlock_thread(self, lock: ThreadLock) -> None: ...

    async def delete_thread(self, thread: str) -> None: ...

    async def prune(self, thread: str, *, keep: int) -> int: ...

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


def prunable(
    records: Iterable[tuple[str, str | None, bool]], keep: int, *, ns: str = ""
) -> set[str]:
    """The records ``prune(thread, keep=...)`` removes from namespace *ns*.

    *records* are ``(id, parent_id, has_snapshot)`` in write order, oldest
    first. The latest *keep* records stay, and so does every record one of
    them needs to be read: its ancestors back to the first one with a
    snapshot (or with no parent left); in a subgraph's namespace (*ns* not
    ``""``) all of its ancestors, since a subgraph resumed part-way replays
    what it wrote from its first record. Everything else is returned.

    A helper for implementers of :class:`Checkpointer`, so that every store
    prunes alike.

    Raises:
      ValueError: *keep* is less than 1 (use ``delete_thread`` to drop all).

    Example:
      >>> rows = [("a", None, True), ("b", "a", False), ("c", "b", False),
      ...         ("d", "c", True), ("e", "d", False)]
      >>> sorted(prunable(rows, keep=2))    # d has a snapshot: e and d need nothing older
      ['a', 'b', 'c']
      >>> sorted(prunable(rows, keep=3))    # c needs b, which needs a
      []
      >>> sorted(prunable(rows, keep=1, ns="sub:1.0"))   # a subgraph keeps its whole chain
      []

    .. versionadded:: 0.2
    """
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"prune(keep=...) must be an int >= 1, got {keep!r}; "
                         "delete_thread() removes a whole thread")
    rows = list(records)
    parents = {rid: (parent, snap) for rid, parent, snap in rows}
    needed: set[str] = set()
    for rid, _, _ in rows[-keep:]:
        current: str | None = rid
        while current is not None and current not in needed and current in parents:
            needed.add(current)
            parent, snap = parents[current]
            current = None if snap and not ns else parent
    return {rid for rid, _, _ in rows if rid not in needed}


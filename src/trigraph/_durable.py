"""Durable runs: what the loop writes after each superstep, and when.

Each record holds the delta of the keys its step wrote (the format is in
``_records``). Now and then a record carries a full snapshot instead: when
the step rewrote the whole state, or when the deltas written since the last
snapshot outweigh it. That keeps storage within about twice what was
written and bounds the chain a read has to replay. Steps never store
``steps x state size``.

Ordering: in ``"sync"`` durability the record of step *s* is committed
before step *s + 1* starts; ``"async"`` hands it to one writer task that
commits records in order while the next step runs; ``"exit"`` writes one
record (with a snapshot) when the run stops, however it stops. Starting,
resuming, forking and editing threads is ``_threads``' business.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from ._abc import Checkpointer, CheckpointRecord, ThreadLock
from ._context import Task
from ._exceptions import SerializationError
from ._loop import NO_ARG, Restored, Run, TaskPlan
from ._merge import Writes
from ._records import (
    Delta,
    Loaded,
    _encode_goto,
    _make_delta,
    _new_id,
    read_checkpoint,
)
from ._schema import MISSING
from ._serde import default_serializer
from ._types import Interrupt
from ._util import open_unwrapped_nursery

if TYPE_CHECKING:
    from ._compiled import Durability

__all__ = ["Durable"]

_MIN_SNAPSHOT_GAP = 4096
_FLUSH_TIMEOUT = 30.0


@attrs.define(eq=False)
class Durable:
    """The bridge between one run's loop and its checkpointer."""

    cp: Checkpointer
    thread: str
    ns: str = ""
    mode: Durability = "sync"
    head: str | None = None
    plans: list[TaskPlan] = attrs.Factory(list)
    serde: Any = default_serializer
    lock: ThreadLock | None = None
    """The run's claim on the thread; every write is fenced by it."""
    parent: str | None = None
    """A subgraph's: the parent checkpoint its parent's step started from."""
    alias: str | None = None
    """A fork resumed with answers: the checkpoint it was copied from, whose
    subgraphs' progress the fork continues."""
    _since_snapshot: int = 0
    _snapshot_size: int = 0
    _queue: trio.MemorySendChannel[CheckpointRecord] | None = None
    _dirty: bool = False
    _completed: int = 0
    _drained: trio.Event = attrs.Factory(trio.Event)
    _queued: int = 0
    _written: int = 0
    _progress: trio.Event | None = None
    _memo_lock: trio.Lock = attrs.Factory(trio.Lock)
    _unflushed: list[tuple[str, Any]] = attrs.Factory(list)
    _next: str | None = None
    """In ``"exit"`` durability: the id of the record of the state not yet written."""
    _listed: Sequence[tuple[Interrupt, str, str]] = ()
    """Interrupts a resumed step keeps listed until it completes."""

    @property
    def base(self) -> str | None:
        """The checkpoint the step in flight started from: its id, or in
        ``"exit"`` durability the id it will have once it is written."""
        return self._next if self._dirty else self.head

    # -- reading ----------------------------------------------------------

    async def load(self, checkpoint_id: str | None) -> Loaded | None:
        """Read a checkpoint and continue this run's lineage from it."""
        loaded = await read_checkpoint(
            self.cp, self.thread, checkpoint_id, ns=self.ns, serde=self.serde
        )
        if loaded is None:
            return None
        record = loaded.record
        self._snapshot_size, self._since_snapshot = loaded.sizes
        self.head = record.id
        self._completed = record.step
        self.plans = loaded.plans
        return loaded

    async def written_log(self) -> list[tuple[str, Any]]:
        """The raw writes of every step from the thread's root to the head, in order."""
        records = {r.id: r for r in await self.cp.history(self.thread, self.ns)}
        bodies: list[dict[str, Any]] = []
        current = records.get(self.head) if self.head is not None else None
        while current is not None:
            bodies.append(self.serde.loads(current.body))
            current = records.get(current.parent_id) if current.parent_id else None
        return [(k, v) for body in reversed(bodies) for k, v in body.get("w", ())]

    # -- writing (called by the loop) -------------------------------------

    def before_apply(self, run: Run, written: Sequence[tuple[str, Writes]]) -> dict[str, Any]:
        """The values, before the step is applied, of the reducer keys it writes."""
        values = run.values
        reducers = run.graph.schema.reducers
        if not reducers:
            return {}
        return {
            k: values.get(k, MISSING) for _, writes in written for k, _ in writes if k in reducers
        }

    async def after_step(
        self,
        run: Run,
        old: dict[str, Any] | None,
        keys: Sequence[str],
        plans: list[TaskPlan],
        written: list[tuple[str, Any]] | None = None,
    ) -> None:
        """Checkpoint the step just applied (``written``: a subgraph's raw writes)."""
        self.plans = plans
        self._completed = run.step
        if self.mode == "exit":
            self._dirty = True
            self._next = _new_id(self._completed)  # the id the step's record will have
            if written is not None:
                self._unflushed.extend(written)  # a subgraph's writes, for its parent
            return
        record = self._record(run, old or {}, keys, plans, written=written)
        self._listed = ()
        if self._queue is not None:
            self._queued += 1
            await self._queue.send(record)
        else:
            await self.put(record)

    async def put(self, record: CheckpointRecord) -> None:
        await self.cp.put(record, lock=self.lock)

    def _record(
        self,
        run: Run,
        old: dict[str, Any],
        keys: Sequence[str],
        plans: list[TaskPlan],
        force_snapshot: bool = False,
        written: list[tuple[str, Any]] | None = None,
    ) -> CheckpointRecord:
        values = run.values
        nxt = [[p.node] if p.arg is NO_ARG else [p.node, p.arg] for p in plans]
        joins = {str(k): sorted(v) for k, v in run.joins.items()}
        extra: dict[str, Any] = {} if written is None else {"w": [list(w) for w in written]}
        if self.parent is not None:
            extra["p"] = self.parent
        # A step that replaced every key's value (or the thread's first record)
        # is stored as a snapshot: the same bytes as its delta, and a base for
        # replays. A step that only appended to a key keeps the short delta.
        snapshot = None
        delta: Delta = {"s": {}}
        if not (force_snapshot or self.head is None):
            delta = _make_delta(old, values, keys)
        if force_snapshot or self.head is None or (
            "x" not in delta and len(delta["s"]) >= len(values)
        ):
            delta = {"s": {}}
            snapshot = self._dumps(values, "the state", values=values)
        body = self._dumps({"delta": delta, "next": nxt, "joins": joins, **extra}, None,
                           values=delta["s"])
        if snapshot is None:
            self._since_snapshot += len(body)
            if self._since_snapshot > max(self._snapshot_size, _MIN_SNAPSHOT_GAP):
                snapshot = self._dumps(values, "the state", values=values)
                body = self._dumps({"delta": {"s": {}}, "next": nxt, "joins": joins, **extra},
                                   None)
        if snapshot is not None:
            self._snapshot_size = len(snapshot)
            self._since_snapshot = 0
        record = CheckpointRecord(
            thread=self.thread,
            ns=self.ns,
            id=self._next or _new_id(self._completed),
            parent_id=self.head,
            step=self._completed,
            created_at=time.time(),
            body=body,
            snapshot=snapshot,
        )
        self.head = record.id
        self._next = None
        return record

    flush_timeout: ClassVar[float] = _FLUSH_TIMEOUT
    """Seconds a shielded write (a flush, a ``once()`` result) may take."""

    def check_storable(self, value: Any, what: str) -> None:
        """Raise ``SerializationError`` naming *what* if a checkpoint cannot hold *value*."""
        try:
            self.serde.dumps(value)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"cannot checkpoint {what} of thread {self.thread!r}: {exc}; "
                "store JSON values, attrs classes or dataclasses"
            ) from exc

    def _dumps(self, value: Any, what: str | None, values: dict[str, Any] | None = None) -> bytes:
        try:
            return bytes(self.serde.dumps(value))
        except (TypeError, ValueError) as exc:
            key = _find_culprit(self.serde, values if values is not None else value)
            where = f"key {key!r}" if key is not None else what or "the next tasks"
            raise SerializationError(
                f"cannot checkpoint {where} of thread {self.thread!r}: {exc}; "
                "store JSON values, attrs classes or dataclasses",
                key=key,
            ) from exc

    async def save_pending(
        self,
        run: Run,
        tasks: Mapping[str, Task | Restored],
        *,
        before: bool = False,
        interrupts: Sequence[tuple[Interrupt, str, str]] = (),
        keep_writer: bool = False,
    ) -> None:
        """Keep the writes of the finished tasks and the interrupts of a step that
        did not complete, on the checkpoint it started from (*before*: the run
        paused on ``interrupt_before`` and has not started the step;
        *keep_writer*: the run goes on, so ``"async"`` durability's writer stays)."""
        if self.mode == "exit":
            await self.flush(run)
        if keep_writer:
            await self._committed()
        else:
            await self._drain()
        if interrupts:
            self._listed = interrupts
        data: dict[str, Any] = {
            "tasks": {
                task_id: {
                    "node": t.node,
                    "writes": [list(w) for w in t.writes] if t.done else [],
                    "goto": _encode_goto(t.goto) if t.done else [],
                    "done": t.done,
                    "resume": t.resume,
                    **({"memo": t.memo} if t.memo and not t.done else {}),
                }
                for task_id, t in tasks.items()
                if t.done or t.resume or t.memo
            },
            "interrupts": list({
                row[2]: row
                for row in [
                    [i.value, i.node, i.id, task_id, t.node]
                    for task_id, t in tasks.items()
                    if isinstance(t, Task)
                    for i in t.interrupts
                ] + [[i.value, i.node, i.id, tid, owner] for i, tid, owner in interrupts]
            }.values()),
        }
        if before:
            data["before"] = True
        assert self.head is not None
        pending = self._dumps(data, "a pending write or interrupt value")
        await self.cp.put_pending(self.thread, self.ns, self.head, pending, lock=self.lock)

    async def save_memo(self, run: Run) -> None:
        """Record the ``once()`` results of the step in flight, as soon as one
        finishes: the pending writes of the checkpoint the step started from
        are rewritten whole, one writer at a time."""
        async with self._memo_lock:
            await self._committed()
            tasks = run.current_tasks()
            await self.save_pending(run, {t.id: t for t in tasks}, keep_writer=True,
                                    interrupts=self._listed)

    async def mark_paused(self, run: Run, *, before: bool) -> None:
        """The run pauses; *before* an ``interrupt_before`` node (marked, so that
        resuming runs the step instead of pausing again) or after a step."""
        if before:
            await self.save_pending(run, {}, before=True)
        elif self.mode == "exit":
            await self.flush(run)

    async def flush(self, run: Run) -> None:
        """In ``"exit"`` durability, write the state reached so far, once."""
        if self._dirty:
            self._dirty = False
            written, self._unflushed = self._unflushed, []
            await self.put(self._record(run, {}, [], self.plans, force_snapshot=True,
                                        written=written if self.parent is not None else None))

    async def _committed(self) -> None:
        """Wait until every record handed to the ``"async"`` writer is stored."""
        while self._written < self._queued:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()

    async def _drain(self) -> None:
        queue = self._queue
        if queue is not None:
            self._queue = None
            queue.close()
            await self._drained.wait()

    @asynccontextmanager
    async def writing(self, run: Run) -> AsyncIterator[None]:
        """Own the writer task of ``"async"`` durability and the final flush.

        On any exit the records already handed over are committed, in order,
        and ``"exit"`` durability writes its one record; this cleanup is
        shielded from cancellation but bounded to ``_FLUSH_TIMEOUT`` seconds.
        """
        if self.mode != "async":
            try:
                yield
            finally:
                if self.mode == "exit" and self._dirty:
                    with trio.CancelScope(shield=True), trio.move_on_after(_FLUSH_TIMEOUT):
                        await self.flush(run)
            return
        send, receive = trio.open_memory_channel[CheckpointRecord](1)
        self._queue = send
        self._drained = trio.Event()
        # The writer's scope is made here and the writer is started with
        # start_soon, so that no cancellation can leave a shielded writer
        # running with nobody to close its queue.
        writer = trio.CancelScope(shield=True)
        async with open_unwrapped_nursery() as nursery:
            nursery.start_soon(self._writer, receive, writer)
            try:
                yield
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(_FLUSH_TIMEOUT):
                        await self._drain()
                    writer.cancel()  # only matters if the drain timed out

    async def _writer(
        self, receive: trio.MemoryReceiveChannel[CheckpointRecord], scope: trio.CancelScope
    ) -> None:
        # In a shielded scope: a cancelled run still commits the records it
        # handed over, in order; ``writing()`` bounds how long that may take.
        with scope:
            try:
                async with receive:
                    async for record in receive:
                        await self.put(record)
                        self._written += 1
                        if self._progress is not None:
                            self._progress.set()
                            self._progress = None
            finally:
                self._drained.set()


def _find_culprit(serde: Any, values: Any) -> str | None:
    """The first key of *values* whose value *serde* cannot store, if any."""
    if not isinstance(values, dict):
        return None
    for key, value in values.items():
        try:
            serde.dumps(value)
        except (TypeError, ValueError):
            return str(key)
    return None

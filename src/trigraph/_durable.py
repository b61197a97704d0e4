"""Durable threads: what the loop writes after each superstep, and how a
thread is started, continued, resumed, forked and edited.

Each record holds the delta of the keys its step wrote (the format is in
``_records``). Now and then a record carries a full snapshot instead: when
the step rewrote the whole state, or when the deltas written since the last
snapshot outweigh it. That keeps storage within about twice what was
written and bounds the chain a read has to replay. Steps never store
``steps x state size``.

Ordering: in ``"sync"`` durability the record of step *s* is committed
before step *s + 1* starts; ``"async"`` hands it to one writer task that
commits records in order while the next step runs; ``"exit"`` writes one
record (with a snapshot) when the run stops, however it stops.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._abc import Checkpointer, CheckpointRecord, ThreadLock
from ._claim import claim
from ._context import Emitter, GraphInterrupt, Task
from ._exceptions import EmptyInputError, GraphValidationError, SerializationError
from ._loop import NO_ARG, Restored, Run, TaskPlan
from ._merge import Writes, apply_writes
from ._records import (
    Delta,
    Loaded,
    _encode_goto,
    _make_delta,
    _new_id,
    read_checkpoint,
    read_history,
)
from ._schema import MISSING
from ._serde import default_serializer
from ._types import START, Command, Interrupt, StateSnapshot
from ._util import collapse

if TYPE_CHECKING:
    from ._compiled import CompiledGraph, Durability
    from ._graph import GraphSpec

__all__ = ["Durable", "drive_durable", "get_state", "get_state_history", "update_state"]

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
    _listed: Sequence[tuple[Interrupt, str, str]] = ()
    """Interrupts a resumed step keeps listed until it completes."""

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
            id=_new_id(self._completed),
            parent_id=self.head,
            step=self._completed,
            created_at=time.time(),
            body=body,
            snapshot=snapshot,
        )
        self.head = record.id
        return record

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
            "interrupts": [
                [i.value, i.node, i.id, task_id, t.node]
                for task_id, t in tasks.items()
                if isinstance(t, Task)
                for i in t.interrupts
            ] + [[i.value, i.node, i.id, tid, owner] for i, tid, owner in interrupts],
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
            await self.put(self._record(run, {}, [], self.plans, force_snapshot=True))

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
        failure: BaseException | None = None
        # The writer's scope is made here and the writer is started with
        # start_soon, so that no cancellation can leave a shielded writer
        # running with nobody to close its queue.
        writer = trio.CancelScope(shield=True)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, receive, writer)
                try:
                    yield
                except Exception as exc:
                    failure = exc  # re-raised below, not wrapped in an ExceptionGroup
                finally:
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(_FLUSH_TIMEOUT):
                            await self._drain()
                        writer.cancel()  # only matters if the drain timed out
        except BaseExceptionGroup as group:
            failure = collapse(group)
            if failure is group:
                raise
        if failure is not None:
            raise failure

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


def _checkpointer(graph: CompiledGraph) -> Checkpointer:
    cp = graph.checkpointer
    if cp is None:
        raise GraphValidationError(
            "thread= needs a checkpointer: compile(checkpointer=MemoryCheckpointer()) "
            "or SqliteCheckpointer(path)"
        )
    return cp


def _resume_map(loaded: Loaded, resume: Any, thread: str) -> dict[str, dict[str, Any]]:
    """Route *resume* to the tasks whose interrupts it answers: task id -> {id: value}."""
    pending = {intr.id: task_id for intr, task_id, _ in loaded.interrupts}
    if not pending:
        raise EmptyInputError(f"thread {thread!r} has no pending interrupt to resume")
    if isinstance(resume, dict) and resume and all(k in pending for k in resume):
        answers = resume
    elif len(pending) == 1:
        answers = {next(iter(pending)): resume}
    else:
        ids = ", ".join(f"{intr.id} ({intr.node})" for intr, _, _ in loaded.interrupts)
        raise ValueError(
            f"thread {thread!r} has {len(pending)} pending interrupts ({ids}); answer each "
            "with Command(resume={interrupt_id: value, ...})"
        )
    routed: dict[str, dict[str, Any]] = {}
    for intr_id, value in answers.items():
        routed.setdefault(pending[intr_id], {})[intr_id] = value
    return routed


async def drive_durable(
    graph: CompiledGraph,
    run: Run,
    input: Any,
    thread: str | None,
    checkpoint_id: str | None,
    durability: Durability,
) -> dict[str, Any]:
    """Run *run* on a durable thread: start, continue, resume or fork it.

    The run holds the thread's claim from before its first read to after its
    last write: a second run on the thread fails with ``ThreadBusyError``
    before anything is written.
    """
    cp = _checkpointer(graph)
    if thread is None:
        raise ValueError("checkpoint_id= needs thread= too")
    if durability not in ("sync", "async", "exit"):
        raise ValueError(f"durability must be 'sync', 'async' or 'exit', not {durability!r}")
    async with claim(cp, thread) as lock:
        durable = Durable(cp, thread, "", durability, lock=lock)
        return await _drive(graph, run, durable, input, checkpoint_id)


async def _drive(
    graph: CompiledGraph, run: Run, durable: Durable, input: Any, checkpoint_id: str | None
) -> dict[str, Any]:
    thread = durable.thread
    run.durable = durable
    loaded = await durable.load(checkpoint_id)
    schema = graph._spec.schema
    done: dict[str, Restored] | None = None
    started = False
    if input is None or isinstance(input, Command):
        if loaded is None:
            raise EmptyInputError(
                f"thread {thread!r} has no checkpoint to continue; start it with an input"
            )
        run.values, run.step, run.joins = loaded.values, loaded.record.step, loaded.joins
        plans = loaded.plans
        done = loaded.tasks
        started = loaded.started
        routed: dict[str, dict[str, Any]] = {}
        if isinstance(input, Command):
            # Checked before anything is written: a bad resume changes nothing.
            if input.update is not None or input.goto:
                raise ValueError(
                    "only Command(resume=...) can be passed to ainvoke; "
                    "edit state with update_state()"
                )
            routed = _resume_map(loaded, input.resume, thread)
        if checkpoint_id is not None:
            # A fork: the old checkpoint stays as it was; the new branch starts
            # from a copy of it, and re-runs its nodes unless resuming them.
            if not isinstance(input, Command):
                done, started = {}, False
            await durable.put(durable._record(run, {}, [], plans, force_snapshot=True))
        if isinstance(input, Command):
            owners = {tid: owner for _, tid, owner in loaded.interrupts}
            for task_id, answers in routed.items():
                known = done.get(task_id) or Restored(owners[task_id])
                done[task_id] = attrs.evolve(known, resume={**known.resume, **answers})
            # Durable before the step re-runs: a crash now keeps the answers. The
            # interrupts stay listed until the step completes, so that this
            # checkpoint can still be forked and answered differently.
            await durable.save_pending(run, done, interrupts=loaded.interrupts)
            started = True
    else:
        if loaded is not None:
            run.values, run.joins = loaded.values, loaded.joins
            run.step = loaded.record.step + 1
        else:
            run.values = schema.initial_values()
        data = schema.coerce_input(input)
        writes = [(START, list(data.items()))]
        old = durable.before_apply(run, writes)
        keys = apply_writes(run.values, schema.reducers, writes, run.step)
        plans = await run.plan_from([(START, ())])
        await durable.after_step(run, old, keys, plans)
        await run.emit_initial()
    async with durable.writing(run):
        await run.run(plans, done, started=started)
    result = schema.output(run.values)
    if run.paused is not None and run.paused.interrupts:
        result["__interrupt__"] = tuple(run.paused.interrupts)
    return result


async def get_state(
    graph: CompiledGraph, thread: str, checkpoint_id: str | None
) -> StateSnapshot:
    loaded = await read_checkpoint(_checkpointer(graph), thread, checkpoint_id)
    if loaded is None:
        raise KeyError(f"thread {thread!r} has no checkpoints")
    return loaded.snapshot()


async def get_state_history(graph: CompiledGraph, thread: str) -> list[StateSnapshot]:
    return await read_history(_checkpointer(graph), thread)


async def update_state(
    graph: CompiledGraph, thread: str, values: dict[str, Any] | None, as_node: str | None
) -> str:
    spec = graph._spec
    if as_node is not None and as_node != START and as_node not in spec.nodes:
        raise GraphValidationError(f"update_state(as_node={as_node!r}): no such node", node=as_node)
    cp = _checkpointer(graph)
    async with claim(cp, thread) as lock:
        return await _update(spec, Durable(cp, thread, lock=lock), values, as_node)


async def _update(
    spec: GraphSpec, durable: Durable, values: dict[str, Any] | None, as_node: str | None
) -> str:
    thread = durable.thread
    loaded = await durable.load(None)
    run = Run(spec, Emitter(None), spec.schema.initial_values())
    if loaded is not None:
        # An edit that keeps the thread's next tasks keeps its step number too, so
        # the tasks (and the ids of their pending interrupts) stay the same.
        step = loaded.record.step + (0 if as_node is None else 1)
        run.values, run.joins, run.step = loaded.values, loaded.joins, step
    writer = as_node or "update_state"
    update = dict(values or {})
    spec.schema.check_update_keys(update, writer, run.step)
    update = dict(spec.schema.prepare(update))
    writes = [(writer, list(update.items()))]
    old = durable.before_apply(run, writes)
    keys = apply_writes(run.values, spec.schema.reducers, writes, run.step)
    if as_node is not None:
        plans = await run.plan_from([(as_node, ())])
    else:
        plans = loaded.plans if loaded is not None else []
    await durable.after_step(run, old, keys, plans)
    if as_node is None and loaded is not None and loaded.record.pending is not None:
        assert durable.head is not None
        await durable.cp.put_pending(
            thread, "", durable.head, loaded.record.pending, lock=durable.lock
        )
    elif loaded is not None and loaded.paused_before:
        # Edited during a pause before a node: continuing does not pause again.
        await durable.save_pending(run, {}, before=True)
    assert durable.head is not None
    return durable.head


async def run_nested(
    graph: CompiledGraph, run: Run, data: dict[str, Any], ctx: Task, parent: Durable
) -> None:
    """Run a subgraph inside a durable parent task, on the parent's thread.

    Its checkpoints live in the namespace of the parent task (stable across
    resumes, since task ids are). When the parent task is resumed with
    answers, the subgraph continues from its own latest checkpoint and routes
    the answers to its interrupted tasks; otherwise it starts afresh. An
    ``interrupt()`` inside pauses the subgraph and raises to the parent task.
    """
    durable = Durable(parent.cp, parent.thread, "|".join(run.ns), parent.mode, lock=parent.lock)
    run.durable = durable
    schema = graph._spec.schema
    loaded = await durable.load(None) if ctx.resume else None
    if loaded is not None and loaded.interrupts:
        run.values, run.step, run.joins = loaded.values, loaded.record.step, loaded.joins
        done = loaded.tasks
        owners = {intr.id: (tid, owner) for intr, tid, owner in loaded.interrupts}
        for intr_id, value in ctx.resume.items():
            owner = owners.get(intr_id)
            if owner is None:
                continue
            known = done.get(owner[0]) or Restored(owner[1])
            done[owner[0]] = attrs.evolve(known, resume={**known.resume, intr_id: value})
        run.written = await durable.written_log()
        plans = loaded.plans
        started = True
    else:
        done, started = None, False
        writes = [(START, list(data.items()))]
        keys = apply_writes(run.values, schema.reducers, writes, 0)
        plans = await run.plan_from([(START, ())])
        await durable.after_step(run, {}, keys, plans, [])
        await run.emit_initial()
    async with durable.writing(run):
        await run.run(plans, done, started=started)
    if run.paused is not None:
        raise GraphInterrupt(*run.paused.interrupts)

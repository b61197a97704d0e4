"""Durable threads seen from a call: start, continue, resume or fork a run on a
thread, run a subgraph on its parent's thread, read and edit a thread.

Every call that writes (a run, ``update_state``) holds the thread's claim
(``_claim``) from before its first read to after its last write, so two
writers never interleave on one thread; reads take no claim. What is written
after each step, and how, is ``Durable``'s business (``_durable``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._abc import Checkpointer
from ._claim import claim
from ._context import Emitter, GraphInterrupt, Task
from ._durable import Durable
from ._exceptions import EmptyInputError, GraphValidationError
from ._loop import Restored, Run, TaskPlan
from ._merge import apply_writes
from ._records import Loaded, read_checkpoint, read_history
from ._types import START, Command, StateSnapshot

if TYPE_CHECKING:
    from ._compiled import CompiledGraph, Durability
    from ._graph import GraphSpec

__all__ = ["drive_durable", "get_state", "get_state_history", "run_nested", "update_state"]


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
    if isinstance(input, Command) and input.resume is None and (
        input.update is not None or input.goto
    ):
        plans = await _start_from_command(graph, run, durable, loaded, input)
    elif input is None or isinstance(input, Command):
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
                    "a Command passed to ainvoke either resumes (resume=...) or starts "
                    "(update=..., goto=...), not both; call update_state() first"
                )
            routed = _resume_map(loaded, input.resume, thread)
        if checkpoint_id is not None:
            # A fork: the old checkpoint stays as it was; the new branch starts
            # from a copy of it, and re-runs its nodes unless resuming them.
            if not isinstance(input, Command):
                done, started = {}, False
            else:
                durable.alias = checkpoint_id
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


async def _start_from_command(
    graph: CompiledGraph, run: Run, durable: Durable, loaded: Loaded | None, command: Command[Any]
) -> list[TaskPlan]:
    """Start the thread anew from ``Command(update=..., goto=...)``: *update*
    is written as an input is (through the reducers, as ``START``), and the
    next tasks are the *goto* targets (without *goto*: ``START``'s edges).
    A pending interrupt is dropped, as by any new input. Nothing is written
    if a key or a target is unknown."""
    schema = graph._spec.schema
    if loaded is not None:
        run.values, run.joins = loaded.values, loaded.joins
        run.step = loaded.record.step + 1
    else:
        run.values = schema.initial_values()
    update = dict(command.update or {})
    schema.check_update_keys(update, START, run.step)
    update = dict(schema.prepare(update))
    writes = [(START, list(update.items()))]
    plans = run.plan_goto(command.goto) if command.goto else None
    old = durable.before_apply(run, writes)
    keys = apply_writes(run.values, schema.reducers, writes, run.step)
    if plans is None:
        plans = await run.plan_from([(START, ())])
    await durable.after_step(run, old, keys, plans)
    await run.emit_initial()
    return plans


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
    resumes, since task ids are), each marked with the parent checkpoint the
    parent's step started from. When the parent task runs again from that
    checkpoint (after an interrupt, an error, a cancellation or a crash), the
    subgraph continues from its own latest checkpoint: its finished steps are
    not re-run, and resume answers reach its interrupted tasks. A fork of the
    parent starts the subgraph afresh (unless it answers the subgraph's
    interrupts). An ``interrupt()`` inside pauses the subgraph and raises to
    the parent task.
    """
    base = parent.base
    durable = Durable(
        parent.cp, parent.thread, "|".join(run.ns), parent.mode, lock=parent.lock, parent=base
    )
    run.durable = durable
    schema = graph._spec.schema
    found, forked = await _continued(durable, base, parent.alias if ctx.resume else None)
    loaded = await durable.load(found) if found is not None else None
    if loaded is not None:
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
        started = loaded.started or bool(ctx.resume)
        if forked:
            # A fork answering the subgraph's interrupts: continue on a copy in the
            # fork's lineage, as a top-level fork does, leaving the original alone.
            await durable.put(durable._record(run, {}, [], plans, force_snapshot=True))
            await durable.save_pending(run, done, interrupts=loaded.interrupts)
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


async def _continued(
    durable: Durable, base: str | None, alias: str | None
) -> tuple[str | None, bool]:
    """The subgraph checkpoint a re-run of its parent task continues from, if any:
    the latest one written under the parent checkpoint *base*, or for a fork
    that answers interrupts, the one paused under *alias* (then ``True``)."""
    if base is None:
        return None, False
    cp, serde = durable.cp, durable.serde
    latest = await cp.get(durable.thread, durable.ns)
    if latest is None:
        return None, False
    if serde.loads(latest.body).get("p") == base:
        return latest.id, False
    if alias is not None:
        for record in await cp.history(durable.thread, durable.ns):
            if (
                record.pending is not None
                and serde.loads(record.body).get("p") == alias
                and serde.loads(record.pending)["interrupts"]
            ):
                return record.id, True
    return None, False

"""The superstep loop: the one place where a run's tasks are scheduled.

Each superstep runs its tasks as children of one Trio nursery. A task never
touches the state: it returns writes, which are applied after every task of
the step has finished, in *task order* (the order the step was planned in),
so the state and every ``Values`` event are the same under any interleaving.
Then the edges, joins, routers and ``goto`` targets plan the next step.

Invariants kept here:
- a step's tasks are all finished or cancelled before the next step starts;
- no task outlives the run (they are children of the step's nursery);
- an exception from one task cancels its siblings and reaches the caller
  unwrapped when it is the only one, with a note naming node and step;
- the checkpoint of step *s* is committed before step *s + 1* starts (in the
  default ``"sync"`` durability).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import attrs
import trio

from ._context import Emitter, GraphInterrupt, Task, _current, emit
from ._events import Interrupted, TaskEnd, TaskStart, Update, Values
from ._exceptions import GraphRecursionError, GraphValidationError
from ._merge import Writes, apply_writes
from ._node import as_sequence, call_node, read_result
from ._types import END, Interrupt, Send
from ._util import InContext, Sentinel, open_unwrapped_nursery

if TYPE_CHECKING:
    from ._durable import Durable
    from ._graph import Branch, GraphSpec

__all__ = ["NO_ARG", "Restored", "Run", "Task", "TaskPlan"]

INLINE_SINGLE_TASKS = True
"""Run a step with one task in the loop's own task (the tests turn it off to
check that nothing observable changes)."""

NO_ARG: Final = Sentinel("NO_ARG")
"""A task's argument when it reads the state (it was not started by a ``Send``)."""


class TaskPlan(NamedTuple):
    """A task still to run: *node*, and its ``Send`` argument (or ``NO_ARG``).

    A named tuple rather than an attrs class: one is made per planned task,
    and a tuple is the cheapest immutable value to build.
    """

    node: str
    arg: Any = NO_ARG


@attrs.frozen(slots=True)
class Restored:
    """What a checkpoint remembers of a task of an unfinished step."""

    node: str
    done: bool = False
    writes: Writes = ()
    goto: tuple[str | Send, ...] = ()
    resume: dict[str, Any] = attrs.Factory(dict)
    memo: dict[str, Any] = attrs.Factory(dict)


@attrs.define(slots=True, eq=False)
class Pause:
    """Why a run stopped before END: interrupts, or ``interrupt_before/after``."""

    interrupts: list[Interrupt]


@attrs.define(eq=False)
class Run:
    """One run of a graph (or of a subgraph inside a parent task).

    The loop owns ``values`` (mutated only between steps), ``step`` (the
    thread's absolute superstep number), and ``joins`` (the sources of each
    join seen since it last fired).
    """

    graph: GraphSpec
    emitter: Emitter
    values: dict[str, Any]
    step: int = 0
    ns: tuple[str, ...] = ()
    joins: dict[int, set[str]] = attrs.Factory(dict)
    recursion_limit: int = 10_000
    thread_limiter: trio.CapacityLimiter | None = None
    run_limiter: trio.CapacityLimiter | None = None
    node_limiters: dict[str, trio.CapacityLimiter] = attrs.Factory(dict)
    stop: trio.Event | None = None
    durable: Durable | None = None
    interrupt_before: frozenset[str] = frozenset()
    interrupt_after: frozenset[str] = frozenset()
    written: list[tuple[str, Any]] | None = None
    paused: Pause | None = None
    _errors: list[tuple[int, Exception, Task, float]] = attrs.Factory(list)
    _nursery: trio.Nursery | None = None
    _running: int = 0
    _waiter: trio.lowlevel.Task | None = None
    _tasks: list[Task] = attrs.Factory(list)

    # -- planning ---------------------------------------------------------

    def current_tasks(self) -> list[Task]:
        """The tasks of the step in flight (or of the last step run)."""
        return self._tasks

    def make_tasks(self, plans: Sequence[TaskPlan], step: int) -> list[Task]:
        nodes = self.graph.nodes
        return [Task(self, nodes[p.node], p.arg, i, f"{step}.{i}") for i, p in enumerate(plans)]

    async def plan_from(
        self, sources: Sequence[tuple[str, tuple[str | Send, ...]]]
    ) -> list[TaskPlan]:
        """The next step's tasks after *sources* ``(node, goto)`` ran, in task order.

        Plain targets come first, in the order their nodes were added to the
        graph, each once however many sources trigger it; ``Send`` targets
        follow in the order they were produced.
        """
        graph = self.graph
        triggered: set[str] = set()
        sends: list[TaskPlan] = []
        for name, goto in sources:
            targets = graph.edges.get(name)
            if targets:
                triggered.update(targets)
            joins = graph.joins_by_source.get(name)
            if joins:
                for join in joins:
                    seen = self.joins.setdefault(join.index, set())
                    seen.add(name)
                    if seen >= join.sources:
                        triggered.add(join.target)
                        del self.joins[join.index]
            branches = graph.branches.get(name)
            if branches:
                for branch in branches:
                    await self._route(branch, triggered, sends)
            if goto:
                self._add_targets(goto, triggered, sends, f"Command(goto=...) of node {name!r}")
        triggered.discard(END)
        if len(triggered) > 1:
            order = graph.order
            plain = sorted(triggered, key=order.__getitem__)
        else:
            plain = list(triggered)
        plans = [TaskPlan(name) for name in plain]
        plans.extend(sends)
        return plans

    def plan_goto(self, goto: Sequence[str | Send]) -> list[TaskPlan]:
        """The tasks an input ``Command(goto=...)`` names, in task order.

        Raises:
          GraphValidationError: a target is not a node of the graph.
        """
        triggered: set[str] = set()
        sends: list[TaskPlan] = []
        self._add_targets(goto, triggered, sends, "the input Command(goto=...)")
        order = self.graph.order
        plans = [TaskPlan(name) for name in sorted(triggered, key=order.__getitem__)]
        plans.extend(sends)
        return plans

    async def _route(self, branch: Branch, triggered: set[str], sends: list[TaskPlan]) -> None:
        state = self.graph.schema.node_input(self.values)
        try:
            result = branch.router(state)
            if branch.is_async:
                result = await result
        except Exception as exc:
            exc.add_note(f"in the router after node {branch.source!r}, step {self.step}")
            raise
        where = f"the router after node {branch.source!r}"
        path_map = branch.path_map
        if path_map is not None:
            mapped: list[str | Send] = []
            for item in as_sequence(result):
                if isinstance(item, Send):
                    mapped.append(item)
                    continue
                try:
                    mapped.append(path_map[item])
                except (KeyError, TypeError):
                    raise GraphValidationError(
                        f"{where} returned {item!r} in step {self.step}, which is not in its "
                        f"path_map (it has: {', '.join(map(repr, path_map))})",
                        node=branch.source,
                    ) from None
            result = mapped
        self._add_targets(as_sequence(result), triggered, sends, where)

    def _add_targets(
        self,
        targets: Sequence[Any],
        triggered: set[str],
        sends: list[TaskPlan],
        where: str,
    ) -> None:
        nodes = self.graph.nodes
        for target in targets:
            if isinstance(target, Send):
                if target.node not in nodes:
                    raise GraphValidationError(
                        f"{where} sent to unknown node {target.node!r} in step {self.step}",
                        node=target.node,
                    )
                sends.append(TaskPlan(target.node, target.arg))
            elif target == END:
                continue
            elif isinstance(target, str) and target in nodes:
                triggered.add(target)
            else:
                raise GraphValidationError(
                    f"{where} chose unknown node {target!r} in step {self.step}; it must "
                    "return a node name, END, a Send, or a list of them",
                    node=target if isinstance(target, str) else None,
                )

    # -- running ----------------------------------------------------------

    async def run(
        self,
        plans: list[TaskPlan],
        done: dict[str, Restored] | None = None,
        *,
        started: bool = False,
    ) -> None:
        """Run supersteps from *plans* until none is left, a pause, or a stop.

        *done* maps task ids of the first step to what a checkpoint kept of
        them (finished writes, or resume values for an interrupt). *started*
        says the first step already began (or paused before it on
        ``interrupt_before``), so it does not pause before it again.

        All node tasks of the run are children of one nursery owned by this
        call; a step waits until its last task has finished.
        """
        try:
            # The loop's own errors, like the nodes' errors, reach the caller as
            # themselves, not wrapped in an ExceptionGroup.
            async with open_unwrapped_nursery() as nursery:
                self._nursery = nursery
                if _in_main_task():
                    # Trio raises KeyboardInterrupt in its main task. The loop (and
                    # a lone node it runs inline) must see a cancellation there, as
                    # child tasks do, so in the main task it is a child task itself.
                    nursery.start_soon(self._steps, plans, done, started)
                else:
                    await self._steps(plans, done, started)
        finally:
            self._nursery = None
        if self._errors:
            # Outside the nursery, whose cancellation stopped the siblings: keep
            # the finished tasks' writes so that a resume does not re-run them.
            if self.durable is not None:
                await self.durable.save_pending(self, {t.id: t for t in self._tasks})
            send = self.emitter.send
            if self.emitter.tasks and send is not None:
                for _, error, task, duration in sorted(self._errors, key=lambda e: e[0]):
                    # A full checkpoint, not emit(): a consumer keeping up gets to
                    # read the failure before the error ends the stream.
                    await send.send(
                        TaskEnd(self.step, task.spec.name, task.id, duration, repr(error), self.ns)
                    )
            self._raise_errors()

    async def _steps(
        self, plans: list[TaskPlan], done: dict[str, Restored] | None, started: bool
    ) -> None:
        steps = 0
        em = self.emitter
        before = self.interrupt_before
        after = self.interrupt_after
        schema = self.graph.schema
        while plans:
            if before and not started and any(p.node in before for p in plans):
                await self._pause_at([p.node for p in plans if p.node in before], before=True)
                return
            if steps >= self.recursion_limit:
                raise GraphRecursionError(self.recursion_limit)
            steps += 1
            step = self.step + 1
            tasks = self.make_tasks(plans, step)
            if done:
                for task in tasks:
                    restored = done.get(task.id)
                    if restored is not None:
                        task.done = restored.done
                        task.writes = restored.writes
                        task.goto = restored.goto
                        task.resume = dict(restored.resume)
                        if restored.memo:
                            task.memo = dict(restored.memo)
            done = None
            started = False
            self.step = step
            if not await self._superstep(tasks):
                return
            written = [(t.spec.name, t.writes) for t in tasks]
            durable = self.durable
            old = durable.before_apply(self, written) if durable is not None else None
            keys = apply_writes(self.values, schema.reducers, written, step)
            flat: list[tuple[str, Any]] | None = None
            if self.written is not None:
                flat = [w for _node, writes in written for w in writes]
                self.written.extend(flat)
            nxt = self.graph.static.get(tasks[0].spec.name) if len(tasks) == 1 else None
            if nxt is not None and not tasks[0].goto:
                plans = [TaskPlan(name) for name in nxt]  # a chain's step: edges alone
            else:
                plans = await self.plan_from([(t.spec.name, t.goto) for t in tasks])
            if durable is not None:
                await durable.after_step(self, old, keys, plans, flat)
            if em.values:
                await self._emit_values()
            if after and plans and any(t.spec.name in after for t in tasks):
                await self._pause_at([t.spec.name for t in tasks if t.spec.name in after],
                                     before=False)
                return
            if self.stop is not None and self.stop.is_set():
                return

    async def _emit_values(self) -> None:
        send = self.emitter.send
        assert send is not None
        await emit(send, Values(self.step, self.values.copy(), self.ns))

    async def emit_initial(self) -> None:
        if self.emitter.values:
            await self._emit_values()

    async def _pause_at(self, nodes: list[str], *, before: bool) -> None:
        self.paused = Pause([])
        if self.durable is not None:
            await self.durable.mark_paused(self, before=before)
        send = self.emitter.send
        if send is not None:
            for node in dict.fromkeys(nodes):
                await emit(send, Interrupted(self.step, node, None, "", self.ns))

    async def _superstep(self, tasks: list[Task]) -> bool:
        """Run one step's tasks to completion; False if the run must stop here."""
        nursery = self._nursery
        assert nursery is not None
        self._tasks = tasks
        todo = tasks if len(tasks) == 1 and not tasks[0].done else [t for t in tasks if not t.done]
        if len(todo) == 1 and INLINE_SINGLE_TASKS and todo[0].spec.kind != "sync":
            # A lone task runs in the loop's own task, under its own copy of the
            # context (as a child task would be): spawning and parking cost more
            # than the node itself in most steps. A checkpoint follows, so a
            # chain of nodes that never yield still lets other tasks run and
            # still sees its cancellation at every step. (Not a sync node: its
            # thread costs more than a task, and trio.from_thread callbacks run
            # in the task that waits for the thread, with the thread's context.)
            self._running = 1
            await InContext(self._run_task(todo[0]), copy_context())
            if not self._errors:
                await trio.lowlevel.checkpoint()
        else:
            self._running = len(todo)
            for task in todo:
                nursery.start_soon(self._run_task, task)
            if todo:
                await self._wait_for_tasks()
        if self._errors:
            return False
        lone = len(tasks) == 1
        interrupted = [t for t in tasks if t.interrupts] if not lone or tasks[0].interrupts else ()
        if interrupted:
            if self.durable is not None:
                await self.durable.save_pending(self, {t.id: t for t in tasks})
            self.paused = Pause([i for t in interrupted for i in t.interrupts])
            self.step -= 1
            send = self.emitter.send
            if send is not None:
                for i in self.paused.interrupts:
                    await emit(send, Interrupted(self.step, i.node, i.value, i.id, self.ns))
            return False
        return True

    async def _wait_for_tasks(self) -> None:
        # Trio's parking primitive, not a trio.Event: this wait happens once per
        # superstep, and an Event (with its ParkingLot) costs a few microseconds
        # more per step. The last task to finish reschedules the loop.
        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _raise_errors(self) -> None:
        errors = [e[1] for e in sorted(self._errors, key=lambda e: e[0])]
        if len(errors) == 1:
            raise errors[0]
        raise ExceptionGroup(f"{len(errors)} nodes failed in step {self.step}", errors)

    async def _run_task(self, task: Task) -> None:
        # One frame per task on purpose: a cancelled fan-out of 10,000 tasks
        # unwinds 10,000 of these, so every extra await layer is paid 10,000 times.
        spec = task.spec
        em = self.emitter
        step = self.step
        _current.set(task)
        try:
            if em.tasks:
                started = trio.current_time()
                assert em.send is not None
                await emit(em.send, TaskStart(step, spec.name, task.id, self.ns))
            arg = task.arg
            if arg is NO_ARG:
                arg = self.graph.schema.node_input(self.values)
            if self.run_limiter is not None and spec.kind != "graph":
                # A subgraph node only waits for its subgraph, whose own node
                # tasks take the run's tokens: holding one here could deadlock.
                async with self.run_limiter:
                    result = await call_node(task, arg)
            elif spec.direct:
                result = await spec.fn(arg)
            else:
                result = await call_node(task, arg)
            task.writes, task.goto, update = read_result(
                result, spec.name, step, self.graph.schema
            )
            task.done = True
            if em.updates:
                assert em.send is not None
                await emit(em.send, Update(step, spec.name, update, self.ns))
            if em.tasks:
                assert em.send is not None
                await emit(
                    em.send,
                    TaskEnd(step, spec.name, task.id, trio.current_time() - started, None, self.ns),
                )
        except GraphInterrupt as gi:
            task.interrupts = gi.interrupts
        except Exception as exc:
            if task.done:
                raise  # the consumer's channel failed, not the node
            exc.add_note(f"in node {spec.name!r}, step {step}")
            duration = trio.current_time() - started if em.tasks else 0.0
            self._errors.append((task.index, exc, task, duration))
            assert self._nursery is not None
            # Cancels the step's siblings at once; the loop sends this task's
            # TaskEnd once they are gone, and then raises.
            self._nursery.cancel_scope.cancel()
        finally:
            self._running -= 1
            if not self._running and self._waiter is not None:
                waiter, self._waiter = self._waiter, None
                trio.lowlevel.reschedule(waiter)


def _in_main_task() -> bool:
    """Whether the current task is Trio's main task (where KeyboardInterrupt lands)."""
    nursery = trio.lowlevel.current_task().parent_nursery
    return nursery is not None and nursery.parent_task is trio.lowlevel.current_root_task()


def limiter(n: int | None) -> trio.CapacityLimiter | None:
    """A capacity limiter of *n* tokens, or ``None`` for no limit."""
    if n is None:
        return None
    return trio.CapacityLimiter(n)


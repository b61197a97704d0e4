"""``CompiledGraph``: the runnable graph ``StateGraph.compile()`` returns.

A thin facade: it checks a call's arguments, builds a ``Run`` (``_loop``),
wires it to the caller's event channel and checkpointer, and translates how
the run ended (a timeout, a pause) into the documented result. The
streaming context manager lives in ``_stream``; durable-thread plumbing in
``_durable``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal

import trio

from ._context import Emitter, Task
from ._events import MODES, Event
from ._exceptions import EmptyInputError, RunTimeoutError
from ._graph import GraphSpec
from ._loop import Run, limiter
from ._merge import apply_writes
from ._node import SubgraphResult
from ._schema import _instance_to_dict
from ._types import START, Command, StateSnapshot
from ._util import NoPublicConstructor, final

if TYPE_CHECKING:
    from ._abc import Checkpointer
    from ._graph import StateGraph

__all__ = ["CompiledGraph", "DEFAULT_BUFFER", "Durability"]

DEFAULT_BUFFER = 64
"""Events a stream holds before producers wait.

Large enough that a producer and a consumer running at the same speed switch
tasks once per ~64 events instead of once per event (a 0-size channel halves
throughput), small enough that a stopped consumer holds back at most 64 events
(plus one per concurrently sending task) however long the run.
"""

Durability = Literal["sync", "async", "exit"]


def _check_modes(modes: Sequence[str] | str) -> frozenset[str]:
    if isinstance(modes, str):
        modes = (modes,)
    wanted = frozenset(modes)
    unknown = wanted - MODES
    if unknown:
        raise ValueError(
            f"unknown stream mode(s) {sorted(unknown)}; choose from {sorted(MODES)}"
        )
    return wanted


@final
class CompiledGraph(metaclass=NoPublicConstructor):
    """A graph ready to run; made only by :meth:`StateGraph.compile`.

    Runs are independent: one compiled graph may run any number of times, at
    once, in one or several ``trio.run`` calls.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        spec: GraphSpec,
        *,
        checkpointer: Checkpointer | None,
        interrupt_before: frozenset[str],
        interrupt_after: frozenset[str],
        name: str,
        builder: StateGraph[Any],
    ) -> None:
        self._spec = spec
        self.checkpointer = checkpointer
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.name = name
        self.builder = builder

    def __repr__(self) -> str:
        return f"<CompiledGraph {self.name!r} with {len(self._spec.nodes)} nodes>"

    def with_checkpointer(self, checkpointer: Checkpointer | None) -> CompiledGraph:
        """The same graph with another checkpointer (or none); this one is unchanged.

        Example:
          >>> from trigraph import END, START, MemoryCheckpointer, StateGraph
          >>> g = StateGraph(dict)
          >>> _ = g.add_node("a", lambda s: None).add_edge(START, "a").add_edge("a", END)
          >>> graph = g.compile()
          >>> graph.with_checkpointer(MemoryCheckpointer()).checkpointer is not None
          True

        .. versionadded:: 0.1
        """
        return CompiledGraph._create(
            self._spec,
            checkpointer=checkpointer,
            interrupt_before=self.interrupt_before,
            interrupt_after=self.interrupt_after,
            name=self.name,
            builder=self.builder,
        )

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node names, in the order they were added."""
        return tuple(self._spec.nodes)

    # -- running ----------------------------------------------------------

    async def ainvoke(
        self,
        input: Any,
        *,
        thread: str | None = None,
        checkpoint_id: str | None = None,
        recursion_limit: int = 10_000,
        max_concurrency: int | None = None,
        max_threads: int | None = None,
        timeout: float | None = None,
        stop: trio.Event | None = None,
        durability: Durability = "sync",
        events: trio.MemorySendChannel[Event] | None = None,
        modes: Sequence[str] | str = ("updates",),
    ) -> dict[str, Any]:
        """Run the graph until it reaches END (or pauses) and return the state.

        A superstep's nodes run as children of one nursery; their writes are
        applied after the step in task order, never in order of completion.

        Args:
          input: the input state (a mapping or a schema instance); on a thread,
            ``None`` continues where it stopped and ``Command(resume=...)``
            answers its pending ``interrupt()``.
          thread: the durable thread id (needs a checkpointer).
          checkpoint_id: with *thread*, resume from this older checkpoint,
            forking the thread's history (time travel).
          recursion_limit: the most supersteps this call may run.
          max_concurrency: the most node tasks running at once in this run, its
            subgraphs' node tasks included (a subgraph node waiting for its
            subgraph takes no share).
          max_threads: the most sync nodes running in worker threads at once
            (default: Trio's default thread limiter, 40).
          timeout: seconds for the whole call; raises ``RunTimeoutError``.
          stop: when this event is set, the run finishes the step it is in
            (its tasks are not cancelled), writes the checkpoint and returns;
            ``ainvoke(None, thread=...)`` continues from there.
          durability: ``"sync"`` commits each step's checkpoint before the
            next step starts; ``"async"`` overlaps the write with the next step
            (never reordered or lost); ``"exit"`` writes only when the run stops.
          events: a send channel to stream events into (embedding); it is
            closed when the run ends, however it ends.
          modes: the stream modes sent to *events*.

        Returns:
          The final state as a dict (restricted to the output schema). If the
          run paused on ``interrupt()``, the dict also has an
          ``"__interrupt__"`` key with the pending ``Interrupt`` values.

        Cancellation:
          A checkpoint. Every node task of the current step is cancelled (sync
          nodes' threads are waited for) before this returns; the thread keeps
          the checkpoint of the last completed step, and
          ``ainvoke(None, thread=...)`` resumes from it.

        Raises:
          GraphRecursionError: the run needs more than *recursion_limit* steps.
          InvalidUpdateError: two nodes of one step write a reducer-less key,
            or an update names an unknown key.
          RunTimeoutError: *timeout* passed.
          Exception: a node's own exception, with a note naming node and step
            (an ``ExceptionGroup`` when several nodes of a step failed).

        Example:
          >>> import trio
          >>> from trigraph import END, START, StateGraph
          >>> async def greet(state: dict) -> dict:
          ...     return {"greeting": "hello " + state["name"]}
          >>> g = StateGraph(dict)
          >>> _ = g.add_node(greet).add_edge(START, "greet").add_edge("greet", END)
          >>> trio.run(g.compile().ainvoke, {"name": "trio"})["greeting"]
          'hello trio'

        .. versionadded:: 0.1
        """
        wanted = _check_modes(modes)
        if recursion_limit < 1:
            raise ValueError(f"recursion_limit must be >= 1, got {recursion_limit}")
        if events is None:
            return await self._execute(
                input, Emitter(None), thread, checkpoint_id, recursion_limit,
                max_concurrency, max_threads, timeout, stop, durability,
            )
        with events:
            return await self._execute(
                input, Emitter.for_modes(events, wanted), thread, checkpoint_id,
                recursion_limit, max_concurrency, max_threads, timeout, stop, durability,
            )

    def invoke(self, input: Any, **kwargs: Any) -> dict[str, Any]:
        """Run the graph in a new ``trio.run`` and return the final state.

        A convenience for scripts; takes the keyword arguments of
        :meth:`ainvoke`.

        Raises:
          RuntimeError: when called from inside a running Trio loop (await
            :meth:`ainvoke` there instead).

        .. versionadded:: 0.1
        """
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "CompiledGraph.invoke() starts its own trio.run and cannot be called "
                "inside a running Trio loop; use 'await graph.ainvoke(...)'"
            )
        return trio.run(functools.partial(self.ainvoke, input, **kwargs))

    def stream(
        self,
        input: Any,
        *,
        modes: Sequence[str] | str = ("updates",),
        buffer: int = DEFAULT_BUFFER,
        **kwargs: Any,
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        """Run the graph, streaming its events through a bounded Trio channel.

        ``async with graph.stream(input, modes=(...)) as events:`` gives a
        ``trio.MemoryReceiveChannel`` of events (see ``trigraph.events``);
        ``async for event in events`` ends when the run ends. The channel
        holds at most *buffer* events: a consumer that stops reading makes the
        producing nodes wait, so memory stays bounded whatever the consumer
        does. Takes the keyword arguments of :meth:`ainvoke` too.

        Guarantees: a task's events arrive in the order it produced them; a
        step's ``Update`` events come before its ``Values``; nothing of step
        *s + 1* comes before the ``Values`` of step *s*.

        Cancellation:
          Entering starts the run in a nursery and is a checkpoint. Leaving
          the block (normally, by ``break``, by an exception or by
          cancellation) cancels what is left of the run and waits until every
          node task is gone; a durable thread keeps its last checkpoint. An
          error of the run is raised out of the ``async with`` block.

        Example:
          >>> import trio
          >>> from trigraph import END, START, StateGraph
          >>> async def hello(state: dict) -> dict:
          ...     return {"text": "hi"}
          >>> g = StateGraph(dict)
          >>> _ = g.add_node(hello).add_edge(START, "hello").add_edge("hello", END)
          >>> async def main():
          ...     async with g.compile().stream({}, modes="updates") as events:
          ...         return [(e.node, e.update) async for e in events]
          >>> trio.run(main)
          [('hello', {'text': 'hi'})]

        .. versionadded:: 0.1
        """
        from ._stream import open_stream

        _check_modes(modes)
        if buffer < 0:
            raise ValueError(f"buffer must be >= 0, got {buffer}")
        return open_stream(self, input, modes, buffer, kwargs)

    # -- internals --------------------------------------------------------

    async def _execute(
        self,
        input: Any,
        emitter: Emitter,
        thread: str | None,
        checkpoint_id: str | None,
        recursion_limit: int,
        max_concurrency: int | None,
        max_threads: int | None,
        timeout: float | None,
        stop: trio.Event | None,
        durability: Durability,
    ) -> dict[str, Any]:
        run = Run(
            self._spec,
            emitter,
            {},
            recursion_limit=recursion_limit,
            thread_limiter=limiter(max_threads),
            run_limiter=limiter(max_concurrency),
            node_limiters=self._node_limiters(),
            stop=stop,
            interrupt_before=self.interrupt_before,
            interrupt_after=self.interrupt_after,
        )
        if timeout is None:
            return await self._drive(run, input, thread, checkpoint_id, durability)
        with trio.move_on_after(timeout) as scope:
            return await self._drive(run, input, thread, checkpoint_id, durability)
        assert scope.cancelled_caught
        raise RunTimeoutError(timeout, run.step)

    def _node_limiters(self) -> dict[str, trio.CapacityLimiter]:
        return {
            name: trio.CapacityLimiter(spec.max_concurrency)
            for name, spec in self._spec.nodes.items()
            if spec.max_concurrency is not None
        }

    async def _drive(
        self,
        run: Run,
        input: Any,
        thread: str | None,
        checkpoint_id: str | None,
        durability: Durability,
    ) -> dict[str, Any]:
        if thread is not None or checkpoint_id is not None:
            from ._threads import drive_durable

            return await drive_durable(self, run, input, thread, checkpoint_id, durability)
        if input is None:
            raise EmptyInputError(
                "ainvoke(None) continues a thread, but no thread= was given; "
                "pass the input state, or thread= with a checkpointer"
            )
        if isinstance(input, Command):
            raise EmptyInputError(
                "a Command input resumes a thread, but no thread= was given"
            )
        await self._start(run, input)
        plans = await run.plan_from([(START, ())])
        await run.run(plans)
        return self._spec.schema.output(run.values)

    async def _start(self, run: Run, input: Any) -> None:
        """Apply *input* to *run*'s state as if ``START`` wrote it (step 0)."""
        schema = self._spec.schema
        data = schema.coerce_input(input)
        if not run.values:
            run.values = schema.initial_values()
        apply_writes(run.values, schema.reducers, [(START, list(data.items()))], run.step)
        await run.emit_initial()

    async def _run_subgraph(self, arg: Any, task: Task) -> SubgraphResult:
        """Run this graph as the node *task* of a parent run; return its contribution."""
        parent = task.run
        schema = self._spec.schema
        data = arg if isinstance(arg, dict) else _as_dict(arg)
        if schema.keys is not None:
            data = {k: v for k, v in data.items() if k in schema.keys}
        run = Run(
            self._spec,
            parent.emitter,
            schema.initial_values(),
            ns=(*parent.ns, f"{task.spec.name}:{task.id}"),
            recursion_limit=parent.recursion_limit,
            thread_limiter=parent.thread_limiter,
            run_limiter=parent.run_limiter,
            node_limiters=self._node_limiters(),
            written=[],
        )
        if parent.durable is not None:
            from ._threads import run_nested

            await run_nested(self, run, data, task, parent.durable)
        else:
            apply_writes(run.values, schema.reducers, [(START, list(data.items()))], 0)
            await run.emit_initial()
            await run.run(await run.plan_from([(START, ())]))
        assert run.written is not None
        parent_schema = parent.graph.schema
        keys = parent_schema.keys
        reducers = parent_schema.reducers
        written = [(k, v) for k, v in run.written if keys is None or k in keys]
        final = {k: run.values[k] for k, _ in written}
        writes = [(k, v) for k, v in written if k in reducers]
        writes.extend((k, v) for k, v in final.items() if k not in reducers)
        return SubgraphResult(writes, final)

    # -- inspection -------------------------------------------------------

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (solid: edges, dotted: conditional edges).

        Example:
          >>> from trigraph import END, START, StateGraph
          >>> g = StateGraph(dict)
          >>> _ = g.add_node("a", lambda s: None).add_edge(START, "a").add_edge("a", END)
          >>> print(g.compile().to_mermaid())
          flowchart TD
              __start__([__start__])
              a[a]
              __end__([__end__])
              __start__ --> a
              a --> __end__

        .. versionadded:: 0.1
        """
        spec = self._spec
        lines = ["flowchart TD", f"    {START}([{START}])"]
        lines += [f"    {name}[{name}]" for name in spec.nodes]
        lines.append("    __end__([__end__])")
        for source, targets in spec.edges.items():
            lines += [f"    {source} --> {target}" for target in targets]
        for join in spec.joins:
            lines.append(f"    {' & '.join(sorted(join.sources))} --> {join.target}")
        for source, branches in spec.branches.items():
            for branch in branches:
                if branch.path_map is None:
                    lines.append(f"    {source} -.-> |{_router_name(branch.router)}| {source}")
                    continue
                for key, target in branch.path_map.items():
                    label = f"|{key}| " if key != target else ""
                    lines.append(f"    {source} -.-> {label}{target}")
        for node in spec.nodes.values():
            lines += [f"    {node.name} -.-> {target}" for target in node.destinations]
        return "\n".join(lines)

    # -- durable threads --------------------------------------------------

    async def get_state(self, thread: str, *, checkpoint_id: str | None = None) -> StateSnapshot:
        """The thread's latest checkpoint (or *checkpoint_id*) as a ``StateSnapshot``.

        Cancellation:
          A checkpoint; reads only, so cancelling leaves nothing behind.

        Raises:
          KeyError: the thread (or checkpoint) does not exist.

        .. versionadded:: 0.1
        """
        from ._threads import get_state

        return await get_state(self, thread, checkpoint_id)

    async def get_state_history(self, thread: str) -> list[StateSnapshot]:
        """Every checkpoint of the thread, forks included, newest first.

        Cancellation:
          A checkpoint; reads only.

        .. versionadded:: 0.1
        """
        from ._threads import get_state_history

        return await get_state_history(self, thread)

    async def update_state(
        self, thread: str, values: dict[str, Any] | None, as_node: str | None = None
    ) -> str:
        """Write *values* to the thread as a new checkpoint, through the reducers.

        With *as_node*, the write counts as that node's: the thread continues
        with the nodes its edges lead to. Returns the new checkpoint id.

        Cancellation:
          A checkpoint. Either the whole checkpoint is written or none of it.

        .. versionadded:: 0.1
        """
        from ._threads import update_state

        return await update_state(self, thread, values, as_node)


def _as_dict(arg: Any) -> dict[str, Any]:
    try:
        return _instance_to_dict(arg)
    except TypeError:
        raise TypeError(
            f"a subgraph node needs a mapping or a schema instance as input, not "
            f"{type(arg).__name__}"
        ) from None


def _router_name(router: Callable[..., Any]) -> str:
    return getattr(router, "__name__", type(router).__name__)



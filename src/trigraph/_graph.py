"""``StateGraph``, the mutable builder, and ``GraphSpec``, the frozen graph
that ``compile()`` makes from it.

The builder records nodes and edges as the user adds them and checks each
call's own arguments at once (a duplicate or reserved node name fails in
``add_node``); whole-graph checks run in ``compile()`` (see ``_validate``).
``compile()`` copies everything into a ``GraphSpec`` so that a builder can be
changed and compiled again without touching graphs compiled before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import attrs

from ._exceptions import GraphValidationError
from ._node import NodeSpec, goto_targets, node_kind
from ._schema import Schema, schema_of
from ._serde import default_serializer
from ._types import END, START, RetryPolicy

if TYPE_CHECKING:
    from ._abc import Checkpointer
    from ._compiled import CompiledGraph

__all__ = ["Branch", "GraphSpec", "Join", "StateGraph"]

StateT = TypeVar("StateT")
RESERVED = frozenset({START, END})


@attrs.frozen(slots=True)
class Branch:
    """A conditional edge: *router* picks the targets after *source* runs."""

    source: str
    router: Callable[..., Any]
    path_map: Mapping[Hashable, str] | None
    is_async: bool


@attrs.frozen(slots=True)
class Join:
    """``add_edge([a, b], c)``: *target* runs once after every source has run."""

    index: int
    sources: frozenset[str]
    target: str


@attrs.frozen(slots=True)
class GraphSpec:
    """A compiled graph's structure: read-only, shared by all its runs."""

    schema: Schema
    nodes: Mapping[str, NodeSpec]
    order: Mapping[str, int]
    edges: Mapping[str, tuple[str, ...]]
    joins: tuple[Join, ...]
    joins_by_source: Mapping[str, tuple[Join, ...]]
    branches: Mapping[str, tuple[Branch, ...]]
    static: Mapping[str, tuple[str, ...]] = attrs.Factory(dict)
    """For a node whose successors are plain edges only (no join, no router):
    the next step's node names when it runs alone, in graph order."""


class StateGraph(Generic[StateT]):
    """A graph of nodes that read and update a shared state; build, then ``compile()``.

    Args:
      schema: the state: a ``TypedDict``, an attrs class, a dataclass, or
        ``dict`` (any key; the last write wins). ``Annotated[T, reducer]``
        gives a key a reducer ``(old, new) -> merged``.
      input_schema: the keys a run's input may have (default: the schema's).
      output_schema: the keys a run returns (default: the schema's).

    Example:
      >>> import operator, trio
      >>> from typing import Annotated, TypedDict
      >>> from trigraph import END, START, StateGraph
      >>> class State(TypedDict):
      ...     notes: Annotated[list[str], operator.add]
      >>> async def a(state: State) -> dict:
      ...     return {"notes": ["a"]}
      >>> def b(state: State) -> dict:          # sync: runs in a worker thread
      ...     return {"notes": ["b"]}
      >>> g = StateGraph(State)
      >>> _ = g.add_node(a).add_node(b)
      >>> _ = g.add_edge(START, "a").add_edge(START, "b")
      >>> _ = g.add_edge(["a", "b"], END)
      >>> trio.run(g.compile().ainvoke, {"notes": []})
      {'notes': ['a', 'b']}

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        schema: type[StateT],
        *,
        input_schema: type[Any] | None = None,
        output_schema: type[Any] | None = None,
    ) -> None:
        self.schema = schema
        self.input_schema = input_schema
        self.output_schema = output_schema
        self._schema = schema_of(schema, input_schema, output_schema)
        self._nodes: dict[str, NodeSpec] = {}
        self._edges: list[tuple[str, str]] = []
        self._joins: list[tuple[tuple[str, ...], str]] = []
        self._branches: list[Branch] = []

    @property
    def nodes(self) -> Mapping[str, NodeSpec]:
        """The nodes added so far, by name (read-only view)."""
        return dict(self._nodes)

    @overload
    def add_node(
        self,
        name: str,
        fn: Any,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        destinations: Sequence[str] = (),
    ) -> StateGraph[StateT]: ...

    @overload
    def add_node(
        self,
        name: Any,
        fn: None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        destinations: Sequence[str] = (),
    ) -> StateGraph[StateT]: ...

    def add_node(
        self,
        name: Any,
        fn: Any = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        destinations: Sequence[str] = (),
    ) -> StateGraph[StateT]:
        """Add a node: ``add_node("name", fn)``, or ``add_node(fn)`` to use ``fn.__name__``.

        Args:
          fn: a sync function (run in a worker thread), an ``async def``, an
            async generator, or a compiled graph (a subgraph). It is called with
            the state (or a ``Send``'s argument) and returns a partial update
            ``dict``, a ``Command``, or ``None``.
          retry: a :class:`RetryPolicy` for exceptions the node raises.
          timeout: seconds one attempt may take before ``NodeTimeoutError``.
          max_concurrency: most tasks of this node running at once in a run
            (a ``Send`` fan-out of 10,000 then calls a rate-limited API at most
            that many at a time).
          destinations: nodes this node may reach only through
            ``Command(goto=...)``, so ``compile()`` knows they are reachable
            and ``to_mermaid()`` draws them. A return annotation
            ``-> Command[Literal["a", "b"]]`` declares the same. Without
            either, a node that may return a ``Command`` (no return
            annotation, a bare ``Command``, ``Any``) counts as able to reach
            every node, as in LangGraph.

        Returns:
          The builder, so calls can be chained.

        Raises:
          GraphValidationError: a duplicate or reserved name, or a bad option.
        """
        if fn is None:
            fn = name
            name = getattr(fn, "name", None) if node_kind(fn) == "graph" else None
            name = name or getattr(fn, "__name__", None)
            if not isinstance(name, str):
                raise GraphValidationError(
                    f"cannot take a node name from {fn!r}; use add_node('name', fn)"
                )
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"a node name must be a non-empty str, not {name!r}")
        if name in RESERVED:
            raise GraphValidationError(
                f"{name!r} is reserved for the graph's entry and exit; choose another node name",
                node=name,
            )
        if ":" in name or "|" in name:
            raise GraphValidationError(
                f"node name {name!r} may not contain ':' or '|' (they separate namespaces)",
                node=name,
            )
        if name in self._nodes:
            raise GraphValidationError(f"node {name!r} is already in the graph", node=name)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise GraphValidationError(
                f"retry= of node {name!r} must be a RetryPolicy, not {retry!r}", node=name
            )
        if timeout is not None and not timeout > 0:
            raise GraphValidationError(
                f"timeout= of node {name!r} must be > 0 seconds, got {timeout!r}", node=name
            )
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise GraphValidationError(
                f"max_concurrency= of node {name!r} must be an int >= 1, got {max_concurrency!r}",
                node=name,
            )
        kind = node_kind(fn)
        if isinstance(destinations, str):
            destinations = (destinations,)
        declared = tuple(destinations) or goto_targets(fn, kind)
        self._nodes[name] = NodeSpec(
            name=name,
            fn=fn,
            kind=kind,
            retry=retry,
            timeout=timeout,
            max_concurrency=max_concurrency,
            destinations=declared or (),
            goto_anywhere=declared is None,
        )
        return self

    def add_edge(self, source: str | Sequence[str], target: str) -> StateGraph[StateT]:
        """Run *target* after *source*; with a list of sources, once after **all** ran.

        A join (``add_edge(["a", "b"], "c")``) remembers which sources have run,
        across supersteps, and fires ``c`` once when the last of them finishes.

        Raises:
          GraphValidationError: ``END`` as a source or ``START`` as a target.
        """
        if target == START:
            raise GraphValidationError("START cannot be the target of an edge", node=START)
        if isinstance(source, str):
            if source == END:
                raise GraphValidationError("END cannot be the source of an edge", node=END)
            self._edges.append((source, target))
            return self
        sources = tuple(source)
        if not sources:
            raise GraphValidationError(f"add_edge([], {target!r}) has no sources", node=target)
        if START in sources or END in sources:
            raise GraphValidationError(
                f"a join into {target!r} cannot wait for START or END", node=target
            )
        if len(sources) == 1:
            self._edges.append((sources[0], target))
        else:
            self._joins.append((sources, target))
        return self

    def add_conditional_edges(
        self,
        source: str,
        router: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph[StateT]:
        """After *source* runs, ``router(state)`` picks where to go.

        The router (sync, or ``async def``) sees the state after the whole
        superstep's writes and returns a node name, ``END``, a ``Send``, or a
        list of them. With a *path_map* its results are keys of the map (a
        dict) or must be among its names (a list); ``compile()`` then checks
        the targets and knows what the router can reach.

        Raises:
          GraphValidationError: *router* is not callable.
        """
        if not callable(router):
            raise GraphValidationError(f"the router of {source!r} must be callable", node=source)
        if source == END:
            raise GraphValidationError("END cannot be the source of an edge", node=END)
        mapping: Mapping[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, Mapping):
            mapping = dict(path_map)
        else:
            mapping = {name: name for name in path_map}
        is_async = inspect.iscoroutinefunction(router) or inspect.iscoroutinefunction(
            getattr(router, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._branches.append(Branch(source, router, mapping, is_async))
        return self

    def set_entry_point(self, node: str) -> StateGraph[StateT]:
        """Same as ``add_edge(START, node)``."""
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph[StateT]:
        """Same as ``add_edge(node, END)``."""
        return self.add_edge(node, END)

    def compile(
        self,
        *,
        checkpointer: Checkpointer | None = None,
        interrupt_before: Sequence[str] | str = (),
        interrupt_after: Sequence[str] | str = (),
        name: str | None = None,
    ) -> CompiledGraph:
        """Check the graph and freeze it into a runnable :class:`CompiledGraph`.

        Args:
          checkpointer: where durable runs keep their checkpoints.
          interrupt_before / interrupt_after: node names (or ``"*"``) to pause
            before / after; needs a checkpointer.
          name: the graph's name (used when it is a subgraph node).

        Raises:
          GraphValidationError: naming the node or edge at fault: an unknown
            node, no entry point, an unreachable node, an interrupt on an
            unknown node or without a checkpointer.
        """
        from ._compiled import CompiledGraph
        from ._validate import validate

        spec = self._freeze()
        for cls in spec.schema.value_types:
            default_serializer.register(cls)
        before = _interrupt_names(interrupt_before, spec)
        after = _interrupt_names(interrupt_after, spec)
        validate(spec)
        if (before or after) and checkpointer is None:
            raise GraphValidationError(
                "interrupt_before/interrupt_after pause a thread, which needs a checkpointer: "
                "compile(checkpointer=MemoryCheckpointer(), ...)"
            )
        return CompiledGraph._create(
            spec,
            checkpointer=checkpointer,
            interrupt_before=before,
            interrupt_after=after,
            name=name or "graph",
            builder=self,
        )

    def _freeze(self) -> GraphSpec:
        nodes = dict(self._nodes)
        order = {name: i for i, name in enumerate(nodes)}
        edges: dict[str, list[str]] = {}
        for source, target in self._edges:
            targets = edges.setdefault(source, [])
            if target not in targets:
                targets.append(target)
        joins = tuple(
            Join(i, frozenset(sources), target) for i, (sources, target) in enumerate(self._joins)
        )
        joins_by_source: dict[str, list[Join]] = {}
        for join in joins:
            for source in sorted(join.sources):
                joins_by_source.setdefault(source, []).append(join)
        branches: dict[str, list[Branch]] = {}
        for branch in self._branches:
            branches.setdefault(branch.source, []).append(branch)
        static = {
            name: tuple(sorted((t for t in edges.get(name, ()) if t != END), key=order.__getitem__))
            for name in nodes
            if name not in joins_by_source and name not in branches
            and all(t == END or t in order for t in edges.get(name, ()))
        }
        return GraphSpec(
            schema=self._schema,
            nodes=nodes,
            order=order,
            edges={k: tuple(v) for k, v in edges.items()},
            joins=joins,
            joins_by_source={k: tuple(v) for k, v in joins_by_source.items()},
            branches={k: tuple(v) for k, v in branches.items()},
            static=static,
        )


def _interrupt_names(names: Sequence[str] | str, spec: GraphSpec) -> frozenset[str]:
    if isinstance(names, str):
        names = (names,)
    if "*" in names:
        return frozenset(spec.nodes)
    for name in names:
        if name not in spec.nodes:
            raise GraphValidationError(
                f"cannot interrupt at unknown node {name!r}", node=name
            )
    return frozenset(names)

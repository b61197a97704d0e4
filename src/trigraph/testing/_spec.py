"""Graph specs: plain, frozen data that describes a whole graph and its input.

A :class:`GraphSpec` is what :func:`trigraph.testing.graphs` generates and
what Hypothesis shrinks and prints. It builds the real graph
(:meth:`GraphSpec.compile`), and it defines every node and router as a pure
function of what the node or router reads (:meth:`GraphSpec.writes`,
:meth:`GraphSpec.goto`, :meth:`GraphSpec.route`, :meth:`GraphSpec.chunks`), so
that a reference interpreter can compute what a run must do without running
the built graph. The invariant kept here: a built node's behaviour depends
only on its input (the state, or its ``Send`` argument), never on time, on
other tasks or on how often it ran.
"""

from __future__ import annotations

import json
import operator
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypedDict

import attrs

from .._compiled import CompiledGraph
from .._context import get_stream_writer
from .._graph import StateGraph
from .._types import Command, Send
from .._util import final
from ._harness import mark_emitted, pause, pause_from_thread

__all__ = [
    "Chunk",
    "GraphSpec",
    "JoinSpec",
    "KeySpec",
    "LoopSpec",
    "NodeSpec",
    "Reducer",
    "RouterSpec",
    "SendSpec",
    "WriteSpec",
    "digest",
    "set_union",
]

Reducer = Literal["add", "concat", "union", "plain"]
"""A key's merge rule: ``"add"`` (``int``, ``operator.add``: commutative),
``"concat"`` (``list[str]``, ``operator.add``: order-sensitive), ``"union"``
(``list[str]``, :func:`set_union`: commutative), ``"plain"`` (``str``, no
reducer: one write per step)."""

NodeKind = Literal["async", "sync", "agen", "graph"]


def set_union(old: list[str], new: list[str]) -> list[str]:
    """The ``"union"`` reducer: a sorted list of the items of both (a set, kept as JSON)."""
    return sorted(set(old) | set(new))


_ANNOTATIONS: dict[str, Any] = {
    "add": Annotated[int, operator.add],
    "concat": Annotated[list[str], operator.add],
    "union": Annotated[list[str], set_union],
    "plain": str,
}


def digest(value: Any) -> int:
    """A stable small fingerprint of a JSON-like value (the input a node read)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return zlib.crc32(text.encode())


def _names(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _writes(items: Iterable[WriteSpec]) -> tuple[WriteSpec, ...]:
    return tuple(items)


def _fanouts(items: Iterable[SendSpec]) -> tuple[SendSpec, ...]:
    return tuple(items)


@final
@attrs.frozen
class KeySpec:
    """A state key and its reducer."""

    name: str
    reducer: Reducer


@final
@attrs.frozen
class WriteSpec:
    """A node writes *key*; the value mixes *salt* with a digest of the node's input.

    ``"add"``: ``1 + (d + salt) % 3`` (always >= 1, so a loop counter grows);
    ``"union"``: ``[f"{node}{(d + salt) % 3}"]``; ``"concat"``:
    ``[f"{node}.{(d + salt) % 100}"]``; ``"plain"``: ``f"{node}.{(d + salt) % 100}"``.
    """

    key: str
    salt: int = 0


@final
@attrs.frozen
class SendSpec:
    """A ``Send`` fan-out: *count* tasks of *node*, the *i*-th with argument
    ``{"from": <sender>, "i": i, "d": <digest of what the sender read> % 97}``."""

    node: str
    count: int


@final
@attrs.frozen
class NodeSpec:
    """A node: its *kind*, what it writes, how many chunks it streams, where it
    sends itself with ``Command(goto=...)``.

    Chunks are :class:`Chunk` values: an async node streams them with
    ``await get_stream_writer()(chunk)``, a sync node with
    ``get_stream_writer()(chunk)`` from its worker thread, an async
    generator yields them and then yields one ``Command(update=...)`` per
    write (and one with the ``goto``). A ``"graph"`` node is the compiled
    *subgraph*; what it writes is what the subgraph's nodes write (its other
    fields are unused).
    """

    name: str
    kind: NodeKind = "async"
    writes: tuple[WriteSpec, ...] = attrs.field(default=(), converter=_writes)
    chunks: int = 0
    goto: tuple[str, ...] = attrs.field(default=(), converter=_names)
    sends: tuple[SendSpec, ...] = attrs.field(default=(), converter=_fanouts)
    subgraph: GraphSpec | None = None


@final
@attrs.frozen
class LoopSpec:
    """A back edge to *target*, taken while ``state[counter] < bound``."""

    counter: str
    bound: int
    target: str


@final
@attrs.frozen
class RouterSpec:
    """A conditional edge after *source* (a node or ``START``).

    The router returns, in this order: every name of *targets* (``END``
    allowed); one of *choices*, picked by the digest of the state; the
    *loop* target while its guard holds; the ``Send`` fan-outs of *sends*.
    With *mapped* it is added with a ``path_map`` listing every name it can
    return; with *is_async* it is an ``async def``.
    """

    source: str
    targets: tuple[str, ...] = attrs.field(default=(), converter=_names)
    choices: tuple[str, ...] = attrs.field(default=(), converter=_names)
    loop: LoopSpec | None = None
    sends: tuple[SendSpec, ...] = attrs.field(default=(), converter=_fanouts)
    mapped: bool = False
    is_async: bool = False


@final
@attrs.frozen
class JoinSpec:
    """``add_edge(list(sources), target)``: *target* runs once all *sources* ran."""

    sources: tuple[str, ...] = attrs.field(converter=_names)
    target: str


@final
@attrs.frozen
class Chunk:
    """What a spec node streams: its *index*-th of *count* chunks, from a task
    of *node* whose input had digest *task*."""

    node: str
    task: int
    index: int
    count: int


def _keys(items: Iterable[KeySpec]) -> tuple[KeySpec, ...]:
    return tuple(items)


def _nodes(items: Iterable[NodeSpec]) -> tuple[NodeSpec, ...]:
    return tuple(items)


def _edges(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in items)


def _joins(items: Iterable[JoinSpec]) -> tuple[JoinSpec, ...]:
    return tuple(items)


def _routers(items: Iterable[RouterSpec]) -> tuple[RouterSpec, ...]:
    return tuple(items)


@final
@attrs.frozen
class GraphSpec:
    """A whole graph and an input for it, as plain data.

    Nodes are added in the order of *nodes* (which is the graph's node order);
    *edges* are ``(source, target)`` pairs (``START`` and ``END`` allowed).

    Example:
      >>> from trigraph import END, START
      >>> spec = GraphSpec(
      ...     keys=(KeySpec("log", "concat"),),
      ...     nodes=(NodeSpec("a", writes=(WriteSpec("log"),)),),
      ...     edges=((START, "a"), ("a", END)),
      ... )
      >>> import trio
      >>> trio.run(spec.compile().ainvoke, spec.input)
      {'log': ['a.86']}
      >>> print(spec.describe())
      keys: log (concat)
      a: async, writes log
      __start__ -> a
      a -> __end__
      input: {}

    .. versionadded:: 0.1
    """

    keys: tuple[KeySpec, ...] = attrs.field(converter=_keys)
    nodes: tuple[NodeSpec, ...] = attrs.field(converter=_nodes)
    edges: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_edges)
    joins: tuple[JoinSpec, ...] = attrs.field(default=(), converter=_joins)
    routers: tuple[RouterSpec, ...] = attrs.field(default=(), converter=_routers)
    input: Mapping[str, Any] = attrs.field(factory=dict)

    # -- what nodes and routers do (pure) ---------------------------------

    def node(self, name: str) -> NodeSpec:
        """The node called *name*."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def all_nodes(self) -> list[str]:
        """The names of every node, those of subgraphs included."""
        out: list[str] = []
        for node in self.nodes:
            out.append(node.name)
            if node.subgraph is not None:
                out += node.subgraph.all_nodes()
        return out

    def reducer(self, key: str) -> Reducer:
        """The reducer kind of *key*."""
        for k in self.keys:
            if k.name == key:
                return k.reducer
        raise KeyError(key)

    def writes(self, name: str, arg: Any) -> dict[str, Any]:
        """What node *name* writes when it reads *arg* (the state or its ``Send`` arg)."""
        d = digest(arg)
        out: dict[str, Any] = {}
        for write in self.node(name).writes:
            v = d + write.salt
            kind = self.reducer(write.key)
            if kind == "add":
                out[write.key] = 1 + v % 3
            elif kind == "union":
                out[write.key] = [f"{name}{v % 3}"]
            elif kind == "concat":
                out[write.key] = [f"{name}.{v % 100}"]
            else:
                out[write.key] = f"{name}.{v % 100}"
        return out

    def goto(self, name: str, arg: Any) -> list[str | Send]:
        """The ``Command(goto=...)`` targets of node *name* when it reads *arg*."""
        node = self.node(name)
        out: list[str | Send] = list(node.goto)
        out.extend(_sends(node.sends, name, arg))
        return out

    def chunks(self, name: str, arg: Any) -> list[Chunk]:
        """The chunks node *name* streams when it reads *arg*."""
        n = self.node(name).chunks
        d = digest(arg)
        return [Chunk(name, d, i, n) for i in range(n)]

    def route(self, router: RouterSpec, state: Mapping[str, Any]) -> list[str | Send]:
        """What *router* returns for *state*."""
        out: list[str | Send] = list(router.targets)
        if router.choices:
            out.append(router.choices[digest(state) % len(router.choices)])
        loop = router.loop
        if loop is not None and state.get(loop.counter, 0) < loop.bound:
            out.append(loop.target)
        out.extend(_sends(router.sends, router.source, state))
        return out

    # -- building ----------------------------------------------------------

    def schema(self) -> type:
        """The state schema: a ``total=False`` TypedDict with one key per :class:`KeySpec`."""
        fields = {k.name: _ANNOTATIONS[k.reducer] for k in self.keys}
        return TypedDict("State", fields, total=False)  # type: ignore[operator,no-any-return]

    def builder(self) -> StateGraph[Any]:
        """A :class:`StateGraph` with this spec's nodes and edges, not yet compiled."""
        g: StateGraph[Any] = StateGraph(self.schema())
        for node in self.nodes:
            if node.subgraph is not None:
                g.add_node(node.name, node.subgraph.compile(name=node.name))
                continue
            destinations = (*node.goto, *(s.node for s in node.sends))
            g.add_node(node.name, _node_fn(self, node), destinations=destinations)
        for source, target in self.edges:
            g.add_edge(source, target)
        for join in self.joins:
            g.add_edge(list(join.sources), join.target)
        for router in self.routers:
            path_map = _path_map(router) if router.mapped else None
            g.add_conditional_edges(router.source, _router_fn(self, router), path_map)
        return g

    def compile(self, **kwargs: Any) -> CompiledGraph:
        """Build and compile; *kwargs* go to ``StateGraph.compile``."""
        return self.builder().compile(**kwargs)

    def describe(self) -> str:
        """A short, human-readable listing of the spec (for ``hypothesis.note``)."""
        lines = ["keys: " + ", ".join(f"{k.name} ({k.reducer})" for k in self.keys)]
        for node in self.nodes:
            if node.subgraph is not None:
                lines.append(f"{node.name}: subgraph")
                lines += ["    " + line for line in node.subgraph.describe().splitlines()[:-1]]
                continue
            parts: list[str] = [node.kind]
            if node.writes:
                parts.append("writes " + " ".join(w.key for w in node.writes))
            if node.chunks:
                parts.append(f"{node.chunks} chunks")
            if node.goto or node.sends:
                gotos = [*node.goto, *(f"Send {s.node} x{s.count}" for s in node.sends)]
                parts.append("goto " + " ".join(gotos))
            lines.append(f"{node.name}: " + ", ".join(parts))
        lines += [f"{a} -> {b}" for a, b in self.edges]
        lines += [f"join {' & '.join(j.sources)} -> {j.target}" for j in self.joins]
        for r in self.routers:
            parts = list(r.targets)
            if r.choices:
                parts.append("one of " + "|".join(r.choices))
            if r.loop is not None:
                parts.append(f"{r.loop.target} while {r.loop.counter} < {r.loop.bound}")
            parts += [f"Send {s.node} x{s.count}" for s in r.sends]
            flags = "".join([" mapped" if r.mapped else "", " async" if r.is_async else ""])
            lines.append(f"router{flags} after {r.source}: " + ", ".join(parts))
        lines.append(f"input: {dict(self.input)!r}")
        return "\n".join(lines)


def _sends(sends: tuple[SendSpec, ...], sender: str, read: Any) -> list[str | Send]:
    if not sends:
        return []
    d = digest(read) % 97
    return [
        Send(s.node, {"from": sender, "i": i, "d": d}) for s in sends for i in range(s.count)
    ]


def _path_map(router: RouterSpec) -> list[str]:
    names = [*router.targets, *router.choices, *(s.node for s in router.sends)]
    if router.loop is not None:
        names.append(router.loop.target)
    return list(dict.fromkeys(names))


def _router_fn(spec: GraphSpec, router: RouterSpec) -> Callable[[Any], Any]:
    if router.is_async:

        async def route_async(state: Any) -> list[str | Send]:
            return spec.route(router, state)

        return route_async

    def route(state: Any) -> list[str | Send]:
        return spec.route(router, state)

    return route


def _result(spec: GraphSpec, name: str, arg: Any) -> Any:
    writes = spec.writes(name, arg)
    goto = spec.goto(name, arg)
    if goto:
        return Command(update=writes or None, goto=goto)
    return writes or None


def _node_fn(spec: GraphSpec, node: NodeSpec) -> Callable[[Any], Any]:
    name = node.name
    if node.kind == "async":

        async def run_async(arg: Any) -> Any:
            for chunk in spec.chunks(name, arg):
                await pause(name)
                await get_stream_writer()(chunk)
                mark_emitted(chunk)
            return _result(spec, name, arg)

        return run_async
    if node.kind == "sync":

        def run_sync(arg: Any) -> Any:
            for chunk in spec.chunks(name, arg):
                pause_from_thread(name)
                get_stream_writer()(chunk)
                mark_emitted(chunk)
            return _result(spec, name, arg)

        return run_sync

    async def run_agen(arg: Any) -> Any:
        for chunk in spec.chunks(name, arg):
            yield chunk
        writes = spec.writes(name, arg)
        for key, value in writes.items():
            yield Command(update={key: value})
        goto = spec.goto(name, arg)
        if goto:
            yield Command(goto=goto)

    return run_agen


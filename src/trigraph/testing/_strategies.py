"""Hypothesis strategies for trigraph: random valid graphs, and random schedules.

:func:`graphs` draws a :class:`~trigraph.testing.GraphSpec` (plain data that
builds the real graph and defines what each node does), :func:`delays` draws
the virtual sleeps that perturb a run's schedule. Every node and edge kind
the engine has joins :func:`graphs`; an option turns a kind off. The
invariant kept here: every drawn graph compiles, and every run of it ends
(forward edges only point to later nodes, back edges are guarded by counters
that every pass increments, and ``Send`` targets never send again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .._compiled import CompiledGraph
from .._types import END, START
from ._harness import Delays
from ._spec import (
    GraphSpec,
    JoinSpec,
    KeySpec,
    LoopSpec,
    NodeKind,
    NodeSpec,
    Reducer,
    RouterSpec,
    SendSpec,
    WriteSpec,
)

__all__ = ["delays", "graphs"]

NODE_KINDS: tuple[NodeKind, ...] = ("async", "sync", "agen", "graph")
REDUCERS: tuple[Reducer, ...] = ("add", "concat", "union", "plain")


@attrs.frozen
class _Options:
    min_nodes: int
    max_nodes: int
    max_keys: int
    kinds: tuple[NodeKind, ...]
    reducers: tuple[Reducer, ...]
    routers: bool
    loops: int
    joins: bool
    min_joins: int
    sends: bool
    gotos: bool
    conflicts: bool
    max_chunks: int


@attrs.define
class _RouterDraft:
    targets: list[str] = attrs.Factory(list)
    choices: list[str] = attrs.Factory(list)
    loop: LoopSpec | None = None
    sends: list[SendSpec] = attrs.Factory(list)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise InvalidArgument(f"{name}={value!r} must be {bound}")
    return value


def _check_subset(name: str, value: Iterable[str], allowed: tuple[str, ...]) -> tuple[Any, ...]:
    if isinstance(value, str):
        raise InvalidArgument(f"{name} must be a sequence of names, not the string {value!r}")
    items = tuple(dict.fromkeys(value))
    if not items:
        raise InvalidArgument(f"{name} must not be empty")
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name} has unknown value(s) {unknown!r}; choose from {allowed!r}")
    return items


def graphs(
    *,
    min_nodes: int = 1,
    max_nodes: int = 5,
    max_keys: int = 3,
    kinds: Sequence[NodeKind] = NODE_KINDS,
    reducers: Sequence[Reducer] = REDUCERS,
    routers: bool = True,
    loops: int = 2,
    joins: bool = True,
    min_joins: int = 0,
    sends: bool = True,
    gotos: bool = True,
    conflicts: bool = False,
    max_chunks: int = 3,
) -> st.SearchStrategy[GraphSpec]:
    """A strategy for valid graphs, as :class:`~trigraph.testing.GraphSpec` values
    (each with an input); build one with ``spec.compile(...)``.

    Nodes ``n0, n1, ...`` are sync functions, async functions, async
    generators or subgraphs (*kinds*: ``"sync"``, ``"async"``, ``"agen"``,
    ``"graph"``) that write some of the keys ``k0, k1, ...`` (each
    with one of *reducers*: ``"add"`` and ``"union"`` are commutative,
    ``"concat"`` is not, ``"plain"`` has no reducer) and stream up to
    *max_chunks* ``Custom`` chunks. Every node is reached from ``START`` or
    an earlier node by a plain edge, a conditional edge (*routers*: always
    taken, or one of several choices picked by the state), a join of 2-3
    earlier nodes (*joins*; at least *min_joins* of them), a ``Command(goto=...)``
    (*gotos*), or a ``Send`` fan-out of 0-3 tasks from a router or a
    ``goto`` (*sends*). Extra forward edges and edges to ``END`` are added,
    and up to *loops* back edges, each a router branch guarded by a counter
    key ``c<i>`` (``"add"``) that its source increments: ``state[c] < bound``
    (bound 1-3). Routers may be ``async`` and may have a ``path_map``. A
    subgraph node ``n<i>`` is a graph drawn the same way (nodes ``n<i>_n0, ...``,
    at most 3, no subgraphs of its own, loop counters ``d<j>`` of its own)
    over the same keys.

    Every drawn graph compiles and every run ends. Unless *conflicts* is
    true, no two tasks of one step can write the same ``"plain"`` key: each
    such key has at most one writer, which is never a ``Send`` target. With
    *conflicts*, any node may write any key, so runs may raise
    ``InvalidUpdateError``.

    Shrinks toward fewer nodes and keys, each node reached by one plain edge
    from ``START`` or an earlier node, the first of *kinds* and *reducers*,
    no chunks, no writes, no loops or extra edges, and an empty input.

    Raises:
      hypothesis.errors.InvalidArgument: bounds out of range or inconsistent
        (``min_nodes > max_nodes``; *min_joins* without room for joins),
        unknown or empty *kinds* / *reducers*.

    Example:
      >>> from hypothesis import given, settings
      >>> from trigraph.testing import graphs, run_graph
      >>> @settings(max_examples=5, deadline=None)
      ... @given(graphs(max_nodes=3))
      ... def test_runs_end(spec):
      ...     assert run_graph(spec.compile(), spec.input).final_state is not None
      >>> test_runs_end()

    .. versionadded:: 0.1
    """
    _check_int("min_nodes", min_nodes, 1)
    _check_int("max_nodes", max_nodes, 1)
    if min_nodes > max_nodes:
        raise InvalidArgument(f"min_nodes={min_nodes} is larger than max_nodes={max_nodes}")
    _check_int("max_keys", max_keys, 1)
    _check_int("loops", loops, 0)
    _check_int("min_joins", min_joins, 0)
    _check_int("max_chunks", max_chunks, 0)
    if min_joins and (not joins or min_nodes < min_joins + 2):
        raise InvalidArgument(
            f"min_joins={min_joins} needs joins=True and min_nodes >= {min_joins + 2} "
            f"(a join waits for two earlier nodes); got joins={joins}, min_nodes={min_nodes}"
        )
    node_kinds = _check_subset("kinds", kinds, NODE_KINDS)
    if node_kinds == ("graph",):
        raise InvalidArgument("kinds=('graph',) leaves the subgraphs no kind of node to have")
    options = _Options(
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        max_keys=max_keys,
        kinds=node_kinds,
        reducers=_check_subset("reducers", reducers, REDUCERS),
        routers=bool(routers),
        loops=loops,
        joins=bool(joins),
        min_joins=min_joins,
        sends=bool(sends),
        gotos=bool(gotos),
        conflicts=bool(conflicts),
        max_chunks=max_chunks,
    )
    return _graphs(options)


@attrs.frozen
class _Recipe:
    """How one node is reached and what it does, as raw draws.

    Indices are reduced modulo what is available when the graph is put
    together, so deleting a node (which the shrinker does by deleting a list
    element) always leaves a valid recipe for the others.
    """

    way: str
    parent: int
    sources: tuple[int, ...]
    count: int
    via_goto: bool
    to_end: bool
    kind: NodeKind
    chunks: int
    writes: tuple[tuple[int, int], ...]


_RAW = st.integers(0, 1000)


def _recipes(o: _Options) -> st.SearchStrategy[list[_Recipe]]:
    ways = ["edge"]
    if o.routers:
        ways += ["route", "choice"]
    if o.joins:
        ways.append("join")
    if o.gotos:
        ways.append("goto")
    if o.sends:
        ways.append("send")
    recipe = st.builds(
        _Recipe,
        way=st.sampled_from(ways),
        parent=_RAW,
        sources=st.lists(_RAW, min_size=2, max_size=3).map(tuple),
        count=st.integers(1, 3) | st.just(0),
        via_goto=st.booleans(),
        to_end=st.booleans(),
        kind=st.sampled_from(o.kinds),
        chunks=st.integers(0, o.max_chunks),
        writes=st.lists(st.tuples(_RAW, st.integers(0, 2)), max_size=o.max_keys + o.loops)
        .map(tuple),
    )
    return st.lists(recipe, min_size=o.min_nodes, max_size=o.max_nodes)


@st.composite
def _graphs(
    draw: st.DrawFn,
    o: _Options,
    base: tuple[KeySpec, ...] = (),
    plain_allowed: frozenset[str] | None = None,
    prefix: str = "",
) -> GraphSpec:
    """A graph; with *base*, a subgraph of a graph with those keys, whose
    nodes (named ``<prefix>n0, ...``) may write only the plain keys in
    *plain_allowed*, and whose loop counters are its own keys."""
    if base:
        keys = list(base)
    else:
        reducers = draw(st.lists(st.sampled_from(o.reducers), min_size=1, max_size=o.max_keys))
        keys = [KeySpec(f"k{i}", r) for i, r in enumerate(reducers)]
    recipes = draw(_recipes(o))
    n = len(recipes)
    names = [f"{prefix}n{i}" for i in range(n)]
    is_graph = {name: r.kind == "graph" for name, r in zip(names, recipes, strict=True)}
    edges: list[tuple[str, str]] = []
    joins: list[JoinSpec] = []
    routers: dict[str, _RouterDraft] = {}
    gotos: dict[str, list[str]] = {}
    node_sends: dict[str, list[SendSpec]] = {}
    send_targets: set[str] = set()

    # How each node is reached from START or an earlier node.
    for i, (name, r) in enumerate(zip(names, recipes, strict=True)):
        earlier = names[:i]
        parent = ([START, *earlier])[r.parent % (i + 1)]
        way = r.way
        if i >= 2 and len(joins) < o.min_joins:
            way = "join"
        elif (way == "join" and i < 2) or (way == "goto" and not earlier):
            way = "edge"
        if way == "edge":
            edges.append((parent, name))
        elif way == "route":
            routers.setdefault(parent, _RouterDraft()).targets.append(name)
        elif way == "choice":
            draft = routers.setdefault(parent, _RouterDraft())
            draft.choices.append(name)
            if r.to_end and END not in draft.choices:
                draft.choices.append(END)
        elif way == "join":
            picked = sorted({s % i for s in r.sources})
            if len(picked) < 2:
                picked = [0, 1] if picked == [0] or not picked else [0, picked[0]]
            joins.append(JoinSpec([earlier[k] for k in picked], name))
        elif way == "goto":
            # A subgraph node cannot return a Command: its router goes there instead.
            parent = earlier[r.parent % i]
            if is_graph[parent]:
                routers.setdefault(parent, _RouterDraft()).targets.append(name)
            else:
                gotos.setdefault(parent, []).append(name)
        else:
            senders = [START, *(m for m in earlier if m not in send_targets)]
            sender = senders[r.parent % len(senders)]
            fanout = SendSpec(name, r.count)
            if o.gotos and sender != START and r.via_goto and not is_graph[sender]:
                node_sends.setdefault(sender, []).append(fanout)
            else:
                routers.setdefault(sender, _RouterDraft()).sends.append(fanout)
            send_targets.add(name)

    # Extra forward edges (and edges to END).
    for a, b in draw(st.lists(st.tuples(_RAW, _RAW), max_size=n)):
        a, b = a % (n + 1) - 1, b % (n + 1)  # -1: START; n: END
        if a < b:
            edge = (START if a < 0 else names[a], END if b == n else names[b])
            if edge not in edges:
                edges.append(edge)

    # Loops: a router branch back to an earlier (or the same) node, guarded
    # by a counter that the branch's source increments.
    counters: dict[str, str] = {}
    for s, t, bound in draw(
        st.lists(st.tuples(_RAW, _RAW, st.integers(1, 3)), max_size=o.loops)
    ):
        source = names[s % n]
        if is_graph[source]:
            continue  # the counter must be written by the loop's source itself
        draft = routers.setdefault(source, _RouterDraft())
        if draft.loop is None:
            counter = f"{'d' if base else 'c'}{len(counters)}"
            counters[source] = counter
            keys.append(KeySpec(counter, "add"))
            draft.loop = LoopSpec(counter, bound, names[t % (s % n + 1)])

    # Who may write each plain key (without conflicts: one node, never a Send target).
    eligible = [m for m in names if m not in send_targets]
    owners = {
        k.name: ([None, *eligible])[draw(_RAW) % (len(eligible) + 1)]
        for k in keys
        if k.reducer == "plain" and not o.conflicts
        and (plain_allowed is None or k.name in plain_allowed)
    }

    nodes = []
    for name, r in zip(names, recipes, strict=True):
        allowed = [
            k.name for k in keys
            if k.name not in counters.values()
            and (k.reducer != "plain" or owners.get(k.name) == name or (
                o.conflicts and (plain_allowed is None or k.name in plain_allowed)
            ))
        ]
        if is_graph[name]:
            sub = attrs.evolve(
                o,
                min_nodes=1,
                max_nodes=min(o.max_nodes, 3),
                kinds=tuple(k for k in o.kinds if k != "graph"),
                min_joins=0,
                loops=min(o.loops, 1),
            )
            shared = tuple(k for k in keys if k.name not in counters.values())
            subgraph = draw(_graphs(sub, shared, frozenset(allowed), f"{name}_"))
            nodes.append(NodeSpec(name, "graph", subgraph=subgraph))
            continue
        writes: dict[str, WriteSpec] = {}
        for index, salt in r.writes:
            if allowed:
                key = allowed[index % len(allowed)]
                writes.setdefault(key, WriteSpec(key, salt))
        if name in counters:
            writes[counters[name]] = WriteSpec(counters[name])
        nodes.append(
            NodeSpec(
                name,
                r.kind,
                writes.values(),
                r.chunks,
                gotos.get(name, ()),
                node_sends.get(name, ()),
            )
        )

    router_specs = []
    for source, draft in routers.items():
        to_end, mapped, is_async = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
        router_specs.append(
            RouterSpec(
                source,
                [*draft.targets, END] if to_end else draft.targets,
                draft.choices,
                draft.loop,
                draft.sends,
                mapped=mapped,
                is_async=is_async,
            )
        )

    values = {
        "add": st.integers(0, 3),
        "concat": st.lists(st.sampled_from("xyz"), max_size=2),
        "union": st.lists(st.sampled_from("xyz"), max_size=2),
        "plain": st.sampled_from("xy"),
    }
    if base:
        return GraphSpec(keys, nodes, edges, joins, router_specs)  # its input is the parent's
    data = draw(
        st.fixed_dictionaries(
            {},
            optional={
                k.name: st.integers(0, 2) if k.name in counters.values() else values[k.reducer]
                for k in keys
            },
        )
    )
    return GraphSpec(keys, nodes, edges, joins, router_specs, data)


def _compiled_nodes(graph: CompiledGraph) -> list[str]:
    out: list[str] = []
    for name, node in graph._spec.nodes.items():
        out.append(name)
        if isinstance(node.fn, CompiledGraph):
            out += _compiled_nodes(node.fn)
    return out


def delays(
    nodes: GraphSpec | CompiledGraph | Iterable[str],
    *,
    max_delay: float = 1.0,
    max_pauses: int = 4,
    consumer: bool = True,
) -> st.SearchStrategy[Delays]:
    """A strategy for :class:`~trigraph.testing.Delays`: random virtual sleeps
    for the tasks of *nodes* (and for :func:`run_graph`'s consumer).

    Each node gets 0 to *max_pauses* delays, multiples of ``max_delay / 10``
    from 0 to *max_delay* seconds (so ties happen, and a tie is an
    interesting schedule too); with *consumer*, the consumer gets such a
    list as well. Pass the result to :func:`~trigraph.testing.run_graph` or
    :func:`~trigraph.testing.with_delays`.

    Shrinks toward no delays at all (every task runs as soon as it can and
    the consumer reads as fast as it can), then toward shorter delays.

    Args:
      nodes: node names, a compiled graph or a
        :class:`~trigraph.testing.GraphSpec` (their nodes, those of
        subgraphs included).

    Raises:
      hypothesis.errors.InvalidArgument: *max_delay* not finite and > 0,
        *max_pauses* < 1, or *nodes* not names.

    Example:
      >>> from hypothesis import find
      >>> find(delays(["a", "b"]), lambda d: d.nodes["a"] and d.nodes["a"][0] > 0.5)
      Delays(nodes={'a': (0.6,), 'b': ()}, consumer=())

    .. versionadded:: 0.1
    """
    if isinstance(nodes, GraphSpec):
        names = nodes.all_nodes()
    elif isinstance(nodes, CompiledGraph):
        names = _compiled_nodes(nodes)
    elif isinstance(nodes, str):
        raise InvalidArgument(f"nodes must be a sequence of names, not the string {nodes!r}")
    else:
        names = list(nodes)
        if not all(isinstance(name, str) for name in names):
            raise InvalidArgument(f"nodes must be node names, got {names!r}")
    if isinstance(max_delay, bool) or not isinstance(max_delay, (int, float)) or not (
        0 < max_delay < float("inf")
    ):
        raise InvalidArgument(f"max_delay={max_delay!r} must be a finite number > 0")
    _check_int("max_pauses", max_pauses, 1)
    step = st.integers(0, 10).map(lambda k: round(k * max_delay / 10, 9))
    table = st.lists(step, max_size=max_pauses).map(tuple)
    per_node = st.fixed_dictionaries({name: table for name in dict.fromkeys(names)})
    waits = table if consumer else st.just(())
    return st.builds(Delays, per_node, waits)

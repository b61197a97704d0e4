"""``trigraph.testing.graphs()`` and ``delays()``: every node and edge kind is
generated, every graph compiles and ends, shrinking goes where the docstrings
say, and bad arguments raise ``InvalidArgument``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis.errors import InvalidArgument
from reference import run_reference

from trigraph import END, START
from trigraph.testing import Delays, GraphSpec, delays, graphs


def _any_router(spec: GraphSpec, test: Callable[[Any], bool]) -> bool:
    return any(test(r) for r in spec.routers)


FEATURES: dict[str, Callable[[GraphSpec], bool]] = {
    "sync node": lambda s: any(n.kind == "sync" for n in s.nodes),
    "async node": lambda s: any(n.kind == "async" for n in s.nodes),
    "async generator node": lambda s: any(n.kind == "agen" for n in s.nodes),
    "subgraph node": lambda s: any(n.kind == "graph" for n in s.nodes),
    "subgraph with a router": lambda s: any(
        n.subgraph is not None and n.subgraph.routers for n in s.nodes
    ),
    "chunks": lambda s: any(n.chunks for n in s.nodes),
    "join": lambda s: bool(s.joins),
    "loop": lambda s: _any_router(s, lambda r: r.loop is not None),
    "router Send": lambda s: _any_router(s, lambda r: bool(r.sends)),
    "goto Send": lambda s: any(n.sends for n in s.nodes),
    "goto": lambda s: any(n.goto for n in s.nodes),
    "choice": lambda s: _any_router(s, lambda r: len(r.choices) > 1),
    "router to END": lambda s: _any_router(s, lambda r: END in r.targets),
    "router from START": lambda s: _any_router(s, lambda r: r.source == START),
    "mapped router": lambda s: _any_router(s, lambda r: r.mapped),
    "async router": lambda s: _any_router(s, lambda r: r.is_async),
    "edge to END": lambda s: any(b == END for _, b in s.edges),
    "add key": lambda s: any(k.reducer == "add" for k in s.keys),
    "union key": lambda s: any(k.reducer == "union" for k in s.keys),
    "concat key": lambda s: any(k.reducer == "concat" for k in s.keys),
    "written plain key": lambda s: any(
        s.reducer(w.key) == "plain" for n in s.nodes for w in n.writes
    ),
    "input": lambda s: bool(s.input),
}


def test_graphs_generates_every_kind() -> None:
    seen: set[str] = set()

    @settings(max_examples=400, phases=[Phase.generate], database=None)
    @given(graphs())
    def collect(spec: GraphSpec) -> None:
        seen.update(name for name, has in FEATURES.items() if has(spec))

    collect()
    assert sorted(set(FEATURES) - seen) == []


@settings(max_examples=10)
@given(graphs(min_nodes=4, min_joins=2, conflicts=True))
def test_options_are_honoured(spec: GraphSpec) -> None:
    assert len(spec.nodes) >= 4
    assert len(spec.joins) >= 2


def test_graphs_shrink_toward_one_node_on_one_edge() -> None:
    spec = find(graphs(max_nodes=3), lambda s: True)
    assert len(spec.nodes) == 1
    assert spec.edges == ((START, "n0"),)
    assert spec.routers == spec.joins == ()
    assert spec.nodes[0].kind == "async"
    assert spec.input == {}


def test_delays_shrink_toward_no_delays() -> None:
    assert find(delays(["a", "b"]), lambda d: True) == Delays({"a": (), "b": ()})


@given(graphs(conflicts=False))
def test_without_conflicts_no_plain_key_has_two_writers(spec: GraphSpec) -> None:
    assert run_reference(spec).conflict is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_nodes": 0},
        {"min_nodes": 3, "max_nodes": 2},
        {"max_keys": 0},
        {"loops": -1},
        {"max_chunks": -1},
        {"kinds": ()},
        {"kinds": ("thread",)},
        {"kinds": ("graph",)},
        {"kinds": "async"},
        {"reducers": ("max",)},
        {"min_joins": 1, "min_nodes": 2},
        {"min_joins": 1, "min_nodes": 3, "joins": False},
        {"max_nodes": 2.5},
    ],
)
def test_graphs_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        graphs(**kwargs)


@pytest.mark.parametrize(
    ("nodes", "kwargs"),
    [("ab", {}), ([1], {}), (["a"], {"max_delay": 0}), (["a"], {"max_pauses": 0})],
)
def test_delays_rejects_bad_arguments(nodes: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        delays(nodes, **kwargs)

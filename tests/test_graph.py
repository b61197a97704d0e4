"""Building graphs with ``StateGraph``: node and edge arguments, compile errors,
independence of compiled graphs, and ``to_mermaid()``."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
import trio

from trigraph import (
    END,
    START,
    CompiledGraph,
    GraphValidationError,
    RetryPolicy,
    StateGraph,
)


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def appender(name: str) -> Any:
    async def node(state: State) -> dict[str, Any]:
        return {"log": [name]}

    node.__name__ = name
    return node


def single_node_graph() -> StateGraph[State]:
    g = StateGraph(State)
    g.add_node("a", appender("a"))
    g.add_edge(START, "a")
    g.add_edge("a", END)
    return g


def add_then_compile(g: StateGraph[Any], name: Any, fn: Any = None, **options: Any) -> None:
    if fn is None:
        g.add_node(name, **options)
    else:
        g.add_node(name, fn, **options)
    g.compile()


# -- add_node ----------------------------------------------------------------


def test_add_node_takes_the_function_name() -> None:
    async def research(state: State) -> None:
        return None

    g = StateGraph(State)
    g.add_node(research)
    assert list(g.nodes) == ["research"]


def test_add_node_returns_the_builder_for_chaining() -> None:
    g = StateGraph(State)
    assert g.add_node("a", appender("a")) is g
    assert g.add_edge(START, "a") is g
    assert g.add_conditional_edges("a", lambda s: END) is g


def test_add_node_takes_a_subgraph_name_from_compile() -> None:
    sub = single_node_graph().compile(name="inner")
    g = StateGraph(State)
    g.add_node(sub)
    assert list(g.nodes) == ["inner"]


def test_duplicate_node_raises_naming_it() -> None:
    g = single_node_graph()
    with pytest.raises(GraphValidationError, match="'a'") as exc_info:
        add_then_compile(g, "a", appender("a2"))
    assert exc_info.value.node == "a"


@pytest.mark.parametrize("name", [START, END])
def test_reserved_node_name_raises_naming_it(name: str) -> None:
    g = StateGraph(State)
    with pytest.raises(GraphValidationError, match=name) as exc_info:
        add_then_compile(g, name, appender("x"))
    assert exc_info.value.node == name


@pytest.mark.parametrize("name", ["a:b", "a|b"])
def test_node_name_with_namespace_separator_raises(name: str) -> None:
    with pytest.raises(GraphValidationError, match="may not contain"):
        StateGraph(State).add_node(name, appender("x"))


@pytest.mark.parametrize("name", ["", 3, None])
def test_node_name_must_be_a_non_empty_string(name: Any) -> None:
    with pytest.raises(GraphValidationError):
        StateGraph(State).add_node(name, appender("x"))


def test_non_callable_node_raises() -> None:
    with pytest.raises(GraphValidationError, match="callable"):
        StateGraph(State).add_node("a", 42)


def test_node_without_a_name_raises() -> None:
    class Anonymous:
        __name__ = None

        async def __call__(self, state: State) -> None:
            return None

    with pytest.raises(GraphValidationError, match="cannot take a node name"):
        StateGraph(State).add_node(Anonymous())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 0}, "timeout="),
        ({"timeout": -1.0}, "timeout="),
        ({"max_concurrency": 0}, "max_concurrency="),
        ({"max_concurrency": 2.5}, "max_concurrency="),
        ({"retry": 3}, "retry="),
    ],
)
def test_bad_node_option_raises_naming_node(options: dict[str, Any], match: str) -> None:
    with pytest.raises(GraphValidationError, match=match) as exc_info:
        StateGraph(State).add_node("slow", appender("slow"), **options)
    assert "'slow'" in str(exc_info.value)


def test_good_node_options_are_accepted() -> None:
    g = StateGraph(State)
    g.add_node("a", appender("a"), retry=RetryPolicy(), timeout=1.5, max_concurrency=2)
    spec = g.nodes["a"]
    assert (spec.timeout, spec.max_concurrency) == (1.5, 2)
    assert spec.retry == RetryPolicy()


def test_node_kinds_are_detected() -> None:
    async def a(state: State) -> None:
        return None

    def s(state: State) -> None:
        return None

    async def gen(state: State) -> Any:
        yield 1

    sub = single_node_graph().compile()
    g = StateGraph(State).add_node(a).add_node(s).add_node(gen).add_node("sub", sub)
    assert {name: spec.kind for name, spec in g.nodes.items()} == {
        "a": "async",
        "s": "sync",
        "gen": "agen",
        "sub": "graph",
    }


# -- edges ----------------------------------------------------------------------


def test_end_cannot_be_an_edge_source() -> None:
    with pytest.raises(GraphValidationError, match="END"):
        StateGraph(State).add_edge(END, "a")


def test_start_cannot_be_an_edge_target() -> None:
    with pytest.raises(GraphValidationError, match="START"):
        StateGraph(State).add_edge("a", START)


def test_join_cannot_wait_for_start() -> None:
    with pytest.raises(GraphValidationError, match="'c'"):
        StateGraph(State).add_edge([START, "a"], "c")


def test_join_needs_sources() -> None:
    with pytest.raises(GraphValidationError, match="no sources"):
        StateGraph(State).add_edge([], "c")


def test_router_must_be_callable() -> None:
    with pytest.raises(GraphValidationError, match="'a'"):
        StateGraph(State).add_conditional_edges("a", "b")  # type: ignore[arg-type]


def test_set_entry_and_finish_point_are_edges() -> None:
    g = StateGraph(State).add_node("a", appender("a"))
    g.set_entry_point("a").set_finish_point("a")
    assert trio.run(g.compile().ainvoke, {}) == {"log": ["a"]}


# -- compiling --------------------------------------------------------------


def test_compile_returns_a_compiled_graph() -> None:
    graph = single_node_graph().compile()
    assert isinstance(graph, CompiledGraph)
    assert graph.nodes == ("a",)


def test_compiled_graph_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        CompiledGraph()


def test_builder_compiled_twice_gives_independent_graphs() -> None:
    g = single_node_graph()
    first = g.compile()
    g.add_node("b", appender("b"))
    g.add_edge("a", "b")
    g.add_edge("b", END)
    second = g.compile()
    assert first.nodes == ("a",)
    assert second.nodes == ("a", "b")
    assert trio.run(first.ainvoke, {}) == {"log": ["a"]}
    assert trio.run(second.ainvoke, {}) == {"log": ["a", "b"]}


async def test_one_compiled_graph_runs_concurrently() -> None:
    graph = single_node_graph().compile()
    results: list[dict[str, Any]] = []

    async def run(start: str) -> None:
        results.append(await graph.ainvoke({"log": [start]}))

    async with trio.open_nursery() as nursery:
        for start in ("x", "y", "z"):
            nursery.start_soon(run, start)
    assert sorted(r["log"][0] for r in results) == ["x", "y", "z"]
    assert all(r["log"][1:] == ["a"] for r in results)


def test_compile_error_leaves_builder_usable() -> None:
    g = StateGraph(State).add_node("a", appender("a")).add_edge(START, "a")
    g.add_edge("a", "ghost")
    with pytest.raises(GraphValidationError, match="'ghost'"):
        g.compile()
    g.add_node("ghost", appender("ghost")).add_edge("ghost", END)
    assert trio.run(g.compile().ainvoke, {}) == {"log": ["a", "ghost"]}


# -- mermaid ------------------------------------------------------------------------


def test_to_mermaid_of_a_linear_graph() -> None:
    assert single_node_graph().compile().to_mermaid() == "\n".join(
        [
            "flowchart TD",
            "    __start__([__start__])",
            "    a[a]",
            "    __end__([__end__])",
            "    __start__ --> a",
            "    a --> __end__",
        ]
    )


def test_to_mermaid_shows_joins_and_conditional_edges() -> None:
    def route(state: State) -> str:
        return "done"

    def free_router(state: State) -> str:
        return END

    g = StateGraph(State)
    for name in ("a", "b", "c", "d"):
        g.add_node(name, appender(name))
    g.add_edge(START, "a").add_edge(START, "b")
    g.add_edge(["b", "a"], "c")
    g.add_conditional_edges("c", route, {"again": "a", "done": END})
    g.add_conditional_edges("d", free_router)
    g.add_conditional_edges("a", route, ["d", END])
    text = g.compile().to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    for node in ("a", "b", "c", "d"):
        assert f"    {node}[{node}]" in lines
    assert "    __start__ --> a" in lines
    assert "    __start__ --> b" in lines
    assert "    a & b --> c" in lines
    assert "    c -.-> |again| a" in lines
    assert "    c -.-> |done| __end__" in lines
    assert "    a -.-> d" in lines
    assert "    a -.-> __end__" in lines
    assert "    d -.-> |free_router| d" in lines

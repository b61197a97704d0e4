"""Whole-graph checks of ``compile()``: each raises ``GraphValidationError``
naming the node or edge at fault."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar

import pytest

from trigraph import END, START, Command, GraphValidationError, StateGraph

T = TypeVar("T")


async def noop(state: dict[str, Any]) -> None:
    return None


def graph_with(*names: str) -> StateGraph[dict[str, Any]]:
    g = StateGraph(dict)
    for name in names:
        g.add_node(name, noop)
    return g


def test_empty_graph_raises() -> None:
    with pytest.raises(GraphValidationError, match="no nodes"):
        StateGraph(dict).compile()


def test_unknown_edge_target_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "a").add_edge("a", "missing")
    with pytest.raises(GraphValidationError, match="'missing'") as exc_info:
        g.compile()
    assert exc_info.value.node == "missing"


def test_unknown_edge_source_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "a").add_edge("ghost", "a")
    with pytest.raises(GraphValidationError, match="'ghost'") as exc_info:
        g.compile()
    assert exc_info.value.node == "ghost"


def test_unknown_entry_node_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "b")
    with pytest.raises(GraphValidationError, match="'b'"):
        g.compile()


def test_unknown_node_hint_suggests_a_close_name() -> None:
    g = graph_with("Research").add_edge(START, "research")
    with pytest.raises(GraphValidationError, match="did you mean 'Research'"):
        g.compile()


def test_unknown_join_source_raises_naming_it() -> None:
    g = graph_with("a", "c").add_edge(START, "a").add_edge(["a", "nope"], "c")
    with pytest.raises(GraphValidationError, match="'nope'"):
        g.compile()


def test_unknown_join_target_raises_naming_it() -> None:
    g = graph_with("a", "b").add_edge(START, "a").add_edge(START, "b")
    g.add_edge(["a", "b"], "nowhere")
    with pytest.raises(GraphValidationError, match="'nowhere'"):
        g.compile()


def test_unknown_path_map_target_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "x", {"x": "unknown_target"})
    with pytest.raises(GraphValidationError, match="'unknown_target'") as exc_info:
        g.compile()
    assert "path_map" in str(exc_info.value)


def test_unknown_path_map_list_entry_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: END, ["b", END])
    with pytest.raises(GraphValidationError, match="'b'"):
        g.compile()


def test_unknown_conditional_source_raises_naming_it() -> None:
    g = graph_with("a").add_edge(START, "a")
    g.add_conditional_edges("zzz", lambda s: END, [END])
    with pytest.raises(GraphValidationError, match="'zzz'"):
        g.compile()


def test_unknown_destination_raises_naming_it() -> None:
    g = StateGraph(dict).add_node("a", noop, destinations=("elsewhere",)).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="'elsewhere'"):
        g.compile()


def test_no_entry_point_raises() -> None:
    g = graph_with("a").add_edge("a", END)
    with pytest.raises(GraphValidationError, match="no entry point") as exc_info:
        g.compile()
    assert exc_info.value.node == START


def test_unreachable_node_raises_naming_it() -> None:
    g = graph_with("a", "island").add_edge(START, "a").add_edge("a", END)
    g.add_edge("island", END)
    with pytest.raises(GraphValidationError, match="'island'") as exc_info:
        g.compile()
    assert exc_info.value.node == "island"
    assert "unreachable" in str(exc_info.value)


def test_node_reached_only_through_a_join_is_reachable() -> None:
    g = graph_with("a", "b", "c").add_edge(START, "a").add_edge(START, "b")
    g.add_edge(["a", "b"], "c").add_edge("c", END)
    assert g.compile().nodes == ("a", "b", "c")


def test_node_reached_only_through_a_path_map_is_reachable() -> None:
    g = graph_with("a", "b").add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b", ["b", END])
    assert g.compile().nodes == ("a", "b")


def test_router_without_path_map_can_reach_any_node() -> None:
    g = graph_with("a", "b").add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b")
    assert g.compile().nodes == ("a", "b")


def test_conditional_entry_point_counts_as_entry() -> None:
    g = graph_with("a").add_conditional_edges(START, lambda s: "a", ["a"])
    assert g.compile().nodes == ("a",)


def test_declared_destinations_make_a_goto_target_reachable() -> None:
    async def jump(state: dict[str, Any]) -> dict[str, Any]:  # says it returns no Command
        return {}

    g = StateGraph(dict).add_node("a", jump).add_node("b", noop).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="destinations="):
        g.compile()
    ok = StateGraph(dict).add_node("a", jump, destinations=("b",)).add_node("b", noop)
    ok.add_edge(START, "a")
    assert ok.compile().nodes == ("a", "b")


async def bare(state: dict[str, Any]) -> Command:
    return Command(goto="b")


def unannotated(state):  # type: ignore[no-untyped-def]
    return Command(goto="b")


async def anything(state: dict[str, Any]) -> Any:
    return Command(goto="b")


async def unresolvable(state: dict[str, Any]) -> Nope:  # type: ignore[name-defined]  # noqa: F821
    return Command(goto="b")


@pytest.mark.parametrize("node", [bare, unannotated, anything, unresolvable])
async def test_a_node_with_an_undeclared_goto_may_reach_every_node(node: Any) -> None:
    g = StateGraph(dict).add_node("a", node).add_node("b", noop).add_node("c", noop)
    g.add_edge(START, "a")
    graph = g.compile()  # as in LangGraph: "b" and "c" are reached only by goto
    assert await graph.ainvoke({}) == {}
    assert "-.->" not in graph.to_mermaid()  # nothing declared, nothing drawn


async def to_b_or_end(state: dict[str, Any]) -> Command[Literal["b", "__end__"]]:
    return Command(goto="b")


async def dict_or_to_b_c(state: dict[str, Any]) -> dict[str, Any] | Command[Literal["b", "c"]]:
    return Command(goto="c")


async def yields_to_b(state: dict[str, Any]) -> AsyncIterator[Command[Literal["b"]]]:
    yield Command(goto="b")


async def yields_text(state: dict[str, Any]) -> AsyncIterator[str]:
    yield "chunk"


def test_a_command_literal_annotation_declares_destinations() -> None:
    g = StateGraph(dict).add_node("a", to_b_or_end).add_node("b", noop).add_edge(START, "a")
    graph = g.compile()
    assert "    a -.-> b" in graph.to_mermaid().splitlines()
    g.add_node("island", noop)
    with pytest.raises(GraphValidationError, match="'island' is unreachable from START"):
        g.compile()


def test_a_union_annotation_declares_the_commands_destinations() -> None:
    g = StateGraph(dict).add_node("a", dict_or_to_b_c).add_node("b", noop).add_node("c", noop)
    g.add_edge(START, "a")
    mermaid = g.compile().to_mermaid().splitlines()
    assert {"    a -.-> b", "    a -.-> c"} <= set(mermaid)
    g.add_node("island", noop)
    with pytest.raises(GraphValidationError, match="'island'"):
        g.compile()


def test_async_generator_annotations_are_read_from_what_they_yield() -> None:
    g = StateGraph(dict).add_node("a", yields_to_b).add_node("b", noop).add_edge(START, "a")
    assert "    a -.-> b" in g.compile().to_mermaid().splitlines()
    g2 = StateGraph(dict).add_node("a", yields_text).add_node("b", noop).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="'b'"):
        g2.compile()


def test_explicit_destinations_win_over_the_annotation() -> None:
    g = StateGraph(dict).add_node("a", bare, destinations="b").add_node("b", noop)
    g.add_edge(START, "a").add_node("island", noop)
    with pytest.raises(GraphValidationError, match="'island'"):
        g.compile()


def test_validation_never_calls_nodes_or_routers() -> None:
    calls: list[str] = []

    def router(state: dict[str, Any]) -> str:
        calls.append("router")
        return END

    def node(state: dict[str, Any]) -> None:
        calls.append("node")

    g = StateGraph(dict).add_node("a", node).add_edge(START, "a")
    g.add_conditional_edges("a", router, [END])
    g.compile()
    assert calls == []


try:
    from typing_extensions import TypeAliasType
except ImportError:  # pragma: no cover
    TypeAliasType = None

Route = TypeAliasType("Route", Command[Literal["b"]]) if TypeAliasType else None


async def aliased(state: dict[str, Any]) -> Route:  # type: ignore[valid-type]
    return Command(goto="b")


async def optional(state: dict[str, Any]) -> Route | None:  # type: ignore[valid-type]
    return None


class Router:
    async def __call__(self, state: dict[str, Any]) -> Command[Literal["b"]]:
        return Command(goto="b")


async def with_extra(state: dict[str, Any], extra: int) -> Command[Literal["b"]]:
    return Command(goto="b")


@pytest.mark.skipif(TypeAliasType is None, reason="needs typing_extensions")
@pytest.mark.parametrize(
    "node",
    [aliased, optional, Router(), functools.partial(functools.partial(with_extra, extra=1))],
    ids=["alias", "optional alias", "callable object", "partial"],
)
def test_annotations_found_in_real_code_are_read(node: Any) -> None:
    g = StateGraph(dict).add_node("a", node).add_node("b", noop).add_edge(START, "a")
    assert "    a -.-> b" in g.compile().to_mermaid().splitlines()
    g.add_node("island", noop)
    with pytest.raises(GraphValidationError, match="'island'"):
        g.compile()


async def returns_a_typevar(state: dict[str, Any]) -> T:  # type: ignore[type-var]
    return Command(goto="b")  # type: ignore[return-value]


async def parameter_only_for_the_checker(state: OnlyForTheChecker) -> Command[Literal["b"]]:  # type: ignore[name-defined]  # noqa: F821
    return Command(goto="b")


def test_an_unknown_annotation_may_go_anywhere_and_parameters_do_not_matter() -> None:
    g = StateGraph(dict).add_node("a", returns_a_typevar).add_node("b", noop).add_edge(START, "a")
    assert g.compile().nodes == ("a", "b")
    g2 = StateGraph(dict).add_node("a", parameter_only_for_the_checker).add_node("b", noop)
    g2.add_edge(START, "a")
    assert "    a -.-> b" in g2.compile().to_mermaid().splitlines()


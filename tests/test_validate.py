"""Whole-graph checks of ``compile()``: each raises ``GraphValidationError``
naming the node or edge at fault."""

from __future__ import annotations

from typing import Any

import pytest

from trigraph import END, START, Command, GraphValidationError, StateGraph


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


def test_goto_target_needs_destinations_to_be_reachable() -> None:
    async def jump(state: dict[str, Any]) -> Command:
        return Command(goto="b")

    g = StateGraph(dict).add_node("a", jump).add_node("b", noop).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="destinations="):
        g.compile()
    ok = StateGraph(dict).add_node("a", jump, destinations=("b",)).add_node("b", noop)
    ok.add_edge(START, "a")
    assert ok.compile().nodes == ("a", "b")


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

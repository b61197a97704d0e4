"""``trigraph.testing``'s runner: ``run_graph``, ``arun_graph``, ``with_delays``, ``Delays``."""

from __future__ import annotations

import math
import operator
from typing import Annotated, Any, TypedDict

import pytest
import trio
from hypothesis.errors import InvalidArgument

from trigraph import END, START, CompiledGraph, InvalidUpdateError, StateGraph
from trigraph.events import Custom, Update
from trigraph.testing import Delays, arun_graph, run_graph, with_delays


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    plain: str


async def a(state: State) -> dict[str, Any]:
    return {"log": ["a"]}


async def b(state: State) -> dict[str, Any]:
    return {"log": ["b"]}


def sync_node(state: State) -> dict[str, Any]:
    return {"plain": "sync"}


async def c(state: State) -> Any:
    for i in range(3):
        yield i


def build() -> CompiledGraph:
    g = StateGraph(State)
    g.add_node(a).add_node(b).add_node(c)
    g.add_edge(START, "a").add_edge(START, "b").add_edge(START, "c").add_edge("c", END)
    return g.compile()


def test_delays_reorder_completion_but_not_the_state() -> None:
    graph = build()
    fast_a = run_graph(graph, {}, delays={"b": 1.0})
    slow_a = run_graph(graph, {}, delays={"a": 1.0})
    assert fast_a.final_state == slow_a.final_state == {"log": ["a", "b"]}
    assert [u.node for u in fast_a.updates() if u.node != "c"] == ["a", "b"]
    assert [u.node for u in slow_a.updates() if u.node != "c"] == ["b", "a"]
    assert fast_a.duration == slow_a.duration == 2.0  # before and after each task


def test_a_sync_node_sleeps_in_virtual_time_from_its_thread() -> None:
    g = StateGraph(State)
    g.add_node(sync_node).add_edge(START, "sync_node")
    result = run_graph(g.compile(), {}, delays={"sync_node": 1.5})
    assert result.final_state == {"log": [], "plain": "sync"}
    assert result.duration == 3.0


def test_delays_cycle_per_node_and_pause_between_generator_items() -> None:
    result = run_graph(build(), {}, delays=Delays({"c": (1.0, 0.0)}), modes="custom")
    assert [e.data for e in result.events if isinstance(e, Custom)] == [0, 1, 2]
    # c pauses before each of its 3 items, before it ends and after: 1 + 0 + 1 + 0 + 1
    assert result.duration == 3.0


def test_consumer_delays_slow_the_run_down_through_backpressure() -> None:
    result = run_graph(build(), {}, delays=Delays(consumer=5.0), buffer=0, modes="custom")
    assert result.duration >= 10.0
    assert all(ahead <= 1 for _, ahead in result.ahead)
    assert len(result.ahead) == 3


def test_errors_are_raised_or_caught_on_request() -> None:
    g = StateGraph(State)
    g.add_node("x", lambda s: {"plain": "x"}).add_node("y", lambda s: {"plain": "y"})
    g.add_edge(START, "x").add_edge(START, "y")
    graph = g.compile()
    with pytest.raises(InvalidUpdateError):
        run_graph(graph, {})
    result = run_graph(graph, {}, catch=InvalidUpdateError, modes=("updates",))
    assert isinstance(result.error, InvalidUpdateError)
    assert result.final_state is None
    assert sorted(e.node for e in result.events if isinstance(e, Update)) == ["x", "y"]


def test_run_graph_refuses_to_run_inside_trio_but_arun_graph_works() -> None:
    graph = build()

    async def main() -> list[str]:
        with pytest.raises(RuntimeError, match="arun_graph"):
            run_graph(graph, {})
        result = await arun_graph(graph, {}, modes=("values",))
        assert result.final_state is not None
        return list(result.final_state["log"])

    assert trio.run(main) == ["a", "b"]


def test_with_delays_copies_the_graph_and_keeps_the_original() -> None:
    graph = build()
    slow = with_delays(graph, {"a": 3.0})
    assert slow is not graph
    assert slow.nodes == graph.nodes

    async def timed(g: CompiledGraph) -> float:
        start = trio.current_time()
        await g.ainvoke({})
        return trio.current_time() - start

    clock = trio.testing.MockClock(autojump_threshold=0)
    assert trio.run(timed, slow, clock=clock) == 6.0
    assert trio.run(timed, graph, clock=trio.testing.MockClock(autojump_threshold=0)) == 0.0


@pytest.mark.parametrize(
    "bad",
    [{"a": -1.0}, {"a": math.nan}, {"a": math.inf}, {"a": "1"}, {1: 1.0}, {"a": (0.5, True)}],
)
def test_delays_reject_bad_values(bad: Any) -> None:
    with pytest.raises(InvalidArgument):
        Delays(bad)


def test_bad_runner_arguments_raise_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        Delays(consumer=-1.0)
    with pytest.raises(InvalidArgument):
        run_graph(build(), {}, buffer=-1)
    with pytest.raises(InvalidArgument):
        run_graph(build(), {}, delays=[1.0])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        with_delays("not a graph", None)  # type: ignore[arg-type]


def test_public_names_say_trigraph_testing() -> None:
    import trigraph.testing

    for name in ("Delays", "RunResult", "GraphSpec", "NodeSpec", "run_graph", "graphs", "delays"):
        assert getattr(trigraph.testing, name).__module__ == "trigraph.testing", name


def test_import_trigraph_does_not_import_hypothesis() -> None:
    import subprocess
    import sys

    code = "import sys, trigraph; assert 'hypothesis' not in sys.modules; "
    code += "assert 'trigraph.testing' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

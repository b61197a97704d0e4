"""The superstep loop: node kinds, subgraphs, deterministic write order,
parallelism, joins, Send fan-out, Command, routers, recursion_limit, update
errors, node errors, and concurrency limits."""

from __future__ import annotations

import itertools
import math
import operator
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.lowlevel
import trio.testing
from _helpers import collect, top
from hypothesis import given, strategies as st

from trigraph import (
    END,
    START,
    Command,
    CompiledGraph,
    GraphRecursionError,
    GraphValidationError,
    InvalidUpdateError,
    Send,
    StateGraph,
)
from trigraph.events import TaskStart, Update, Values


class Log(TypedDict, total=False):
    log: Annotated[list[Any], operator.add]
    value: Any
    count: int


def appender(name: str, delay: float = 0) -> Callable[[Any], Any]:
    async def node(state: Any) -> dict[str, Any]:
        if delay:
            await trio.sleep(delay)
        return {"log": [name]}

    node.__name__ = name
    return node


def chain(*nodes: tuple[str, Any], schema: Any = Log) -> CompiledGraph:
    """START -> first -> ... -> last -> END."""
    g = StateGraph(schema)
    previous = START
    for name, fn in nodes:
        g.add_node(name, fn)
        g.add_edge(previous, name)
        previous = name
    g.add_edge(previous, END)
    return g.compile()


def fan(*nodes: tuple[str, Any], schema: Any = Log) -> CompiledGraph:
    """START -> every node -> END, all in step 1."""
    g = StateGraph(schema)
    for name, fn in nodes:
        g.add_node(name, fn).add_edge(START, name).add_edge(name, END)
    return g.compile()


# -- node kinds ------------------------------------------------------------------------


async def test_sync_node_runs_in_a_worker_thread(trio_thread: int) -> None:
    threads: list[int] = []

    def blocking(state: Log) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {"value": "sync"}

    assert await chain(("blocking", blocking)).ainvoke({}) == {"value": "sync", "log": []}
    assert threads
    assert threads[0] != trio_thread


async def test_sync_node_does_not_block_the_event_loop() -> None:
    released = threading.Event()

    def waits(state: Log) -> dict[str, Any]:
        # Only an async sibling on the event loop can set this; a sync node run
        # on the loop would block it and the wait would time out.
        return {"value": released.wait(timeout=10)}

    async def releases(state: Log) -> None:
        await trio.lowlevel.checkpoint()
        released.set()

    final = await fan(("waits", waits), ("releases", releases)).ainvoke({})
    assert final["value"] is True


async def test_async_node_runs_on_the_trio_thread(trio_thread: int) -> None:
    threads: list[int] = []

    async def node(state: Log) -> dict[str, Any]:
        threads.append(threading.get_ident())
        await trio.lowlevel.checkpoint()
        return {"value": "async"}

    assert (await chain(("node", node)).ainvoke({}))["value"] == "async"
    assert threads == [trio_thread]


async def test_async_callable_object_is_an_async_node() -> None:
    class Node:
        async def __call__(self, state: Log) -> dict[str, Any]:
            await trio.lowlevel.checkpoint()
            return {"value": "object"}

    assert (await chain(("obj", Node())).ainvoke({}))["value"] == "object"


async def test_node_returns_none_and_writes_nothing() -> None:
    async def nothing(state: Log) -> None:
        return None

    assert await chain(("nothing", nothing)).ainvoke({"value": 1}) == {"value": 1, "log": []}


async def test_node_returns_command_with_update() -> None:
    async def node(state: Log) -> Command:
        return Command(update={"value": 2, "log": ["c"]})

    assert await chain(("node", node)).ainvoke({"value": 1}) == {"value": 2, "log": ["c"]}


@pytest.mark.parametrize("result", [["log"], "value", 3, ("value", 1), object()])
async def test_node_returning_something_else_raises_naming_the_node(result: Any) -> None:
    async def weird(state: Log) -> Any:
        return result

    with pytest.raises(InvalidUpdateError, match="'weird'") as exc_info:
        await chain(("weird", weird)).ainvoke({})
    assert exc_info.value.nodes == ("weird",)


async def test_sync_node_returning_something_else_raises_naming_it() -> None:
    def weird(state: Log) -> Any:
        return [1, 2]

    with pytest.raises(InvalidUpdateError, match="'weird'"):
        await chain(("weird", weird)).ainvoke({})


async def test_command_update_must_be_a_mapping() -> None:
    async def node(state: Log) -> Command:
        return Command(update=[("value", 1)])  # type: ignore[arg-type]

    with pytest.raises(InvalidUpdateError, match="'node'"):
        await chain(("node", node)).ainvoke({})


async def test_unknown_key_raises_invalid_update_naming_key_and_node() -> None:
    async def node(state: Log) -> dict[str, Any]:
        return {"vaule": 1}

    with pytest.raises(InvalidUpdateError, match="'vaule'") as exc_info:
        await chain(("node", node)).ainvoke({})
    assert exc_info.value.key == "vaule"
    assert "'node'" in str(exc_info.value)


async def test_two_writes_to_reducerless_key_raise_naming_key_and_both_nodes() -> None:
    async def left(state: Log) -> dict[str, Any]:
        return {"value": "l"}

    async def right(state: Log) -> dict[str, Any]:
        return {"value": "r"}

    with pytest.raises(InvalidUpdateError) as exc_info:
        await fan(("left", left), ("right", right)).ainvoke({})
    err = exc_info.value
    assert err.key == "value"
    assert set(err.nodes) == {"left", "right"}
    for part in ("'value'", "'left'", "'right'"):
        assert part in str(err)


async def test_writes_to_a_reducer_key_from_parallel_nodes_merge() -> None:
    final = await fan(("a", appender("a")), ("b", appender("b"))).ainvoke({"log": ["in"]})
    assert final["log"] == ["in", "a", "b"]


# -- subgraphs --------------------------------------------------------------------------


class Shared(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]
    summary: str


class SubState(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]
    summary: str
    private: str


def make_subgraph() -> CompiledGraph:
    async def s1(state: SubState) -> dict[str, Any]:
        return {"notes": ["s1"], "private": "hidden"}

    async def s2(state: SubState) -> dict[str, Any]:
        return {"notes": ["s2"], "summary": f"{len(state['notes'])} notes"}

    return chain(("s1", s1), ("s2", s2), schema=SubState)


def parent_with_subgraph() -> CompiledGraph:
    async def before(state: Shared) -> dict[str, Any]:
        return {"notes": ["p"]}

    async def after(state: Shared) -> dict[str, Any]:
        return {"notes": [f"after {state['summary']}"]}

    return chain(("before", before), ("sub", make_subgraph()), ("after", after), schema=Shared)


async def test_subgraph_node_contributes_what_it_wrote() -> None:
    final = await parent_with_subgraph().ainvoke({"notes": ["in"]})
    assert final == {"notes": ["in", "p", "s1", "s2", "after 3 notes"], "summary": "3 notes"}


async def test_subgraph_does_not_count_a_reducer_key_twice() -> None:
    sub = make_subgraph()

    async def noop(state: Shared) -> None:
        return None

    final = await chain(("sub", sub), ("noop", noop), schema=Shared).ainvoke({"notes": ["x"]})
    assert final["notes"] == ["x", "s1", "s2"]


async def test_subgraph_update_carries_final_values_of_written_keys() -> None:
    events = await collect(parent_with_subgraph(), {"notes": ["in"]}, modes="updates")
    sub_updates = [e for e in top(events) if isinstance(e, Update) and e.node == "sub"]
    assert [e.update for e in sub_updates] == [
        {"notes": ["in", "p", "s1", "s2"], "summary": "3 notes"}
    ]


async def test_subgraph_keys_unknown_to_parent_are_not_written() -> None:
    final = await parent_with_subgraph().ainvoke({})
    assert "private" not in final


async def test_subgraph_as_send_target_runs_once_per_send() -> None:
    async def s(state: SubState) -> dict[str, Any]:
        return {"notes": [f"{state['summary']}!"]}

    sub = chain(("s", s), schema=SubState)
    g = StateGraph(Shared).add_node("sub", sub)
    g.add_conditional_edges(START, lambda st: [Send("sub", {"summary": x}) for x in "abc"])
    g.add_edge("sub", END)
    final = await g.compile().ainvoke({})
    assert final["notes"] == ["a!", "b!", "c!"]


# -- deterministic order -------------------------------------------------------------------


@pytest.mark.parametrize("delays", list(itertools.permutations([1, 2, 3, 4])))
async def test_writes_apply_in_task_order_not_completion_order(
    delays: tuple[int, ...], autojump_clock: trio.testing.MockClock
) -> None:
    names = ["a", "b", "c", "d"]
    graph = fan(*[(n, appender(n, d)) for n, d in zip(names, delays, strict=True)])
    events = await collect(graph, {}, modes=("updates", "values"))
    finished = [e.node for e in events if isinstance(e, Update)]
    assert finished == [n for _, n in sorted(zip(delays, names, strict=True))]
    values = [e for e in events if isinstance(e, Values)]
    assert values == [Values(0, {"log": []}), Values(1, {"log": ["a", "b", "c", "d"]})]


@given(delays=st.lists(st.integers(0, 4), min_size=7, max_size=7))
def test_final_state_and_values_are_schedule_independent(delays: list[int]) -> None:
    def graph_with(delays: list[int]) -> CompiledGraph:
        g = StateGraph(Log)
        for i, name in enumerate("abcd"):
            g.add_node(name, appender(name, delays[i]))
        g.add_node("work", appender_arg(delays[4:]))
        g.add_edge(START, "a").add_edge(START, "b")
        g.add_edge("a", "c").add_edge(["b", "c"], "d")
        g.add_conditional_edges("d", lambda s: [Send("work", i) for i in range(3)])
        g.add_edge("work", END)
        return g.compile()

    async def main(graph: CompiledGraph) -> list[Any]:
        return await collect(graph, {}, modes="values")

    clock = trio.testing.MockClock(autojump_threshold=0)
    reference = trio.run(main, graph_with([0] * 7), clock=clock)
    observed = trio.run(main, graph_with(delays), clock=clock)
    assert observed == reference
    assert reference[-1].state["log"] == ["a", "b", "c", "d", 0, 1, 2]


def appender_arg(delays: list[int]) -> Callable[[int], Any]:
    async def work(arg: int) -> dict[str, Any]:
        await trio.sleep(delays[arg])
        return {"log": [arg]}

    return work


async def test_writes_are_applied_only_after_the_whole_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []

    async def fast(state: Log) -> dict[str, Any]:
        return {"log": ["fast"]}

    async def slow(state: Log) -> dict[str, Any]:
        await trio.sleep(1)
        return {"log": ["slow"]}

    async def next_step(state: Log) -> None:
        seen.append(list(state["log"]))

    g = StateGraph(Log).add_node(fast).add_node(slow).add_node(next_step)
    g.add_edge(START, "fast").add_edge(START, "slow")
    g.add_edge(["fast", "slow"], "next_step").add_edge("next_step", END)
    events = await collect(g.compile(), {}, modes="values")
    assert [e.state for e in events] == [
        {"log": []},
        {"log": ["fast", "slow"]},
        {"log": ["fast", "slow"]},
    ]
    assert seen == [["fast", "slow"]]


async def test_parallel_branches_overlap_in_time(autojump_clock: trio.testing.MockClock) -> None:
    finished: list[float] = []

    async def sleeper(state: Log) -> None:
        await trio.sleep(1)
        finished.append(trio.current_time())

    start = trio.current_time()
    await fan(("one", sleeper), ("two", sleeper)).ainvoke({})
    assert finished == [start + 1, start + 1]
    assert trio.current_time() == start + 1


async def test_node_triggered_by_several_predecessors_runs_once() -> None:
    calls: list[int] = []

    async def target(state: Log) -> dict[str, Any]:
        calls.append(1)
        return {"log": ["target"]}

    async def jumper(state: Log) -> Command:
        return Command(update={"log": ["jumper"]}, goto="target")

    g = StateGraph(Log)
    g.add_node("a", appender("a")).add_node("b", appender("b"))
    g.add_node("jumper", jumper, destinations=("target",)).add_node(target)
    for source in ("a", "b", "jumper"):
        g.add_edge(START, source)
    g.add_edge("a", "target").add_edge("b", "target")
    g.add_edge(["a", "b"], "target")
    g.add_conditional_edges("a", lambda s: "target", ["target"])
    g.add_edge("target", END)
    final = await g.compile().ainvoke({})
    assert calls == [1]
    assert final["log"] == ["a", "b", "jumper", "target"]


async def test_join_waits_for_all_sources(autojump_clock: trio.testing.MockClock) -> None:
    ran_at: list[float] = []

    async def c(state: Log) -> dict[str, Any]:
        ran_at.append(trio.current_time())
        return {"log": ["c"]}

    g = StateGraph(Log).add_node("a", appender("a", 1)).add_node("b", appender("b", 3))
    g.add_node(c).add_edge(START, "a").add_edge(START, "b")
    g.add_edge(["a", "b"], "c").add_edge("c", END)
    start = trio.current_time()
    final = await g.compile().ainvoke({})
    assert final["log"] == ["a", "b", "c"]
    assert ran_at == [start + 3]


async def test_join_sources_finishing_in_different_supersteps() -> None:
    steps: list[int] = []

    async def c(state: Log) -> dict[str, Any]:
        steps.append(len(state["log"]))
        return {"log": ["c"]}

    g = StateGraph(Log)
    for name in ("a", "b1", "b2"):
        g.add_node(name, appender(name))
    g.add_node(c)
    g.add_edge(START, "a").add_edge(START, "b1").add_edge("b1", "b2")
    g.add_edge(["a", "b2"], "c").add_edge("c", END)
    events = await collect(g.compile(), {}, modes="updates")
    assert sorted((e.step, e.node) for e in events) == [(1, "a"), (1, "b1"), (2, "b2"), (3, "c")]
    assert steps == [3]


async def test_join_fires_once_per_round_of_its_sources() -> None:
    rounds: list[int] = []

    async def c(state: Log) -> dict[str, Any]:
        rounds.append(1)
        return {"count": state.get("count", 0) + 1}

    def again(state: Log) -> Any:
        return END if state["count"] >= 2 else ["a", "b"]

    g = StateGraph(Log).add_node("a", appender("a")).add_node("b", appender("b"))
    g.add_node(c).add_edge(START, "a").add_edge(START, "b").add_edge(["a", "b"], "c")
    g.add_conditional_edges("c", again, ["a", "b", END])
    final = await g.compile().ainvoke({})
    assert rounds == [1, 1]
    assert final["log"] == ["a", "b", "a", "b"]


# -- Send ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_send_fan_out_of_ten_thousand_keeps_send_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    n = 10_000

    async def work(arg: int) -> dict[str, Any]:
        await trio.sleep((n - arg) * 0.001)  # the last Send finishes first
        return {"log": [arg]}

    g = StateGraph(Log).add_node("work", work)
    g.add_conditional_edges(START, lambda s: [Send("work", i) for i in range(n)])
    g.add_edge("work", END)
    final = await g.compile().ainvoke({})
    assert final["log"] == list(range(n))


async def test_send_argument_is_the_node_input() -> None:
    seen: list[Any] = []

    async def work(arg: Any) -> dict[str, Any]:
        seen.append(arg)
        return {"log": [arg["x"] * 2]}

    g = StateGraph(Log).add_node("work", work)
    g.add_conditional_edges(START, lambda s: [Send("work", {"x": 1}), Send("work", {"x": 5})])
    g.add_edge("work", END)
    assert (await g.compile().ainvoke({"value": "ignored"}))["log"] == [2, 10]
    assert sorted(arg["x"] for arg in seen) == [1, 5]


async def test_plain_targets_come_before_sends_in_task_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work(arg: str) -> dict[str, Any]:
        return {"log": [arg]}

    g = StateGraph(Log).add_node("work", work).add_node("plain", appender("plain", 5))
    g.add_conditional_edges(START, lambda s: [Send("work", "s1"), "plain", Send("work", "s2")])
    g.add_edge("work", END).add_edge("plain", END)
    assert (await g.compile().ainvoke({}))["log"] == ["plain", "s1", "s2"]


# -- Command(goto=) -----------------------------------------------------------------------


def goto_graph(goto: Any) -> CompiledGraph:
    async def jump(state: Log) -> Command:
        return Command(update={"log": ["jump"]}, goto=goto)

    async def work(arg: Any) -> dict[str, Any]:
        return {"log": [arg if isinstance(arg, str) else "work"]}

    g = StateGraph(Log).add_node("jump", jump, destinations=("a", "b", "work"))
    g.add_node("a", appender("a")).add_node("b", appender("b")).add_node("work", work)
    g.add_edge(START, "jump")
    for name in ("a", "b", "work"):
        g.add_edge(name, END)
    return g.compile()


@pytest.mark.parametrize(
    ("goto", "expected"),
    [
        ("a", ["jump", "a"]),
        (Send("work", "sent"), ["jump", "sent"]),
        (["b", "a"], ["jump", "a", "b"]),
        ([Send("work", "x"), "b", Send("work", "y")], ["jump", "b", "x", "y"]),
        (END, ["jump"]),
        ([], ["jump"]),
    ],
)
async def test_command_goto(goto: Any, expected: list[str]) -> None:
    assert (await goto_graph(goto).ainvoke({}))["log"] == expected


async def test_command_goto_adds_to_static_edges() -> None:
    async def jump(state: Log) -> Command:
        return Command(goto="b")

    g = StateGraph(Log).add_node("jump", jump, destinations=("b",))
    g.add_node("a", appender("a")).add_node("b", appender("b"))
    g.add_edge(START, "jump").add_edge("jump", "a").add_edge("a", END).add_edge("b", END)
    assert (await g.compile().ainvoke({}))["log"] == ["a", "b"]


async def test_command_goto_unknown_node_raises_naming_it() -> None:
    with pytest.raises(GraphValidationError, match="'nowhere'"):
        await goto_graph("nowhere").ainvoke({})


# -- routers ---------------------------------------------------------------------------------


def routed(router: Callable[[Any], Any], path_map: Any = None) -> CompiledGraph:
    async def work(arg: Any) -> dict[str, Any]:
        return {"log": [f"work:{arg}"]}

    g = StateGraph(Log).add_node("start", appender("start"))
    for name in ("a", "b"):
        g.add_node(name, appender(name)).add_edge(name, END)
    g.add_node("work", work).add_edge("work", END)
    g.add_edge(START, "start").add_conditional_edges("start", router, path_map)
    return g.compile()


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("a", ["start", "a"]),
        (["b", "a"], ["start", "a", "b"]),
        (END, ["start"]),
        ([Send("work", 1), Send("work", 2)], ["start", "work:1", "work:2"]),
        (["b", Send("work", 1), END], ["start", "b", "work:1"]),
        ([], ["start"]),
        (None, ["start"]),
    ],
)
async def test_router_result(result: Any, expected: list[str]) -> None:
    assert (await routed(lambda s: result).ainvoke({}))["log"] == expected


async def test_async_router() -> None:
    async def router(state: Log) -> str:
        await trio.lowlevel.checkpoint()
        return "b"

    assert (await routed(router).ainvoke({}))["log"] == ["start", "b"]


async def test_router_sees_the_state_after_the_step() -> None:
    def router(state: Log) -> str:
        return "a" if state["log"] == ["start"] else "b"

    assert (await routed(router).ainvoke({}))["log"] == ["start", "a"]


async def test_router_path_map_translates_results() -> None:
    graph = routed(lambda s: [True, False], {True: "a", False: "b", "w": "work", "stop": END})
    assert (await graph.ainvoke({}))["log"] == ["start", "a", "b"]


async def test_router_unknown_name_raises_at_run_time_naming_it() -> None:
    graph = routed(lambda s: "mystery")
    with pytest.raises(GraphValidationError, match="'mystery'") as exc_info:
        await graph.ainvoke({})
    assert exc_info.value.node == "mystery"


async def test_router_result_outside_path_map_raises_naming_it() -> None:
    graph = routed(lambda s: "c", {"a": "a", "b": "b"})
    with pytest.raises(GraphValidationError, match="'c'"):
        await graph.ainvoke({})


async def test_router_send_to_unknown_node_raises_naming_it() -> None:
    graph = routed(lambda s: [Send("ghost", 1)])
    with pytest.raises(GraphValidationError, match="'ghost'"):
        await graph.ainvoke({})


async def test_router_exception_gets_a_note() -> None:
    def router(state: Log) -> str:
        raise LookupError("no route")

    with pytest.raises(LookupError) as exc_info:
        await routed(router).ainvoke({})
    assert any("router after node 'start'" in note for note in exc_info.value.__notes__)


# -- recursion_limit --------------------------------------------------------------------------


def counting_graph() -> CompiledGraph:
    async def inc(state: Log) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    g = StateGraph(Log).add_node(inc).add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: END if s["count"] >= s["value"] else "inc")
    return g.compile()


@pytest.mark.parametrize("steps", [1, 2, 7])
async def test_run_needing_exactly_recursion_limit_steps_succeeds(steps: int) -> None:
    final = await counting_graph().ainvoke({"count": 0, "value": steps}, recursion_limit=steps)
    assert final["count"] == steps


@pytest.mark.parametrize("steps", [2, 7])
async def test_run_needing_one_step_more_than_recursion_limit_fails(steps: int) -> None:
    with pytest.raises(GraphRecursionError) as exc_info:
        await counting_graph().ainvoke({"count": 0, "value": steps}, recursion_limit=steps - 1)
    assert exc_info.value.limit == steps - 1
    assert f"recursion_limit={steps - 1}" in str(exc_info.value)


async def test_recursion_limit_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="recursion_limit"):
        await counting_graph().ainvoke({"count": 0, "value": 1}, recursion_limit=0)


async def test_infinite_loop_hits_the_default_recursion_limit() -> None:
    async def spin(state: Log) -> None:
        return None

    g = StateGraph(Log).add_node(spin).add_edge(START, "spin")
    g.add_conditional_edges("spin", lambda s: "spin")
    with pytest.raises(GraphRecursionError):
        await g.compile().ainvoke({}, recursion_limit=50)


# -- node errors ---------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_node_exception_arrives_as_itself_with_a_note() -> None:
    raised: list[Boom] = []

    async def ok(state: Log) -> dict[str, Any]:
        return {"log": ["ok"]}

    async def bad(state: Log) -> None:
        exc = Boom("broken")
        raised.append(exc)
        raise exc

    with pytest.raises(Boom) as exc_info:
        await chain(("ok", ok), ("bad", bad)).ainvoke({})
    assert exc_info.value is raised[0]
    assert "in node 'bad', step 2" in exc_info.value.__notes__


async def test_sync_node_exception_arrives_as_itself() -> None:
    def bad(state: Log) -> None:
        raise Boom("in a thread")

    with pytest.raises(Boom, match="in a thread") as exc_info:
        await chain(("bad", bad)).ainvoke({})
    assert "in node 'bad', step 1" in exc_info.value.__notes__


async def test_node_exception_cancels_its_siblings_promptly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled_at: list[float] = []

    async def bad(state: Log) -> None:
        await trio.sleep(1)
        raise Boom

    async def forever(state: Log) -> None:
        try:
            await trio.sleep(1000)
        except trio.Cancelled:
            cancelled_at.append(trio.current_time())
            raise

    start = trio.current_time()
    with pytest.raises(Boom):
        await fan(("bad", bad), ("forever", forever)).ainvoke({})
    assert cancelled_at == [start + 1]
    assert trio.current_time() == start + 1


async def test_node_exception_stops_the_run() -> None:
    ran: list[str] = []

    async def bad(state: Log) -> None:
        raise Boom

    async def later(state: Log) -> None:
        ran.append("later")

    with pytest.raises(Boom):
        await chain(("bad", bad), ("later", later)).ainvoke({})
    assert ran == []


async def test_two_nodes_failing_in_one_step_raise_an_exception_group() -> None:
    # Both fail before their first checkpoint, so the first failure's
    # cancellation cannot reach the second before it raises.
    async def bad_a(state: Log) -> None:
        raise Boom("a")

    async def bad_b(state: Log) -> None:
        raise KeyError("b")

    with pytest.raises(ExceptionGroup) as exc_info:
        await fan(("bad_a", bad_a), ("bad_b", bad_b)).ainvoke({})
    group = exc_info.value
    assert [type(e) for e in group.exceptions] == [Boom, KeyError]
    assert "in node 'bad_a', step 1" in group.exceptions[0].__notes__
    assert "in node 'bad_b', step 1" in group.exceptions[1].__notes__


# -- concurrency limits ------------------------------------------------------------------------


class Gauge:
    """Counts tasks inside a region and remembers the most at once."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0

    async def hold(self, seconds: float) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await trio.sleep(seconds)
        finally:
            self.active -= 1


def fan_out_graph(gauge: Gauge, n: int, **node_options: Any) -> CompiledGraph:
    async def work(arg: int) -> dict[str, Any]:
        await gauge.hold(1)
        return {"log": [arg]}

    g = StateGraph(Log).add_node("work", work, **node_options)
    g.add_conditional_edges(START, lambda s: [Send("work", i) for i in range(n)])
    g.add_edge("work", END)
    return g.compile()


async def test_max_concurrency_per_run_is_enforced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    start = trio.current_time()
    final = await fan_out_graph(gauge, 50).ainvoke({}, max_concurrency=3)
    assert gauge.peak == 3
    assert final["log"] == list(range(50))
    assert trio.current_time() - start == math.ceil(50 / 3)


async def test_max_concurrency_per_run_counts_every_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()

    async def node(state: Log) -> None:
        await gauge.hold(1)

    graph = fan(*[(f"n{i}", node) for i in range(10)])
    await graph.ainvoke({}, max_concurrency=4)
    assert gauge.peak == 4


async def test_max_concurrency_per_node_is_enforced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    others = Gauge()

    async def other(arg: int) -> None:
        await others.hold(1)

    g = StateGraph(Log)
    g.add_node("work", fan_out_graph(gauge, 0).builder.nodes["work"].fn, max_concurrency=3)
    g.add_node("other", other)
    g.add_conditional_edges(
        START, lambda s: [Send("work", i) for i in range(50)] + [Send("other", i) for i in range(8)]
    )
    g.add_edge("work", END).add_edge("other", END)
    final = await g.compile().ainvoke({})
    assert gauge.peak == 3
    assert others.peak == 8
    assert final["log"] == list(range(50))


async def test_without_limits_a_fan_out_runs_all_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    await fan_out_graph(gauge, 50).ainvoke({})
    assert gauge.peak == 50


async def test_max_threads_limits_sync_nodes() -> None:
    limit = 3
    arrived = 0
    active = 0
    peak = 0
    all_in = trio.Event()
    gate = trio.Event()

    async def arrive() -> None:
        nonlocal arrived, active, peak
        arrived += 1
        active += 1
        peak = max(peak, active)
        if active == limit:
            all_in.set()
        await gate.wait()
        active -= 1

    def work(arg: int) -> dict[str, Any]:
        trio.from_thread.run(arrive)
        return {"log": [arg]}

    g = StateGraph(Log).add_node("work", work)
    g.add_conditional_edges(START, lambda s: [Send("work", i) for i in range(12)])
    g.add_edge("work", END)
    graph = g.compile()
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await graph.ainvoke({}, max_threads=limit))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await all_in.wait()
        for _ in range(20):
            await trio.testing.wait_all_tasks_blocked()
        assert arrived == limit
        gate.set()
    assert peak == limit
    assert result["log"] == list(range(12))


# -- invoke -----------------------------------------------------------------------------------


def test_invoke_runs_from_sync_code() -> None:
    graph = chain(("a", appender("a")), ("b", appender("b")))
    assert graph.invoke({"log": ["in"]}) == {"log": ["in", "a", "b"]}


def test_invoke_passes_keyword_arguments() -> None:
    with pytest.raises(GraphRecursionError):
        counting_graph().invoke({"count": 0, "value": 3}, recursion_limit=2)


async def test_invoke_inside_a_running_trio_loop_raises_runtime_error() -> None:
    graph = chain(("a", appender("a")))
    with pytest.raises(RuntimeError, match="ainvoke"):
        graph.invoke({})


async def test_ainvoke_returns_the_final_state_as_a_dict() -> None:
    final = await chain(("a", appender("a"))).ainvoke({"value": 1})
    assert final == {"value": 1, "log": ["a"]}
    assert type(final) is dict


async def test_task_start_events_name_distinct_task_ids() -> None:
    graph = fan(("a", appender("a")), ("b", appender("b")))
    events = await collect(graph, {}, modes="tasks")
    ids = [e.task_id for e in events if isinstance(e, TaskStart)]
    assert len(ids) == 2
    assert len(set(ids)) == 2

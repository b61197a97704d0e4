"""The engine agrees with the reference interpreter on random graphs: the same
final state, the same ``Values`` sequence, the same multiset of ``Update``
events (and streamed chunks, and tasks) in every step."""

from __future__ import annotations

import itertools
from typing import Any

from _props import ALL_MODES, assert_matches_reference, run_spec
from hypothesis import given, note, strategies as st
from reference import run_reference

from trigraph import END, START
from trigraph.testing import (
    GraphSpec,
    JoinSpec,
    KeySpec,
    LoopSpec,
    NodeSpec,
    RouterSpec,
    SendSpec,
    WriteSpec,
    delays,
    graphs,
)


@given(trio_seed=st.random_module(), data=st.data(), spec=graphs())
def test_engine_matches_reference(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec
) -> None:
    note(spec.describe())
    trace = run_reference(spec)
    schedule = data.draw(delays(spec), label="delays")
    result = run_spec(spec, schedule, catch=Exception)
    assert_matches_reference(result, trace, ALL_MODES)


@given(spec=graphs(kinds=("sync",), max_nodes=4))
def test_engine_matches_reference_with_sync_nodes_only(spec: GraphSpec) -> None:
    note(spec.describe())
    assert_matches_reference(run_spec(spec), run_reference(spec), ALL_MODES)


# -- the reference itself, on graphs whose answer is worked out by hand ------


def test_reference_applies_writes_in_task_order_not_completion_order() -> None:
    spec = GraphSpec(
        keys=(KeySpec("log", "concat"),),
        nodes=(
            NodeSpec("a", writes=(WriteSpec("log"),)),
            NodeSpec("b", writes=(WriteSpec("log"),)),
        ),
        edges=((START, "b"), (START, "a")),
    )
    trace = run_reference(spec)
    assert trace.tasks == [[("a", trace.tasks[0][0][1]), ("b", trace.tasks[0][1][1])]]
    assert [item.split(".")[0] for item in trace.final["log"]] == ["a", "b"]  # type: ignore[index]
    assert trace.steps == 1


def test_reference_runs_a_join_once_per_completed_set() -> None:
    spec = GraphSpec(
        keys=(KeySpec("n", "add"),),
        nodes=(NodeSpec("a"), NodeSpec("b"), NodeSpec("c"), NodeSpec("j")),
        edges=((START, "a"), (START, "b"), ("a", "c")),
        joins=(JoinSpec(("b", "c"), "j"),),
    )
    trace = run_reference(spec)
    assert [[n for n, _ in step] for step in trace.tasks] == [["a", "b"], ["c"], ["j"]]
    assert trace.join_fires == [(2, 0)]


def test_reference_loop_runs_until_its_counter_reaches_the_bound() -> None:
    spec = GraphSpec(
        keys=(KeySpec("c0", "add"),),
        nodes=(NodeSpec("a", writes=(WriteSpec("c0"),)),),
        edges=((START, "a"),),
        routers=(RouterSpec("a", loop=LoopSpec("c0", 100, "a")),),
    )
    trace = run_reference(spec)
    counts = [v["c0"] for v in trace.values]
    assert counts[0] == 0
    assert counts[-1] >= 100 > counts[-2]
    assert all(b > a for a, b in itertools.pairwise(counts))


def test_reference_puts_sends_after_plain_targets_in_emission_order() -> None:
    spec = GraphSpec(
        keys=(KeySpec("log", "concat"),),
        nodes=(NodeSpec("z"), NodeSpec("m"), NodeSpec("a")),
        edges=((START, "a"), (START, "z")),
        routers=(RouterSpec(START, sends=(SendSpec("m", 2), SendSpec("z", 1))),),
    )
    trace = run_reference(spec)
    assert [n for n, _ in trace.tasks[0]] == ["z", "a", "m", "m", "z"]
    assert [arg["i"] for _, arg in trace.tasks[0][2:]] == [0, 1, 0]


def test_reference_reports_two_plain_writes_in_one_step() -> None:
    spec = GraphSpec(
        keys=(KeySpec("k", "plain"),),
        nodes=(NodeSpec("a", writes=(WriteSpec("k"),)), NodeSpec("b", writes=(WriteSpec("k"),))),
        edges=((START, "a"), (START, "b"), ("a", END)),
    )
    trace = run_reference(spec)
    assert trace.conflict is not None
    assert (trace.conflict.step, trace.conflict.writers) == (1, {"k": ["a", "b"]})
    assert trace.final is None

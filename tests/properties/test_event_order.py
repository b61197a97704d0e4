"""Ordering guarantees of the stream (DESIGN.md "Streaming"), on random graphs
under random delays.

- Per-task order: a task's events arrive in the order it produced them:
  ``TaskStart``, its chunks 0, 1, ..., its ``Update``, ``TaskEnd``.
- Step order: no event of step *s + 1* before the ``Values`` of step *s*; a
  step's ``Update`` events (and every other event of its tasks) before its
  ``Values``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _props import run_spec, top
from hypothesis import given, note, strategies as st

from trigraph.events import Custom, Event, TaskEnd, TaskStart, Update, Values
from trigraph.testing import GraphSpec, delays, graphs


def _position(event: Event, chunks: int) -> int:
    """Where *event* comes in the sequence its task produces."""
    if isinstance(event, TaskStart):
        return 0
    if isinstance(event, Custom):
        return 1 + event.data.index
    if isinstance(event, Update):
        return chunks + 1
    assert isinstance(event, TaskEnd)
    return chunks + 2


def assert_interleaving_of_ordered_copies(positions: Sequence[int], length: int) -> None:
    """*positions* is an interleaving of k copies of ``0, 1, ..., length - 1``,
    each copy in order: every prefix has at least as many ``j`` as ``j + 1``."""
    counts = [0] * length
    for p in positions:
        counts[p] += 1
        assert p == 0 or counts[p] <= counts[p - 1], (
            f"event {p} of a task arrived before event {p - 1} of the same task: {positions}"
        )
    assert len(set(counts)) == 1, f"some task's events are missing: {positions}"


# Subgraph nodes stream nothing at the top level: leave them out, for more
# tasks that do.
@given(
    trio_seed=st.random_module(),
    data=st.data(),
    spec=graphs(max_chunks=4, kinds=("agen", "async", "sync")),
)
def test_each_task_streams_its_events_in_order(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec
) -> None:
    note(spec.describe())
    result = run_spec(spec, data.draw(delays(spec), label="delays"))
    groups: dict[tuple[int, str], list[int]] = {}
    for event in top(result.events):
        if isinstance(event, (TaskStart, Custom, Update, TaskEnd)):
            chunks = spec.node(event.node).chunks
            groups.setdefault((event.step, event.node), []).append(_position(event, chunks))
    for (step, node), positions in groups.items():
        note(f"step {step}, node {node}: {positions}")
        assert_interleaving_of_ordered_copies(positions, spec.node(node).chunks + 3)


_other_modes = st.lists(st.sampled_from(["updates", "custom", "tasks"]), unique=True)


@given(trio_seed=st.random_module(), data=st.data(), spec=graphs(), modes=_other_modes)
def test_events_come_in_step_order(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec, modes: list[str]
) -> None:
    note(spec.describe())
    result = run_spec(spec, data.draw(delays(spec), label="delays"), modes=["values", *modes])
    events = top(result.events)
    values_at = {e.step: i for i, e in enumerate(events) if isinstance(e, Values)}
    assert sorted(values_at) == list(range(len(values_at))), "a Values event is missing"
    assert [e.step for e in events if isinstance(e, Values)] == sorted(values_at)
    for i, event in enumerate(events):
        if isinstance(event, Values):
            continue
        assert values_at[event.step - 1] < i, f"{event} came before Values of the step before"
        assert i < values_at[event.step], f"{event} came after the Values of its own step"

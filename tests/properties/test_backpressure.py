"""Backpressure: with a consumer that sleeps a random (virtual) time between
receives, producers never run ahead of it by more than the stream's buffer
plus the number of tasks producing at once; the run's result is unchanged."""

from __future__ import annotations

from typing import Any

from _props import run_spec, tasks_by_step
from hypothesis import given, note, strategies as st
from reference import run_reference

from trigraph.events import Update
from trigraph.testing import Delays, GraphSpec, delays, graphs

_slow_reader = st.lists(st.sampled_from([0.0, 0.5, 1.0, 4.0]), min_size=1, max_size=4)


@given(
    trio_seed=st.random_module(),
    data=st.data(),
    spec=graphs(max_chunks=6),
    buffer=st.integers(0, 4),
    reader=_slow_reader,
)
def test_producers_never_get_more_than_the_buffer_ahead_of_a_slow_consumer(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec, buffer: int, reader: list[float]
) -> None:
    note(spec.describe())
    nodes = data.draw(delays(spec, consumer=False), label="node delays")
    result = run_spec(spec, Delays(nodes.nodes, consumer=reader), buffer=buffer)
    producing = tasks_by_step(result.events)
    everyone = sum(isinstance(e, Update) for e in result.events)
    for event, ahead in result.ahead:
        # A subgraph's tasks run beside the tasks of their parent's step: for
        # them, count every task of the run.
        tasks = producing[event.step] if event.ns == () else everyone
        assert ahead <= buffer + tasks, (
            f"a task of {event.node} (step {event.step}, ns {event.ns}) went on with {ahead} "
            f"events accepted but not received, with buffer={buffer} and {tasks} tasks"
        )
    assert result.final_state == run_reference(spec).final

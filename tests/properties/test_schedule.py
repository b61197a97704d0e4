"""Schedule independence: whatever the delays (so whatever order the tasks
finish in), a run gives the same final state and the same ``Values`` events,
and each step's ``Update`` events are a permutation of the same multiset."""

from __future__ import annotations

from typing import Any

from _props import run_spec, updates_by_step
from hypothesis import given, note, strategies as st

from trigraph.testing import GraphSpec, delays, graphs


@given(trio_seed=st.random_module(), data=st.data(), spec=graphs())
def test_final_state_and_values_do_not_depend_on_the_schedule(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec
) -> None:
    note(spec.describe())
    first = run_spec(spec, data.draw(delays(spec), label="first delays"))
    second = run_spec(spec, data.draw(delays(spec), label="second delays"))
    assert first.final_state == second.final_state
    assert first.values() == second.values()
    assert updates_by_step(first.events) == updates_by_step(second.events)

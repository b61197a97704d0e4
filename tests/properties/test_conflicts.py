"""``InvalidUpdateError`` is raised exactly when two tasks of one step write a
key without a reducer, as the reference interpreter predicts, naming that
step, the key and its writers; the events before it are those of the
reference."""

from __future__ import annotations

from typing import Any

from _props import ALL_MODES, assert_matches_reference, run_spec
from hypothesis import event, given, note, strategies as st
from reference import run_reference

from trigraph import InvalidUpdateError
from trigraph.testing import GraphSpec, delays, graphs


@given(
    trio_seed=st.random_module(),
    data=st.data(),
    # No subgraphs: a conflict inside one is a node's error, which cancels
    # the step's other tasks, so their events are not predictable.
    spec=graphs(conflicts=True, reducers=("plain",), max_keys=2, kinds=("async", "sync", "agen")),
)
def test_invalid_update_error_exactly_when_a_plain_key_gets_two_writes(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec
) -> None:
    note(spec.describe())
    trace = run_reference(spec)
    result = run_spec(spec, data.draw(delays(spec), label="delays"), catch=InvalidUpdateError)
    assert_matches_reference(result, trace, ALL_MODES)
    conflict = trace.conflict
    event("conflict" if conflict is not None else "no conflict")
    if conflict is None:
        assert result.error is None
        return
    error = result.error
    assert isinstance(error, InvalidUpdateError), f"expected InvalidUpdateError, got {error!r}"
    assert error.step == conflict.step
    assert error.key in conflict.writers
    assert list(error.nodes) == conflict.writers[error.key]
    assert result.final_state is None

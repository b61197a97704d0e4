"""``recursion_limit`` is exact: a run that needs N supersteps (the reference
counts them, in the graph and in each subgraph run, which has the same
limit) succeeds with ``recursion_limit=N`` and raises ``GraphRecursionError``
with ``N - 1``, after running N - 1 steps."""

from __future__ import annotations

from _props import run_spec
from hypothesis import given, note
from reference import run_reference

from trigraph import GraphRecursionError
from trigraph.testing import GraphSpec, graphs


def _leaves(error: BaseException | None) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for e in error.exceptions for leaf in _leaves(e)]
    return [] if error is None else [error]


@given(spec=graphs())
def test_recursion_limit_is_the_exact_number_of_supersteps(spec: GraphSpec) -> None:
    note(spec.describe())
    trace = run_reference(spec)
    # A subgraph runs with its parent's recursion_limit, for its own steps.
    needed = trace.deepest
    note(f"the reference needs {trace.steps} steps, {needed} in its longest (sub)graph run")
    enough = run_spec(spec, modes=("values",), recursion_limit=max(needed, 1))
    assert enough.final_state == trace.final
    if needed >= 2:
        short = run_spec(
            spec,
            modes=("values",),
            recursion_limit=needed - 1,
            catch=(GraphRecursionError, ExceptionGroup),
        )
        # Subgraph nodes that hit the limit in one step fail together: a group.
        assert _leaves(short.error), "the run did not fail"
        assert all(isinstance(e, GraphRecursionError) for e in _leaves(short.error))
        # Only when no subgraph run needs as many steps is it the top-level run
        # that stops (a subgraph that does stops first, inside a parent step).
        if trace.steps == needed and trace.sub_deepest < needed:
            assert short.values() == trace.values[:needed]

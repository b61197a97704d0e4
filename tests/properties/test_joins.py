"""A join edge ``add_edge([a, b], c)`` runs ``c`` exactly once per completed
set of its sources, remembering sources across steps (and loops)."""

from __future__ import annotations

from typing import Any

from _props import run_spec, top
from hypothesis import assume, given, note, strategies as st
from reference import run_reference

from trigraph.events import Update
from trigraph.testing import GraphSpec, JoinSpec, delays, graphs


def _only_fed_by(spec: GraphSpec, join: JoinSpec) -> bool:
    """Nothing but *join* can start its target (so its runs count the firings)."""
    target = join.target
    if any(j is not join and j.target == target for j in spec.joins):
        return False
    if any(b == target for _, b in spec.edges):
        return False
    for r in spec.routers:
        loop_target = r.loop.target if r.loop is not None else None
        if target in (*r.targets, *r.choices, loop_target, *(s.node for s in r.sends)):
            return False
    return not any(target in n.goto or target in {s.node for s in n.sends} for n in spec.nodes)


@given(
    trio_seed=st.random_module(),
    data=st.data(),
    spec=graphs(min_joins=1, min_nodes=3, sends=False),
)
def test_join_fires_once_per_completed_set_of_sources(
    trio_seed: Any, data: st.DataObject, spec: GraphSpec
) -> None:
    joins = [j for j in spec.joins if _only_fed_by(spec, j)]
    assume(joins)
    note(spec.describe())
    result = run_spec(spec, data.draw(delays(spec), label="delays"), modes=("updates",))
    ran: dict[int, list[str]] = {}
    for e in top(result.events):
        if isinstance(e, Update):
            ran.setdefault(e.step, []).append(e.node)
    last = max(ran, default=0)
    fires = run_reference(spec).join_fires
    for join in joins:
        seen: set[str] = set()
        fired_after: set[int] = set()
        for step in range(1, last + 1):
            seen |= set(ran.get(step, ())) & set(join.sources)
            if seen == set(join.sources):
                fired_after.add(step)
                seen = set()
        runs = [step for step in range(1, last + 1) for n in ran.get(step, ()) if n == join.target]
        assert runs == sorted(s + 1 for s in fired_after), (
            f"{join.target} ran in steps {runs}; its sources completed in steps "
            f"{sorted(fired_after)}"
        )
        index = spec.joins.index(join)
        assert fired_after == {step for step, j in fires if j == index}

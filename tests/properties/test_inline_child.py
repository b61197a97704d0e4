"""Running a lone task in the loop's own task changes nothing observable: under
every schedule, a run gives the same final state and the same events (in the
same order, with the same virtual timings) inline as with every task a child
of the run's nursery."""

from __future__ import annotations

from typing import Any

from _props import ALL_MODES, run_spec
from hypothesis import given, note, strategies as st

import trigraph._loop as loop
from trigraph.events import Event, TaskStart
from trigraph.testing import GraphSpec, delays, graphs


def _threads(spec: GraphSpec) -> bool:
    """Whether a node of *spec* (or of its subgraphs) runs in a worker thread,
    whose real time may move where the virtual clock stands when it returns."""
    return any(n.kind == "sync" or (n.subgraph is not None and _threads(n.subgraph))
               for n in spec.nodes)


def _steps(events: tuple[Event, ...]) -> dict[tuple[tuple[str, ...], int], list[Event]]:
    out: dict[tuple[tuple[str, ...], int], list[Event]] = {}
    for e in events:
        out.setdefault((e.ns, e.step), []).append(e)
    return out


def _same_steps(inline: tuple[Event, ...], child: tuple[Event, ...]) -> None:
    """A step that ran one task gives exactly the same events, in order, with
    the same virtual timings; a step of several tasks (child tasks in both
    modes) the same kinds of events from the same nodes, since which task
    finishes first there depends on Trio's scheduling in both modes alike."""
    a, b = _steps(inline), _steps(child)
    assert a.keys() == b.keys()
    for key, events in a.items():
        tasks = {e.task_id for e in events if isinstance(e, TaskStart)}
        if len(tasks) == 1:
            assert events == b[key], key
        else:
            assert sorted((type(e).__name__, getattr(e, "node", "")) for e in events) == sorted(
                (type(e).__name__, getattr(e, "node", "")) for e in b[key]
            ), key


@given(data=st.data(), spec=graphs())
def test_inline_and_child_tasks_give_the_same_run(data: st.DataObject, spec: GraphSpec) -> None:
    note(spec.describe())
    schedule = data.draw(delays(spec), label="delays")
    runs: dict[bool, Any] = {}
    for inline in (True, False):
        loop.INLINE_SINGLE_TASKS = inline
        try:
            runs[inline] = run_spec(spec, schedule, modes=(*ALL_MODES, "messages"))
        finally:
            loop.INLINE_SINGLE_TASKS = True
    inline_run, child_run = runs[True], runs[False]
    assert inline_run.final_state == child_run.final_state
    assert inline_run.values() == child_run.values()
    if not _threads(spec):
        # Virtual time is exact without worker threads.
        _same_steps(inline_run.events, child_run.events)

"""Helpers shared by the property tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from reference import Trace, canonical_update

from trigraph.events import Custom, Event, TaskEnd, TaskStart, Update, Values
from trigraph.testing import Chunk, Delays, GraphSpec, RunResult, run_graph

ALL_MODES = ("values", "updates", "custom", "tasks")


def run_spec(
    spec: GraphSpec,
    delays: Delays | None = None,
    *,
    modes: Sequence[str] = ALL_MODES,
    catch: type[BaseException] | tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> RunResult:
    """Build *spec* and run it on its input with :func:`run_graph`."""
    return run_graph(spec.compile(), spec.input, modes=modes, delays=delays, catch=catch, **kwargs)


def top(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if e.ns == ()]


def updates_by_step(events: Sequence[Event]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {}
    for e in top(events):
        if isinstance(e, Update):
            out.setdefault(e.step, Counter())[canonical_update(e.node, e.update)] += 1
    return out


def chunks_by_step(events: Sequence[Event]) -> dict[int, Counter[Chunk]]:
    out: dict[int, Counter[Chunk]] = {}
    for e in top(events):
        if isinstance(e, Custom):
            out.setdefault(e.step, Counter())[e.data] += 1
    return out


def tasks_by_step(events: Sequence[Event]) -> Counter[int]:
    """How many tasks ran in each step (one ``Update`` per finished task)."""
    return Counter(e.step for e in top(events) if isinstance(e, Update))


def assert_matches_reference(result: RunResult, trace: Trace, modes: Sequence[str]) -> None:
    """The engine's run *result* did what the reference *trace* says, event for event."""
    if "values" in modes:
        assert result.values() == trace.values, "Values events differ from the reference"
    if "updates" in modes:
        got = updates_by_step(result.events)
        want = {s: trace.updates_of(s) for s in range(1, trace.steps + 1) if trace.updates_of(s)}
        assert got == want, "Update events per step differ from the reference"
    if "custom" in modes:
        got_chunks = chunks_by_step(result.events)
        want_chunks = {
            s: trace.chunks_of(s) for s in range(1, trace.steps + 1) if trace.chunks_of(s)
        }
        assert got_chunks == want_chunks, "streamed chunks per step differ from the reference"
    if "tasks" in modes:
        starts = Counter(e.step for e in top(result.events) if isinstance(e, TaskStart))
        ends = Counter(e.step for e in top(result.events) if isinstance(e, TaskEnd))
        want_tasks = Counter({s: len(t) for s, t in enumerate(trace.tasks, 1) if t})
        assert starts == want_tasks
        assert ends == want_tasks
    if trace.conflict is None:
        assert result.error is None, f"the run raised {result.error!r}"
        assert result.final_state == trace.final


def values_steps(events: Sequence[Event]) -> list[int]:
    return [e.step for e in top(events) if isinstance(e, Values)]

"""Clean teardown and resume: a durable run cancelled at random (virtual)
moments, each followed by ``ainvoke(None, thread=...)`` from the last
checkpoint, ends in the same final state as an uninterrupted run, on
``MemoryCheckpointer`` and ``SqliteCheckpointer`` (a temporary file), in
every durability mode, and on ``PostgresCheckpointer`` (a schema of the
session's server) in a test of its own, where a cut lands in the middle of a
query as often as not and must cancel it on the server.

SQLite and PostgreSQL work runs in worker threads; while one runs,
``MockClock`` may jump ahead, which only moves where a cancellation lands."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _props import run_spec
from _stores import drop_schema
from hypothesis import event, given, note, settings, strategies as st
from reference import run_reference

from trigraph import MemoryCheckpointer, PostgresCheckpointer, SqliteCheckpointer
from trigraph.abc import Checkpointer
from trigraph.testing import Delays, GraphSpec, delays, graphs, with_delays


@asynccontextmanager
async def open_store(kind: str, folder: Path) -> AsyncIterator[Checkpointer]:
    if kind == "memory":
        yield MemoryCheckpointer()
        return
    if kind.startswith("postgres:"):  # "postgres:<dsn>": a new schema, dropped after
        dsn, schema = kind.partition(":")[2], f"p_{secrets.token_hex(6)}"
        try:
            async with PostgresCheckpointer(dsn, schema=schema) as pg:
                yield pg
        finally:
            await trio.to_thread.run_sync(drop_schema, dsn, schema)
        return
    async with SqliteCheckpointer(folder / "threads.db") as cp:
        yield cp


async def _has_checkpoint(cp: Checkpointer, thread: str) -> bool:
    return await cp.get(thread, "") is not None


async def _cancel_and_resume(
    spec: GraphSpec,
    schedule: Delays,
    store: str,
    folder: Path,
    durability: str,
    cuts: list[float],
) -> tuple[dict[str, Any], list[str]]:
    log: list[str] = []
    async with open_store(store, folder) as cp:
        graph = with_delays(spec.compile(checkpointer=cp), schedule)
        for cut in cuts:
            started = await _has_checkpoint(cp, "t")
            with trio.move_on_after(cut):
                final = await graph.ainvoke(
                    None if started else spec.input, thread="t", durability=durability
                )
                log.append(f"finished before the cut at {cut}")
                return final, log
            log.append(f"cancelled at {cut} (thread had a checkpoint: {started})")
        started = await _has_checkpoint(cp, "t")
        final = await graph.ainvoke(
            None if started else spec.input, thread="t", durability=durability
        )
        return final, log


def _check(
    data: st.DataObject, spec: GraphSpec, store: str, durability: str, fractions: list[float]
) -> None:
    note(spec.describe())
    drawn = data.draw(delays(spec, consumer=False), label="delays")
    # Every task takes some virtual time, so a cut can land inside a step.
    schedule = Delays({n.name: drawn.nodes.get(n.name) or (0.5,) for n in spec.nodes})
    expected = run_reference(spec).final
    length = run_spec(spec, schedule, modes=()).duration
    cuts = [f * length for f in fractions]
    folder = Path(tempfile.mkdtemp(prefix="trigraph-props-"))
    try:
        final, log = trio.run(
            _cancel_and_resume, spec, schedule, store, folder, durability, cuts,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    note("\n".join(log))
    cancelled = sum(line.startswith("cancelled") for line in log)
    event(f"cancelled {cancelled} times")
    assert final == expected


@given(
    trio_seed=st.random_module(),
    data=st.data(),
    spec=graphs(max_nodes=4),
    store=st.sampled_from(["memory", "sqlite"]),
    durability=st.sampled_from(["sync", "async", "exit"]),
    fractions=st.lists(st.floats(0, 1), min_size=1, max_size=3),
)
def test_resume_after_cancellation_reaches_the_uninterrupted_final_state(
    trio_seed: Any,
    data: st.DataObject,
    spec: GraphSpec,
    store: str,
    durability: str,
    fractions: list[float],
) -> None:
    _check(data, spec, store, durability, fractions)


@pytest.mark.slow
@settings(max_examples=15)
@given(
    trio_seed=st.random_module(),
    data=st.data(),
    spec=graphs(max_nodes=4),
    durability=st.sampled_from(["sync", "async", "exit"]),
    fractions=st.lists(st.floats(0, 1), min_size=1, max_size=3),
)
def test_resume_after_cancellation_on_postgres(
    pg_dsn: str,
    trio_seed: Any,
    data: st.DataObject,
    spec: GraphSpec,
    durability: str,
    fractions: list[float],
) -> None:
    _check(data, spec, f"postgres:{pg_dsn}", durability, fractions)

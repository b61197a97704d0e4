"""The run store on SQLite, in-process: the queue's order, multitask strategies,
leases, fencing, takeover and the event log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

pytest.importorskip("msgspec")
from trigraph.server._store import Busy, LeaseLost, NotFound, RunRecord
from trigraph.server._store_sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "t.db")
    await s.open()
    yield s
    await s.aclose()


def run(rid: str, thread: str = "t", strategy: Any = "enqueue", **kw: Any) -> RunRecord:
    now = time.time()
    return RunRecord(run_id=rid, thread_id=thread, assistant_id="a", graph_id="g",
                     status="pending", created_at=now, updated_at=now, metadata={},
                     kwargs=kw, multitask_strategy=strategy)


async def test_claims_are_fifo_and_one_run_per_thread(store: SqliteStore) -> None:
    for rid, thread in (("r1", "t1"), ("r2", "t1"), ("r3", "t2")):
        await store.create_run(run(rid, thread), if_not_exists="create", after_seconds=0)
    claimed = await store.claim("w", 30, ["g"], 10)
    assert [r.run_id for r in claimed] == ["r1", "r3"]  # r2 waits for r1 (same thread)
    assert await store.claim("w", 30, ["g"], 10) == []
    await store.finish_run("r1", 1, status="success", result=b"{}", frames=[],
                           thread_status="idle", values=None, interrupts=None, delete=False)
    assert [r.run_id for r in await store.claim("w", 30, ["g"], 10)] == ["r2"]
    assert await store.claim("w", 30, ["other-graph"], 10) == []


async def test_a_missing_thread_is_404_unless_created(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        await store.create_run(run("r1", "nope"), if_not_exists="reject", after_seconds=0)
    await store.create_run(run("r1", "nope"), if_not_exists="create", after_seconds=0)
    thread = await store.get_thread("nope")
    assert thread is not None
    assert thread["status"] == "busy"
    assert thread["metadata"] == {"graph_id": "g", "assistant_id": "a"}


async def test_strategies(store: SqliteStore) -> None:
    await store.create_run(run("r1"), if_not_exists="create", after_seconds=0)
    await store.claim("w", 30, ["g"], 1)
    await store.create_run(run("r2"), if_not_exists="create", after_seconds=0)
    with pytest.raises(Busy):
        await store.create_run(run("r3", strategy="reject"), if_not_exists="create",
                               after_seconds=0)
    cancelled = await store.create_run(run("r4", strategy="interrupt"),
                                       if_not_exists="create", after_seconds=0)
    assert sorted(cancelled) == ["r1", "r2"]
    r1, r2 = await store.get_run("t", "r1"), await store.get_run("t", "r2")
    assert r1 is not None
    assert r2 is not None
    assert (r1.status, r1.cancel) == ("running", "interrupt")  # the worker stops it
    assert r2.status == "interrupted"  # a pending run just ends
    await store.create_run(run("r5", strategy="rollback"), if_not_exists="create",
                           after_seconds=0)
    assert await store.get_run("t", "r4") is None  # pending + rollback: gone


async def test_writes_are_fenced_by_attempt(store: SqliteStore) -> None:
    await store.create_run(run("r1"), if_not_exists="create", after_seconds=0)
    (_claimed,) = await store.claim("w1", 0.0, ["g"], 1)  # a lease that lapsed at once
    await store.begin("r1", 1, "", [("metadata", b"{}")])
    await trio.sleep(0.01)
    (again,) = await store.claim("w2", 30, ["g"], 1)  # reaped and taken over
    assert again.attempt == 2
    assert again.head == ""  # the first attempt's head is kept
    with pytest.raises(LeaseLost):
        await store.append_events("r1", 1, [("custom", b"1")])
    with pytest.raises(LeaseLost):
        await store.finish_run("r1", 1, status="success", result=b"{}", frames=[],
                               thread_status="idle", values=None, interrupts=None,
                               delete=False)
    assert await store.heartbeat("w1", {"r1": 1}, 30) == {}
    assert await store.heartbeat("w2", {"r1": 2}, 30) == {"r1": None}
    await store.begin("r1", 2, "", [("metadata", b'{"attempt":2}')])
    rows, status = await store.read_events("r1", 0, 100)
    assert [(r.seq, r.attempt) for r in rows] == [(1, 1), (2, 2)]
    assert status == "running"


async def test_events_are_read_after_a_cursor_in_order(store: SqliteStore) -> None:
    await store.create_run(run("r1"), if_not_exists="create", after_seconds=0)
    await store.claim("w", 30, ["g"], 1)
    await store.begin("r1", 1, "", [("metadata", b"{}")])
    last = await store.append_events("r1", 1, [("custom", b"%d" % i) for i in range(10)])
    assert last == 11
    rows, _ = await store.read_events("r1", 4, 3)
    assert [(r.seq, r.data) for r in rows] == [(5, b"3"), (6, b"4"), (7, b"5")]
    await store.finish_run("r1", 1, status="success", result=b"{}", frames=[("end", b"0")],
                           thread_status="idle", values=None, interrupts=None, delete=False)
    rows, status = await store.read_events("r1", 11, 100)
    assert [r.seq for r in rows] == [12]
    assert status == "success"


async def test_after_seconds_delays_the_claim(store: SqliteStore) -> None:
    await store.create_run(run("r1"), if_not_exists="create", after_seconds=0.2)
    assert await store.claim("w", 30, ["g"], 1) == []
    await trio.sleep(0.25)
    assert len(await store.claim("w", 30, ["g"], 1)) == 1


async def test_cancelling_a_pending_run_settles_the_thread(store: SqliteStore) -> None:
    await store.create_thread("t", {}, "raise")
    await store.create_run(run("r1"), if_not_exists="reject", after_seconds=60)
    assert (await store.get_thread("t") or {})["status"] == "busy"
    assert await store.cancel_runs("t", None, "interrupt") == ["r1"]
    assert (await store.get_thread("t") or {})["status"] == "idle"
    await store.delete_thread("t")
    assert await store.get_thread("t") is None

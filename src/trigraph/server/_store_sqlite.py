"""The run store on SQLite: the same file as the checkpoints.

Standard-library ``sqlite3`` on its own connection, driven from one worker
thread; every write is one ``BEGIN IMMEDIATE`` transaction, so the fence
check and the write it guards happen together. Timestamps are this
machine's clock (``time.time()``), which every process on one machine
shares. Wake-ups reach this process's waiters at once through the hub;
other processes on the same file see changes by polling (``poll``
seconds), which is why one machine with many processes is served, but
slowly: PostgreSQL is the store for many processes.

This module is longer than most: it is the whole store protocol (threads, the
queue, leases, fencing, events) in one class, whose statements must be read
together to see that they keep the invariants above.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import trio

from .._worker import WorkerThread
from ._sqlite_io import LockedCheckpointer as LockedCheckpointer
from ._store import (
    ACTIVE,
    Busy,
    Conflict,
    EventRow,
    Hub,
    LeaseLost,
    NotFound,
    RunRecord,
)

__all__ = ["LockedCheckpointer", "SqliteStore"]

T = TypeVar("T")
MAX_ATTEMPTS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trigraph_server_threads (
    thread_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state_updated_at REAL NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    rest_status TEXT NOT NULL DEFAULT 'idle',
    "values" BLOB,
    interrupts BLOB,
    temporary INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS trigraph_server_runs (
    ord INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL,
    assistant_id TEXT NOT NULL,
    graph_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    not_before REAL NOT NULL,
    metadata TEXT NOT NULL,
    kwargs BLOB NOT NULL,
    multitask_strategy TEXT NOT NULL,
    temporary INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    head TEXT,
    cancel TEXT,
    result BLOB,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trigraph_server_runs_thread
    ON trigraph_server_runs (thread_id, status);
CREATE INDEX IF NOT EXISTS trigraph_server_runs_pending
    ON trigraph_server_runs (status, ord);
CREATE TABLE IF NOT EXISTS trigraph_server_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    event TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

_RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, graph_id, status, created_at, updated_at, metadata, "
    "kwargs, multitask_strategy, temporary, attempt, head, result, cancel"
)


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0], thread_id=row[1], assistant_id=row[2], graph_id=row[3],
        status=row[4], created_at=row[5], updated_at=row[6],
        metadata=orjson.loads(row[7]), kwargs=orjson.loads(row[8]),
        multitask_strategy=row[9], temporary=bool(row[10]), attempt=row[11],
        head=row[12], result=None if row[13] is None else bytes(row[13]), cancel=row[14],
    )


_THREAD_COLUMNS = (
    'thread_id, created_at, updated_at, state_updated_at, metadata, status, "values", '
    "interrupts, temporary"
)


def _thread(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "thread_id": row[0], "created_at": row[1], "updated_at": row[2],
        "state_updated_at": row[3], "metadata": orjson.loads(row[4]), "status": row[5],
        "values": None if row[6] is None else orjson.loads(row[6]),
        "interrupts": {} if row[7] is None else orjson.loads(row[7]),
        "temporary": bool(row[8]),
    }


def matches(data: Any, wanted: dict[str, Any] | None) -> bool:
    """Whether every key of *wanted* is in *data* with an equal value."""
    if not wanted:
        return True
    if not isinstance(data, dict):
        return False
    return all(k in data and data[k] == v for k, v in wanted.items())


class SqliteStore:
    """Threads, runs and events in a SQLite file (see the module docstring).

    Cancellation:
      Every method is a checkpoint. A write under way in the worker thread
      is finished (committed whole) before the cancellation is delivered.
    """

    cross_process = False

    def __init__(self, path: str | os.PathLike[str], *, poll: float = 0.2) -> None:
        self.path = Path(path)
        self.hub = Hub()
        self.poll = poll
        self._conn: sqlite3.Connection | None = None
        self._thread = WorkerThread(f"run store {self.path.name} (writes)")
        self._reader: sqlite3.Connection | None = None
        self._reading = WorkerThread(f"run store {self.path.name} (reads)")
        """Reads run on a connection and thread of their own: a reader (a
        stream, a wait) never queues behind a big write (WAL lets both go)."""
        self._closed = False
        self.write_lock = trio.Lock()
        """Held by every write of this store and of :class:`LockedCheckpointer`:
        two connections of one process never wait on SQLite's busy handler
        (which sleeps in steps of milliseconds) for each other."""

    async def open(self) -> None:
        await self._do(lambda conn: None)

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the run store is closed")
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _connect_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            self._connect()  # the schema exists before anything reads it
            self._reader = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                           isolation_level=None)
        return self._reader

    async def _do(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        def read() -> T:
            if self._closed:
                raise RuntimeError("the run store is closed")
            return fn(self._connect_reader())

        def work() -> T:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        if not write:
            return await self._reading.run(read)
        async with self.write_lock:
            return await self._thread.run(work)

    async def aclose(self) -> None:
        def work() -> None:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        def close_reader() -> None:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        with trio.CancelScope(shield=True):
            await self._reading.run(close_reader)
            await self._thread.run(work)
        self._reading.stop()
        self._thread.stop()

    # -- threads ------------------------------------------------------------

    async def create_thread(
        self, thread_id: str, metadata: dict[str, Any], if_exists: str, *, temporary: bool = False
    ) -> dict[str, Any]:
        now = time.time()

        def work(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM trigraph_server_threads WHERE thread_id=?",
                (thread_id,),
            ).fetchone()
            if row is not None:
                if if_exists == "do_nothing":
                    return _thread(row)
                raise Conflict(f"Thread {thread_id} already exists")
            conn.execute(
                "INSERT INTO trigraph_server_threads (thread_id, created_at, updated_at, "
                "state_updated_at, metadata, temporary) VALUES (?,?,?,?,?,?)",
                (thread_id, now, now, now, orjson.dumps(metadata).decode(), int(temporary)),
            )
            return _thread(conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM trigraph_server_threads WHERE thread_id=?",
                (thread_id,),
            ).fetchone())

        return await self._do(work, write=True)

    async def get_thread(self, thread_id: str) -> dict[str, Any] | None:
        row = await self._do(lambda conn: conn.execute(
            f"SELECT {_THREAD_COLUMNS} FROM trigraph_server_threads WHERE thread_id=?",
            (thread_id,),
        ).fetchone())
        return None if row is None else _thread(row)

    def _filtered(
        self, conn: sqlite3.Connection, metadata: dict[str, Any] | None, status: str | None,
        ids: list[str] | None, values: dict[str, Any] | None, order: str,
    ) -> list[dict[str, Any]]:
        where, params = ["temporary=0"], []
        if status is not None:
            where.append("status=?")
            params.append(status)
        rows = conn.execute(
            f"SELECT {_THREAD_COLUMNS} FROM trigraph_server_threads WHERE {' AND '.join(where)} "
            f"ORDER BY {order}", params,
        ).fetchall()
        out = [_thread(r) for r in rows]
        if ids is not None:
            wanted = set(ids)
            out = [t for t in out if t["thread_id"] in wanted]
        return [t for t in out
                if matches(t["metadata"], metadata) and matches(t["values"], values)]

    async def search_threads(
        self, *, metadata: dict[str, Any] | None, status: str | None, ids: list[str] | None,
        limit: int, offset: int, sort_by: str, sort_order: str,
        values: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order = f"{sort_by} {'ASC' if sort_order == 'asc' else 'DESC'}, rowid"
        rows = await self._do(
            lambda conn: self._filtered(conn, metadata, status, ids, values, order))
        return rows[offset:offset + limit]

    async def count_threads(
        self, *, metadata: dict[str, Any] | None, status: str | None,
        values: dict[str, Any] | None = None,
    ) -> int:
        rows = await self._do(
            lambda conn: self._filtered(conn, metadata, status, None, values, "rowid"))
        return len(rows)

    async def update_thread(
        self, thread_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        now = time.time()

        def work(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT metadata FROM trigraph_server_threads WHERE thread_id=?",
                               (thread_id,)).fetchone()
            if row is None:
                return None
            merged = {**orjson.loads(row[0]), **metadata}
            conn.execute(
                "UPDATE trigraph_server_threads SET metadata=?, updated_at=? WHERE thread_id=?",
                (orjson.dumps(merged).decode(), now, thread_id),
            )
            return _thread(conn.execute(
                f"SELECT {_THREAD_COLUMNS} FROM trigraph_server_threads WHERE thread_id=?",
                (thread_id,),
            ).fetchone())

        return await self._do(work, write=True)

    async def delete_thread(self, thread_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM trigraph_server_threads WHERE thread_id=?",
                            (thread_id,)).fetchone() is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            active = conn.execute(
                "SELECT 1 FROM trigraph_server_runs WHERE thread_id=? AND status IN "
                "('pending','running')", (thread_id,)).fetchone()
            if active is not None:
                raise Busy(f"Thread {thread_id} has a run in progress; cancel it first")
            conn.execute("DELETE FROM trigraph_server_events WHERE run_id IN "
                         "(SELECT run_id FROM trigraph_server_runs WHERE thread_id=?)",
                         (thread_id,))
            conn.execute("DELETE FROM trigraph_server_runs WHERE thread_id=?", (thread_id,))
            conn.execute("DELETE FROM trigraph_server_threads WHERE thread_id=?", (thread_id,))

        await self._do(work, write=True)

    async def set_thread_state(
        self, thread_id: str, values: bytes | None, interrupts: bytes | None, status: str | None
    ) -> None:
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                'UPDATE trigraph_server_threads SET "values"=?, interrupts=?, updated_at=?, '
                "state_updated_at=?, rest_status=COALESCE(?, rest_status), "
                "status=CASE WHEN status='busy' THEN status ELSE COALESCE(?, status) END "
                "WHERE thread_id=?",
                (values, interrupts, now, now, status, status, thread_id),
            )

        await self._do(work, write=True)

    # -- runs: the API side ---------------------------------------------------

    async def create_run(
        self, run: RunRecord, *, if_not_exists: str, after_seconds: float
    ) -> list[str]:
        """Queue *run*; return the ids of runs its multitask strategy cancelled."""
        now = time.time()

        def work(conn: sqlite3.Connection) -> list[str]:
            thread = conn.execute(
                "SELECT 1 FROM trigraph_server_threads WHERE thread_id=?", (run.thread_id,)
            ).fetchone()
            if thread is None:
                if if_not_exists != "create":
                    raise NotFound(f"Thread {run.thread_id} not found")
                conn.execute(
                    "INSERT INTO trigraph_server_threads (thread_id, created_at, updated_at, "
                    "state_updated_at, metadata, temporary) VALUES (?,?,?,?,?,?)",
                    (run.thread_id, now, now, now, "{}", int(run.temporary)),
                )
            inflight = conn.execute(
                "SELECT run_id, status FROM trigraph_server_runs WHERE thread_id=? AND "
                "status IN ('pending','running')", (run.thread_id,),
            ).fetchall()
            strategy = run.multitask_strategy
            if inflight and strategy == "reject":
                raise Busy("Thread is already running a task. Wait for it to finish or "
                           "choose a different multitask strategy.")
            cancelled: list[str] = []
            if inflight and strategy in ("interrupt", "rollback"):
                ids = [r[0] for r in inflight]
                cancelled = self._cancel(conn, ids, strategy, now)
            conn.execute(
                "INSERT INTO trigraph_server_runs (run_id, thread_id, assistant_id, graph_id, "
                "status, created_at, updated_at, not_before, metadata, kwargs, "
                "multitask_strategy, temporary) VALUES (?,?,?,?,'pending',?,?,?,?,?,?,?)",
                (run.run_id, run.thread_id, run.assistant_id, run.graph_id, now, now,
                 now + after_seconds, orjson.dumps(run.metadata).decode(),
                 orjson.dumps(run.kwargs), strategy, int(run.temporary)),
            )
            conn.execute(
                "UPDATE trigraph_server_threads SET status='busy', updated_at=?, metadata="
                "CASE WHEN json_extract(metadata, '$.graph_id') IS NULL THEN json_set("
                "metadata, '$.graph_id', ?, '$.assistant_id', ?) ELSE metadata END "
                "WHERE thread_id=?", (now, run.graph_id, run.assistant_id, run.thread_id))
            return cancelled

        cancelled = await self._do(work, write=True)
        for rid in cancelled:
            self.hub.notify(f"cancel:{rid}")
            self.hub.notify(f"events:{rid}")
            self.hub.notify(f"done:{rid}")
        self.hub.notify("runs")
        return cancelled

    def _cancel(
        self, conn: sqlite3.Connection, ids: list[str], action: str, now: float
    ) -> list[str]:
        """Cancel runs *ids*: pending ones end now, running ones are flagged."""
        done: list[str] = []
        for rid in ids:
            row = conn.execute(
                "SELECT status, thread_id FROM trigraph_server_runs WHERE run_id=?", (rid,)
            ).fetchone()
            if row is None or row[0] not in ACTIVE:
                continue
            if row[0] == "pending":
                if action == "rollback":
                    conn.execute("DELETE FROM trigraph_server_runs WHERE run_id=?", (rid,))
                else:
                    conn.execute(
                        "UPDATE trigraph_server_runs SET status='interrupted', updated_at=? "
                        "WHERE run_id=?", (now, rid))
                self._settle_thread(conn, row[1], now)
            else:
                conn.execute("UPDATE trigraph_server_runs SET cancel=? WHERE run_id=?",
                             (action, rid))
            done.append(rid)
        return done

    @staticmethod
    def _settle_thread(conn: sqlite3.Connection, thread_id: str, now: float) -> None:
        """The thread is busy while it has a pending or running run, else its
        status after its last run."""
        conn.execute(
            "UPDATE trigraph_server_threads SET updated_at=:now, status=CASE WHEN EXISTS ("
            "SELECT 1 FROM trigraph_server_runs WHERE thread_id=:t AND status IN "
            "('pending','running')) THEN 'busy' ELSE rest_status END WHERE thread_id=:t",
            {"now": now, "t": thread_id},
        )

    async def get_run(self, thread_id: str | None, run_id: str) -> RunRecord | None:
        def work(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM trigraph_server_runs WHERE run_id=?", (run_id,)
            ).fetchone()
            if row is None or (thread_id is not None and row[1] != thread_id):
                return None
            return _run(row)

        return await self._do(work)

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: str | None
    ) -> list[RunRecord]:
        where, params = "thread_id=?", [thread_id]
        if status is not None:
            where += " AND status=?"
            params.append(status)
        rows = await self._do(lambda conn: conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM trigraph_server_runs WHERE {where} "
            "ORDER BY ord DESC LIMIT ? OFFSET ?", (*params, limit, offset),
        ).fetchall())
        return [_run(r) for r in rows]

    async def delete_run(self, thread_id: str, run_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT status, thread_id FROM trigraph_server_runs "
                               "WHERE run_id=?", (run_id,)).fetchone()
            if row is None or row[1] != thread_id:
                raise NotFound(f"Run {run_id} not found")
            if row[0] in ACTIVE:
                raise Busy(f"Run {run_id} is {row[0]}; cancel it before deleting it")
            conn.execute("DELETE FROM trigraph_server_events WHERE run_id=?", (run_id,))
            conn.execute("DELETE FROM trigraph_server_runs WHERE run_id=?", (run_id,))

        await self._do(work, write=True)

    async def cancel_runs(
        self, thread_id: str | None, run_ids: list[str] | None, action: str,
        *, status: str | None = None,
    ) -> list[str]:
        now = time.time()

        def work(conn: sqlite3.Connection) -> list[str]:
            where, params = ["status IN ('pending','running')"], []
            if thread_id is not None:
                where.append("thread_id=?")
                params.append(thread_id)
            if status is not None:
                where.append("status=?")
                params.append(status)
            rows = conn.execute(
                f"SELECT run_id FROM trigraph_server_runs WHERE {' AND '.join(where)}", params
            ).fetchall()
            ids = [r[0] for r in rows]
            if run_ids is not None:
                wanted = set(run_ids)
                ids = [i for i in ids if i in wanted]
            return self._cancel(conn, ids, action, now)

        done = await self._do(work, write=True)
        for rid in done:
            self.hub.notify(f"cancel:{rid}")
            self.hub.notify(f"events:{rid}")
            self.hub.notify(f"done:{rid}")
        if done:
            self.hub.notify("runs")
        return done

    async def read_events(
        self, run_id: str, after: int, limit: int
    ) -> tuple[list[EventRow], str | None]:
        def work(conn: sqlite3.Connection) -> tuple[list[EventRow], str | None]:
            rows = conn.execute(
                "SELECT seq, attempt, event, data FROM trigraph_server_events "
                "WHERE run_id=? AND seq>? ORDER BY seq LIMIT ?", (run_id, after, limit),
            ).fetchall()
            status = conn.execute("SELECT status FROM trigraph_server_runs WHERE run_id=?",
                                  (run_id,)).fetchone()
            return ([EventRow(r[0], r[1], r[2], bytes(r[3])) for r in rows],
                    None if status is None else status[0])

        return await self._do(work)

    # -- runs: the worker side ------------------------------------------------

    async def claim(
        self, worker: str, lease: float, graphs: list[str], limit: int = 1
    ) -> list[RunRecord]:
        """Claim up to *limit* of the oldest claimable runs of *graphs*."""
        now = time.time()
        served = ",".join("?" * len(graphs))

        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            self._reap(conn, now)
            rows = conn.execute(
                "UPDATE trigraph_server_runs SET status='running', attempt=attempt+1, "
                "worker=?, lease_until=?, updated_at=? WHERE ord IN ("
                "SELECT r.ord FROM trigraph_server_runs r WHERE r.status='pending' "
                f"AND r.not_before<=? AND r.graph_id IN ({served}) AND NOT EXISTS ("
                "SELECT 1 FROM trigraph_server_runs o "
                "WHERE o.thread_id=r.thread_id AND (o.status='running' OR "
                "(o.status='pending' AND o.ord<r.ord))) ORDER BY r.ord LIMIT ?) "
                f"RETURNING {_RUN_COLUMNS}",
                (worker, now + lease, now, now, *graphs, limit),
            ).fetchall()
            return [_run(r) for r in rows]

        return await self._do(work, write=True)

    def _reap(self, conn: sqlite3.Connection, now: float) -> None:
        """Put runs whose lease lapsed back in the queue (or fail them after
        MAX_ATTEMPTS)."""
        rows = conn.execute(
            "SELECT run_id, attempt, thread_id FROM trigraph_server_runs "
            "WHERE status='running' AND lease_until<?", (now,)).fetchall()
        for rid, attempt, thread_id in rows:
            if attempt < MAX_ATTEMPTS:
                conn.execute("UPDATE trigraph_server_runs SET status='pending', worker=NULL, "
                             "lease_until=NULL, not_before=? WHERE run_id=?", (now, rid))
                continue
            error = orjson.dumps({"error": "RunLostError", "message": (
                f"run {rid} was taken over {attempt} times (its worker stopped renewing "
                "its lease each time); it is given up")})
            seq = conn.execute("UPDATE trigraph_server_runs SET status='error', result=?, "
                               "updated_at=?, seq=seq+1 WHERE run_id=? RETURNING seq",
                               (orjson.dumps({"__error__": orjson.loads(error)}), now, rid),
                               ).fetchone()[0]
            conn.execute("INSERT INTO trigraph_server_events VALUES (?,?,?,?,?)",
                         (rid, seq, attempt, "error", error))
            conn.execute("UPDATE trigraph_server_threads SET rest_status='error' "
                         "WHERE thread_id=?", (thread_id,))
            self._settle_thread(conn, thread_id, now)

    async def begin(
        self, run_id: str, attempt: int, head: str, frames: list[tuple[str, bytes]]
    ) -> None:
        """Record the thread's head at the run's first claim (kept on later
        attempts) and append the attempt's first events, fenced."""

        def work(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE trigraph_server_runs SET head=COALESCE(head, ?) "
                               "WHERE run_id=? AND attempt=? AND status='running'",
                               (head, run_id, attempt))
            if cur.rowcount != 1:
                raise LeaseLost(run_id, attempt)
            self._fenced_append(conn, run_id, attempt, frames)

        await self._do(work, write=True)
        self.hub.notify(f"events:{run_id}")

    async def heartbeat(
        self, worker: str, held: dict[str, int], lease: float
    ) -> dict[str, str | None]:
        """Renew the leases of *held* runs (id -> attempt); return the cancel
        request of each run still held (a run missing from it was lost)."""
        now = time.time()

        def work(conn: sqlite3.Connection) -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for rid, attempt in held.items():
                row = conn.execute(
                    "UPDATE trigraph_server_runs SET lease_until=? WHERE run_id=? AND "
                    "attempt=? AND worker=? AND status='running' RETURNING cancel",
                    (now + lease, rid, attempt, worker)).fetchone()
                if row is not None:
                    out[rid] = row[0]
            return out

        return await self._do(work, write=True)

    async def requeue(self, run_id: str, attempt: int) -> None:
        """Give a run this worker holds back to the queue (the worker stops)."""
        now = time.time()
        await self._do(lambda conn: conn.execute(
            "UPDATE trigraph_server_runs SET status='pending', worker=NULL, lease_until=NULL, "
            "not_before=? WHERE run_id=? AND attempt=? AND status='running'",
            (now, run_id, attempt)), write=True)
        self.hub.notify("runs")

    def _fenced_append(
        self, conn: sqlite3.Connection, run_id: str, attempt: int,
        frames: list[tuple[str, bytes]],
    ) -> int:
        row = conn.execute(
            "UPDATE trigraph_server_runs SET seq=seq+? WHERE run_id=? AND attempt=? AND "
            "status='running' RETURNING seq", (len(frames), run_id, attempt)).fetchone()
        if row is None:
            raise LeaseLost(run_id, attempt)
        last: int = row[0]
        first = last - len(frames) + 1
        conn.executemany(
            "INSERT INTO trigraph_server_events VALUES (?,?,?,?,?)",
            [(run_id, first + i, attempt, name, data) for i, (name, data) in enumerate(frames)],
        )
        return last

    async def append_events(
        self, run_id: str, attempt: int, frames: list[tuple[str, bytes]]
    ) -> int:
        last = await self._do(lambda conn: self._fenced_append(conn, run_id, attempt, frames),
                              write=True)
        self.hub.notify(f"events:{run_id}")
        return last

    async def finish_run(
        self, run_id: str, attempt: int, *, status: str, result: bytes | None,
        frames: list[tuple[str, bytes]], thread_status: str, values: bytes | None,
        interrupts: bytes | None, delete: bool, forget: bool = False,
    ) -> None:
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            if frames:
                self._fenced_append(conn, run_id, attempt, frames)
            row = conn.execute(
                "UPDATE trigraph_server_runs SET status=?, result=?, updated_at=?, worker=NULL, "
                "lease_until=NULL WHERE run_id=? AND attempt=? AND status='running' "
                "RETURNING thread_id", (status, result, now, run_id, attempt)).fetchone()
            if row is None:
                raise LeaseLost(run_id, attempt)
            thread_id = row[0]
            if forget:  # a rolled-back run leaves no trace
                conn.execute("DELETE FROM trigraph_server_events WHERE run_id=?", (run_id,))
                conn.execute("DELETE FROM trigraph_server_runs WHERE run_id=?", (run_id,))
            if delete:
                conn.execute("DELETE FROM trigraph_server_threads WHERE thread_id=?",
                             (thread_id,))
                return
            if values is not None:
                conn.execute(
                    'UPDATE trigraph_server_threads SET "values"=?, interrupts=?, '
                    "state_updated_at=? WHERE thread_id=?",
                    (values, interrupts, now, thread_id))
            conn.execute("UPDATE trigraph_server_threads SET rest_status=? WHERE thread_id=?",
                         (thread_status, thread_id))
            self._settle_thread(conn, thread_id, now)

        await self._do(work, write=True)
        self.hub.notify(f"events:{run_id}")
        self.hub.notify(f"done:{run_id}")
        self.hub.notify("runs")

    async def changes(
        self, run_ids: list[str], claimable: bool
    ) -> tuple[dict[str, tuple[str, int, str | None]], bool]:
        """(status, last event id, cancel request) of *run_ids*, and whether a
        run is ready to claim (when *claimable*): one read for every waiter."""
        now = time.time()

        def work(conn: sqlite3.Connection) -> tuple[dict[str, tuple[str, int, str | None]], bool]:
            states: dict[str, tuple[str, int, str | None]] = {}
            for i in range(0, len(run_ids), 500):
                part = run_ids[i:i + 500]
                rows = conn.execute(
                    "SELECT run_id, status, seq, cancel FROM trigraph_server_runs WHERE "
                    f"run_id IN ({','.join('?' * len(part))})", part).fetchall()
                states.update({r[0]: (r[1], r[2], r[3]) for r in rows})
            row = conn.execute(
                "SELECT 1 FROM trigraph_server_runs WHERE (status='pending' AND not_before<=?) "
                "OR (status='running' AND lease_until<?) LIMIT 1", (now, now)).fetchone()
            ready = claimable and row is not None
            return states, ready

        return await self._do(work)

    async def services(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Nothing runs in the background for SQLite (waiters of other
        processes poll: see :func:`~trigraph.server._store.watch`)."""
        task_status.started()
        await trio.sleep_forever()

    async def sweep(self, keep: float) -> int:
        """Forget finished runs of temporary threads, and the events of every
        run finished more than *keep* seconds ago; return how many runs."""
        cutoff = time.time() - keep

        def work(conn: sqlite3.Connection) -> int:
            old = "status NOT IN ('pending','running') AND updated_at<?"
            conn.execute("DELETE FROM trigraph_server_events WHERE run_id IN (SELECT run_id "
                         f"FROM trigraph_server_runs WHERE {old})", (cutoff,))
            cur = conn.execute(f"DELETE FROM trigraph_server_runs WHERE temporary=1 AND {old}",
                               (cutoff,))
            return cur.rowcount

        return await self._do(work, write=True)


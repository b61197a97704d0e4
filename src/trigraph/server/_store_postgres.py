"""The run store on PostgreSQL: threads, the queue and events for many processes.

The tables live beside the checkpoints, in the same PostgreSQL schema, as the
``server`` component of the schema's versioned migrations. Every method is
one transaction in one worker-thread hop (``trigraph.postgres._db``), its
cancellation reaching the server. Times are the server's clock, so leases
mean the same on every machine.

One run per thread: the claim skips threads with a running run or an earlier
pending one, and a unique index on ``(thread_id) WHERE status='running'``
turns the remaining race between two claimers into a constraint violation,
retried. Wake-ups cross processes by ``NOTIFY trigraph_server`` with
``kind:run_id`` payloads, sent after the writing transaction commits
(coalesced, never inside it) and heard by one ``LISTEN`` connection per
process; :func:`~trigraph.server._store.watch` polls as the fallback.

This module is longer than most: it is the whole store protocol (threads, the
queue, leases, fencing, events) in one class, whose statements must be read
together to see that they keep the invariants above.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ._store import ACTIVE, Busy, Conflict, EventRow, Hub, LeaseLost, NotFound, RunRecord
from ._store_sqlite import MAX_ATTEMPTS, matches

if TYPE_CHECKING:
    from trigraph import PostgresCheckpointer
    from trigraph.postgres._db import Database

__all__ = ["PostgresStore", "open_postgres"]

log = logging.getLogger("trigraph.server")
CHANNEL = "trigraph_server"
NOW = "extract(epoch from clock_timestamp())"

MIGRATIONS = (
    """
    CREATE TABLE {schema}.server_threads (
        thread_id text PRIMARY KEY,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        state_updated_at double precision NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        status text NOT NULL DEFAULT 'idle',
        rest_status text NOT NULL DEFAULT 'idle',
        "values" bytea,
        interrupts bytea,
        temporary boolean NOT NULL DEFAULT false
    );
    CREATE TABLE {schema}.server_runs (
        ord bigint GENERATED ALWAYS AS IDENTITY,
        run_id text PRIMARY KEY,
        thread_id text NOT NULL,
        assistant_id text NOT NULL,
        graph_id text NOT NULL,
        status text NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        not_before double precision NOT NULL,
        metadata jsonb NOT NULL,
        kwargs bytea NOT NULL,
        multitask_strategy text NOT NULL,
        temporary boolean NOT NULL DEFAULT false,
        attempt integer NOT NULL DEFAULT 0,
        worker text,
        lease_until double precision,
        head text,
        cancel text,
        result bytea,
        seq bigint NOT NULL DEFAULT 0
    ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);
    CREATE INDEX server_runs_thread ON {schema}.server_runs (thread_id, status);
    CREATE INDEX server_runs_pending ON {schema}.server_runs (ord) WHERE status = 'pending';
    CREATE UNIQUE INDEX server_runs_one_running ON {schema}.server_runs (thread_id)
        WHERE status = 'running';
    CREATE TABLE {schema}.server_events (
        run_id text NOT NULL,
        seq bigint NOT NULL,
        attempt integer NOT NULL,
        event text NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
)
"""The ``server`` component's migrations in the checkpoints' schema."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

_RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, graph_id, status, created_at, updated_at, metadata, "
    "kwargs, multitask_strategy, temporary, attempt, head, result, cancel"
)
_THREAD_COLUMNS = (
    'thread_id, created_at, updated_at, state_updated_at, metadata, status, "values", '
    "interrupts, temporary"
)


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0], thread_id=row[1], assistant_id=row[2], graph_id=row[3],
        status=row[4], created_at=row[5], updated_at=row[6], metadata=row[7],
        kwargs=orjson.loads(row[8]), multitask_strategy=row[9], temporary=bool(row[10]),
        attempt=row[11], head=row[12], result=None if row[13] is None else bytes(row[13]),
        cancel=row[14],
    )


def _thread(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "thread_id": row[0], "created_at": row[1], "updated_at": row[2],
        "state_updated_at": row[3], "metadata": row[4], "status": row[5],
        "values": None if row[6] is None else orjson.loads(row[6]),
        "interrupts": {} if row[7] is None else orjson.loads(row[7]),
        "temporary": bool(row[8]),
    }


def _notify(conn: Any, keys: list[str]) -> None:
    conn.execute("SELECT pg_notify(%s, k) FROM unnest(%s::text[]) AS k", (CHANNEL, keys))


class PostgresStore:
    """Threads, runs and events in PostgreSQL (see the module docstring).

    Cancellation:
      Every method is a checkpoint; a cancelled call cancels its statement
      on the server and waits for it: a write happened whole or not at all.
    """

    cross_process = True

    def __init__(self, db: Database, schema: str, *, poll: float = 1.0) -> None:
        self.db = db
        self.hub = Hub()
        self.poll = poll
        self.schema = schema
        self.q = quote_ident(schema)
        self._outbox: list[str] = []
        self._wake_notifier = trio.Event()

    def _sql(self, text: str) -> str:
        return text.replace("{s}", self.q).replace("{now}", NOW)

    async def _do(self, fn: Any, *args: Any) -> Any:
        return await self.db.run(fn, *args, transaction=True)

    def _announce(self, *keys: str) -> None:
        """Wake waiters here at once, and queue the keys for other processes."""
        for key in keys:
            self.hub.notify(key)
        self._outbox.extend(keys)
        self._wake_notifier.set()

    async def aclose(self) -> None:
        await self.db.aclose()

    # -- cross-process wake-ups ----------------------------------------------

    async def notifier(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                       ) -> None:
        """Send queued wake-ups, one statement at a time: the keys queued while
        one is being sent go together in the next (coalesced, never delayed)."""
        task_status.started()
        while True:
            await self._wake_notifier.wait()
            self._wake_notifier = trio.Event()
            keys, self._outbox = sorted(set(self._outbox)), []
            try:
                await self.db.run(_notify, keys, transaction=False)
            except Exception:
                log.warning("could not notify other processes; they will poll")

    async def listener(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                       ) -> None:
        """Hear other processes' wake-ups on one dedicated connection."""
        started = False
        while True:
            try:
                conn = await self.db.connect()
            except Exception:
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self.poll)
                continue
            try:
                await self.db.run_on(conn, lambda c: c.execute(f"LISTEN {CHANNEL}"))
                if not started:
                    task_status.started()
                    started = True
                for kind in ("runs",):  # anything missed while not listening
                    self.hub.notify(kind)
                while True:
                    for note in list(conn.notifies(timeout=0)):
                        self.hub.notify(note.payload)
                    await trio.lowlevel.wait_readable(conn.fileno())
            except trio.Cancelled:
                raise
            except Exception:
                log.warning("lost the LISTEN connection; reconnecting")
                await trio.sleep(self.poll)
            finally:
                conn.close()

    # -- threads ------------------------------------------------------------

    async def create_thread(
        self, thread_id: str, metadata: dict[str, Any], if_exists: str, *, temporary: bool = False
    ) -> dict[str, Any]:
        def work(conn: Any) -> dict[str, Any]:
            row = conn.execute(self._sql(
                "INSERT INTO {s}.server_threads (thread_id, created_at, updated_at, "
                "state_updated_at, metadata, temporary) VALUES (%s, {now}, {now}, {now}, %s, %s) "
                f"ON CONFLICT (thread_id) DO NOTHING RETURNING {_THREAD_COLUMNS}"),
                (thread_id, orjson.dumps(metadata).decode(), temporary)).fetchone()
            if row is not None:
                return _thread(row)
            if if_exists != "do_nothing":
                raise Conflict(f"Thread {thread_id} already exists")
            return _thread(conn.execute(self._sql(
                f"SELECT {_THREAD_COLUMNS} FROM {{s}}.server_threads WHERE thread_id=%s"),
                (thread_id,)).fetchone())

        result: dict[str, Any] = await self._do(work)
        return result

    async def get_thread(self, thread_id: str) -> dict[str, Any] | None:
        row = await self._do(lambda conn: conn.execute(self._sql(
            f"SELECT {_THREAD_COLUMNS} FROM {{s}}.server_threads WHERE thread_id=%s"),
            (thread_id,)).fetchone())
        return None if row is None else _thread(row)

    async def _filtered(
        self, metadata: dict[str, Any] | None, status: str | None, ids: list[str] | None,
        values: dict[str, Any] | None, order: str, limit: int | None, offset: int,
    ) -> list[dict[str, Any]]:
        where: list[str] = ["NOT temporary"]
        params: list[Any] = []
        if status is not None:
            where.append("status=%s")
            params.append(status)
        if metadata:
            where.append("metadata @> %s::jsonb")
            params.append(orjson.dumps(metadata).decode())
        if ids is not None:
            where.append("thread_id = ANY(%s)")
            params.append(ids)
        page = "" if values or limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = await self._do(lambda conn: conn.execute(self._sql(
            f"SELECT {_THREAD_COLUMNS} FROM {{s}}.server_threads WHERE {' AND '.join(where)} "
            f"ORDER BY {order}{page}"), params).fetchall())
        out = [_thread(r) for r in rows]
        if values:
            out = [t for t in out if matches(t["values"], values)]
            if limit is not None:
                out = out[offset:offset + limit]
        return out

    async def search_threads(
        self, *, metadata: dict[str, Any] | None, status: str | None, ids: list[str] | None,
        limit: int, offset: int, sort_by: str, sort_order: str,
        values: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order = f"{sort_by} {'ASC' if sort_order == 'asc' else 'DESC'}, thread_id"
        return await self._filtered(metadata, status, ids, values, order, limit, offset)

    async def count_threads(
        self, *, metadata: dict[str, Any] | None, status: str | None,
        values: dict[str, Any] | None = None,
    ) -> int:
        return len(await self._filtered(metadata, status, None, values, "thread_id", None, 0))

    async def update_thread(
        self, thread_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        row = await self._do(lambda conn: conn.execute(self._sql(
            "UPDATE {s}.server_threads SET metadata = metadata || %s::jsonb, updated_at={now} "
            f"WHERE thread_id=%s RETURNING {_THREAD_COLUMNS}"),
            (orjson.dumps(metadata).decode(), thread_id)).fetchone())
        return None if row is None else _thread(row)

    async def delete_thread(self, thread_id: str) -> None:
        def work(conn: Any) -> None:
            found = conn.execute(self._sql(
                "SELECT 1 FROM {s}.server_threads WHERE thread_id=%s FOR UPDATE"),
                (thread_id,)).fetchone()
            if found is None:
                raise NotFound(f"Thread with ID {thread_id} not found")
            if conn.execute(self._sql(
                    "SELECT 1 FROM {s}.server_runs WHERE thread_id=%s AND status IN "
                    "('pending','running') LIMIT 1"), (thread_id,)).fetchone() is not None:
                raise Busy(f"Thread {thread_id} has a run in progress; cancel it first")
            conn.execute(self._sql(
                "DELETE FROM {s}.server_events WHERE run_id IN (SELECT run_id FROM "
                "{s}.server_runs WHERE thread_id=%s)"), (thread_id,))
            conn.execute(self._sql("DELETE FROM {s}.server_runs WHERE thread_id=%s"),
                         (thread_id,))
            conn.execute(self._sql("DELETE FROM {s}.server_threads WHERE thread_id=%s"),
                         (thread_id,))

        await self._do(work)

    async def set_thread_state(
        self, thread_id: str, values: bytes | None, interrupts: bytes | None, status: str | None
    ) -> None:
        await self._do(lambda conn: conn.execute(self._sql(
            'UPDATE {s}.server_threads SET "values"=%s, interrupts=%s, updated_at={now}, '
            "state_updated_at={now}, rest_status=COALESCE(%s, rest_status), "
            "status=CASE WHEN status='busy' THEN status ELSE COALESCE(%s, status) END "
            "WHERE thread_id=%s"), (values, interrupts, status, status, thread_id)))

    def _settle(self, conn: Any, thread_id: str) -> None:
        conn.execute(self._sql(
            "UPDATE {s}.server_threads SET updated_at={now}, status=CASE WHEN EXISTS ("
            "SELECT 1 FROM {s}.server_runs WHERE thread_id=%s AND status IN "
            "('pending','running')) THEN 'busy' ELSE rest_status END WHERE thread_id=%s"),
            (thread_id, thread_id))

    # -- runs: the API side ---------------------------------------------------

    async def create_run(
        self, run: RunRecord, *, if_not_exists: str, after_seconds: float
    ) -> list[str]:
        def work(conn: Any) -> list[str]:
            if if_not_exists == "create":
                conn.execute(self._sql(
                    "INSERT INTO {s}.server_threads (thread_id, created_at, updated_at, "
                    "state_updated_at, temporary) VALUES (%s, {now}, {now}, {now}, %s) "
                    "ON CONFLICT (thread_id) DO NOTHING"), (run.thread_id, run.temporary))
            # The thread row's lock orders this run after every earlier one.
            found = conn.execute(self._sql(
                "SELECT 1 FROM {s}.server_threads WHERE thread_id=%s FOR UPDATE"),
                (run.thread_id,)).fetchone()
            if found is None:
                raise NotFound(f"Thread {run.thread_id} not found")
            inflight = [r[0] for r in conn.execute(self._sql(
                "SELECT run_id FROM {s}.server_runs WHERE thread_id=%s AND status IN "
                "('pending','running')"), (run.thread_id,)).fetchall()]
            strategy = run.multitask_strategy
            if inflight and strategy == "reject":
                raise Busy("Thread is already running a task. Wait for it to finish or "
                           "choose a different multitask strategy.")
            cancelled: list[str] = []
            if inflight and strategy in ("interrupt", "rollback"):
                cancelled = self._cancel(conn, inflight, strategy)
            conn.execute(self._sql(
                "INSERT INTO {s}.server_runs (run_id, thread_id, assistant_id, graph_id, "
                "status, created_at, updated_at, not_before, metadata, kwargs, "
                "multitask_strategy, temporary) VALUES (%s, %s, %s, %s, 'pending', {now}, "
                "{now}, {now} + %s, %s, %s, %s, %s)"),
                (run.run_id, run.thread_id, run.assistant_id, run.graph_id, after_seconds,
                 orjson.dumps(run.metadata).decode(), orjson.dumps(run.kwargs), strategy,
                 run.temporary))
            conn.execute(self._sql(
                "UPDATE {s}.server_threads SET status='busy', updated_at={now}, metadata = "
                "CASE WHEN metadata ? 'graph_id' THEN metadata ELSE metadata || "
                "jsonb_build_object('graph_id', %s::text, 'assistant_id', %s::text) END "
                "WHERE thread_id=%s"), (run.graph_id, run.assistant_id, run.thread_id))
            return cancelled

        cancelled: list[str] = await self._do(work)
        keys = [f"{kind}:{rid}" for rid in cancelled for kind in ("cancel", "events", "done")]
        self._announce("runs", *keys)
        return cancelled

    def _cancel(self, conn: Any, ids: list[str], action: str) -> list[str]:
        done: list[str] = []
        for rid in ids:
            row = conn.execute(self._sql(
                "SELECT status, thread_id FROM {s}.server_runs WHERE run_id=%s FOR UPDATE"),
                (rid,)).fetchone()
            if row is None or row[0] not in ACTIVE:
                continue
            if row[0] == "pending":
                if action == "rollback":
                    conn.execute(self._sql("DELETE FROM {s}.server_runs WHERE run_id=%s"),
                                 (rid,))
                else:
                    conn.execute(self._sql(
                        "UPDATE {s}.server_runs SET status='interrupted', updated_at={now} "
                        "WHERE run_id=%s"), (rid,))
                self._settle(conn, row[1])
            else:
                conn.execute(self._sql("UPDATE {s}.server_runs SET cancel=%s WHERE run_id=%s"),
                             (action, rid))
            done.append(rid)
        return done

    async def get_run(self, thread_id: str | None, run_id: str) -> RunRecord | None:
        row = await self._do(lambda conn: conn.execute(self._sql(
            f"SELECT {_RUN_COLUMNS} FROM {{s}}.server_runs WHERE run_id=%s"),
            (run_id,)).fetchone())
        if row is None or (thread_id is not None and row[1] != thread_id):
            return None
        return _run(row)

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: str | None
    ) -> list[RunRecord]:
        where, params = "thread_id=%s", [thread_id]
        if status is not None:
            where += " AND status=%s"
            params.append(status)
        rows = await self._do(lambda conn: conn.execute(self._sql(
            f"SELECT {_RUN_COLUMNS} FROM {{s}}.server_runs WHERE {where} "
            "ORDER BY ord DESC LIMIT %s OFFSET %s"), (*params, limit, offset)).fetchall())
        return [_run(r) for r in rows]

    async def delete_run(self, thread_id: str, run_id: str) -> None:
        def work(conn: Any) -> None:
            row = conn.execute(self._sql(
                "SELECT status, thread_id FROM {s}.server_runs WHERE run_id=%s FOR UPDATE"),
                (run_id,)).fetchone()
            if row is None or row[1] != thread_id:
                raise NotFound(f"Run {run_id} not found")
            if row[0] in ACTIVE:
                raise Busy(f"Run {run_id} is {row[0]}; cancel it before deleting it")
            conn.execute(self._sql("DELETE FROM {s}.server_events WHERE run_id=%s"), (run_id,))
            conn.execute(self._sql("DELETE FROM {s}.server_runs WHERE run_id=%s"), (run_id,))

        await self._do(work)

    async def cancel_runs(
        self, thread_id: str | None, run_ids: list[str] | None, action: str,
        *, status: str | None = None,
    ) -> list[str]:
        def work(conn: Any) -> list[str]:
            where: list[str] = ["status IN ('pending','running')"]
            params: list[Any] = []
            if thread_id is not None:
                where.append("thread_id=%s")
                params.append(thread_id)
            if status is not None:
                where.append("status=%s")
                params.append(status)
            if run_ids is not None:
                where.append("run_id = ANY(%s)")
                params.append(run_ids)
            ids = [r[0] for r in conn.execute(self._sql(
                f"SELECT run_id FROM {{s}}.server_runs WHERE {' AND '.join(where)}"),
                params).fetchall()]
            return self._cancel(conn, ids, action)

        done: list[str] = await self._do(work)
        keys = [f"{kind}:{rid}" for rid in done for kind in ("cancel", "events", "done")]
        if done:
            self._announce("runs", *keys)
        return done

    async def read_events(
        self, run_id: str, after: int, limit: int
    ) -> tuple[list[EventRow], str | None]:
        def work(conn: Any) -> tuple[list[EventRow], str | None]:
            # The status first: events committed before it are all visible after.
            status = conn.execute(self._sql(
                "SELECT status FROM {s}.server_runs WHERE run_id=%s"), (run_id,)).fetchone()
            rows = conn.execute(self._sql(
                "SELECT seq, attempt, event, data FROM {s}.server_events WHERE run_id=%s "
                "AND seq>%s ORDER BY seq LIMIT %s"), (run_id, after, limit)).fetchall()
            return ([EventRow(r[0], r[1], r[2], bytes(r[3])) for r in rows],
                    None if status is None else status[0])

        result: tuple[list[EventRow], str | None] = await self.db.run(work, transaction=False)
        return result

    # -- runs: the worker side ------------------------------------------------

    async def claim(
        self, worker: str, lease: float, graphs: list[str], limit: int = 1
    ) -> list[RunRecord]:
        """Claim up to *limit* of the oldest claimable runs of *graphs*."""

        def work(conn: Any) -> list[RunRecord]:
            self._reap(conn)
            rows = conn.execute(self._sql(
                "UPDATE {s}.server_runs SET status='running', attempt=attempt+1, worker=%s, "
                "lease_until={now} + %s, updated_at={now} WHERE run_id = ANY(ARRAY("
                "SELECT r.run_id FROM {s}.server_runs r WHERE r.status='pending' "
                "AND r.not_before<={now} AND r.graph_id = ANY(%s) AND NOT EXISTS ("
                "SELECT 1 FROM {s}.server_runs o WHERE o.thread_id=r.thread_id AND "
                "(o.status='running' OR (o.status='pending' AND o.ord<r.ord))) "
                "ORDER BY r.ord LIMIT %s FOR UPDATE SKIP LOCKED)) "
                f"RETURNING {_RUN_COLUMNS}"), (worker, lease, graphs, limit)).fetchall()
            return [_run(r) for r in rows]

        try:
            result: list[RunRecord] = await self._do(work)
        except Exception as exc:
            if "server_runs_one_running" in str(exc):  # lost a race for a thread: next time
                return []
            raise
        return result

    def _reap(self, conn: Any) -> None:
        rows = conn.execute(self._sql(
            "UPDATE {s}.server_runs SET status = CASE WHEN attempt >= %s THEN 'error' "
            "ELSE 'pending' END, worker=NULL, lease_until=NULL, not_before={now} "
            "WHERE status='running' AND lease_until < {now} RETURNING run_id, status, "
            "attempt, thread_id"), (MAX_ATTEMPTS,)).fetchall()
        for rid, status, attempt, thread_id in rows:
            if status != "error":
                continue
            error = orjson.dumps({"error": "RunLostError", "message": (
                f"run {rid} was taken over {attempt} times (its worker stopped renewing "
                "its lease each time); it is given up")})
            seq = conn.execute(self._sql(
                "UPDATE {s}.server_runs SET result=%s, updated_at={now}, seq=seq+1 "
                "WHERE run_id=%s RETURNING seq"),
                (b'{"__error__":' + error + b"}", rid)).fetchone()[0]
            conn.execute(self._sql("INSERT INTO {s}.server_events VALUES (%s,%s,%s,%s,%s)"),
                         (rid, seq, attempt, "error", error))
            conn.execute(self._sql(
                "UPDATE {s}.server_threads SET rest_status='error' WHERE thread_id=%s"),
                (thread_id,))
            self._settle(conn, thread_id)

    def _fenced_append(
        self, conn: Any, run_id: str, attempt: int, frames: list[tuple[str, bytes]]
    ) -> int:
        row = conn.execute(self._sql(
            "UPDATE {s}.server_runs SET seq=seq+%s WHERE run_id=%s AND attempt=%s AND "
            "status='running' RETURNING seq"), (len(frames), run_id, attempt)).fetchone()
        if row is None:
            raise LeaseLost(run_id, attempt)
        last = int(row[0])
        first = last - len(frames) + 1
        with conn.cursor() as cur:
            cur.executemany(self._sql("INSERT INTO {s}.server_events VALUES (%s,%s,%s,%s,%s)"),
                            [(run_id, first + i, attempt, name, data)
                             for i, (name, data) in enumerate(frames)])
        return last

    async def begin(
        self, run_id: str, attempt: int, head: str, frames: list[tuple[str, bytes]]
    ) -> None:
        def work(conn: Any) -> None:
            cur = conn.execute(self._sql(
                "UPDATE {s}.server_runs SET head=COALESCE(head, %s) WHERE run_id=%s AND "
                "attempt=%s AND status='running'"), (head, run_id, attempt))
            if cur.rowcount != 1:
                raise LeaseLost(run_id, attempt)
            self._fenced_append(conn, run_id, attempt, frames)

        await self._do(work)
        self._announce(f"events:{run_id}")

    async def heartbeat(
        self, worker: str, held: dict[str, int], lease: float
    ) -> dict[str, str | None]:
        ids, attempts = list(held), [held[rid] for rid in held]
        rows = await self._do(lambda conn: conn.execute(self._sql(
            "UPDATE {s}.server_runs r SET lease_until={now} + %s FROM unnest(%s::text[], "
            "%s::int[]) AS h(run_id, attempt) WHERE r.run_id=h.run_id AND "
            "r.attempt=h.attempt AND r.worker=%s AND r.status='running' "
            "RETURNING r.run_id, r.cancel"), (lease, ids, attempts, worker)).fetchall())
        return {r[0]: r[1] for r in rows}

    async def requeue(self, run_id: str, attempt: int) -> None:
        """Give a run this worker holds back to the queue (the worker stops)."""
        await self._do(lambda conn: conn.execute(self._sql(
            "UPDATE {s}.server_runs SET status='pending', worker=NULL, lease_until=NULL, "
            "not_before={now} WHERE run_id=%s AND attempt=%s AND status='running'"),
            (run_id, attempt)))
        self._announce("runs")

    async def append_events(
        self, run_id: str, attempt: int, frames: list[tuple[str, bytes]]
    ) -> int:
        last: int = await self._do(self._fenced_append, run_id, attempt, frames)
        self._announce(f"events:{run_id}")
        return last

    async def finish_run(
        self, run_id: str, attempt: int, *, status: str, result: bytes | None,
        frames: list[tuple[str, bytes]], thread_status: str, values: bytes | None,
        interrupts: bytes | None, delete: bool, forget: bool = False,
    ) -> None:
        def work(conn: Any) -> None:
            if frames:
                self._fenced_append(conn, run_id, attempt, frames)
            row = conn.execute(self._sql(
                "UPDATE {s}.server_runs SET status=%s, result=%s, updated_at={now}, "
                "worker=NULL, lease_until=NULL WHERE run_id=%s AND attempt=%s AND "
                "status='running' RETURNING thread_id"),
                (status, result, run_id, attempt)).fetchone()
            if row is None:
                raise LeaseLost(run_id, attempt)
            thread_id = row[0]
            if forget:
                conn.execute(self._sql("DELETE FROM {s}.server_events WHERE run_id=%s"),
                             (run_id,))
                conn.execute(self._sql("DELETE FROM {s}.server_runs WHERE run_id=%s"),
                             (run_id,))
            if delete:
                conn.execute(self._sql("DELETE FROM {s}.server_threads WHERE thread_id=%s"),
                             (thread_id,))
                return
            if values is not None:
                conn.execute(self._sql(
                    'UPDATE {s}.server_threads SET "values"=%s, interrupts=%s, '
                    "state_updated_at={now} WHERE thread_id=%s"), (values, interrupts, thread_id))
            conn.execute(self._sql(
                "UPDATE {s}.server_threads SET rest_status=%s WHERE thread_id=%s"),
                (thread_status, thread_id))
            self._settle(conn, thread_id)

        await self._do(work)
        self._announce(f"events:{run_id}", f"done:{run_id}", "runs")

    async def changes(
        self, run_ids: list[str], claimable: bool
    ) -> tuple[dict[str, tuple[str, int, str | None]], bool]:
        def work(conn: Any) -> tuple[dict[str, tuple[str, int, str | None]], bool]:
            rows = conn.execute(self._sql(
                "SELECT run_id, status, seq, cancel FROM {s}.server_runs "
                "WHERE run_id = ANY(%s)"), (run_ids,)).fetchall() if run_ids else []
            ready = claimable and conn.execute(self._sql(
                "SELECT 1 FROM {s}.server_runs WHERE (status='pending' AND "
                "not_before<={now}) OR (status='running' AND lease_until<{now}) LIMIT 1"),
            ).fetchone() is not None
            return {r[0]: (r[1], int(r[2]), r[3]) for r in rows}, ready

        result: tuple[dict[str, tuple[str, int, str | None]], bool] = await self.db.run(
            work, transaction=False)
        return result

    async def sweep(self, keep: float) -> int:
        def work(conn: Any) -> int:
            old = "status NOT IN ('pending','running') AND updated_at < {now} - %s"
            conn.execute(self._sql(
                "DELETE FROM {s}.server_events WHERE run_id IN (SELECT run_id FROM "
                f"{{s}}.server_runs WHERE {old})"), (keep,))
            cur = conn.execute(self._sql(
                f"DELETE FROM {{s}}.server_runs WHERE temporary AND {old}"), (keep,))
            return int(cur.rowcount)

        result: int = await self._do(work)
        return result

    async def services(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The notifier and the listener, until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.notifier)
            await nursery.start(self.listener)
            task_status.started()


@asynccontextmanager
async def open_postgres(
    dsn: str, *, schema: str = "trigraph", lock_ttl: float = 30.0
) -> AsyncIterator[tuple[PostgresStore, PostgresCheckpointer]]:
    """The run store and the ``PostgresCheckpointer`` of one PostgreSQL database.

    Cancellation:
      Entering is a checkpoint; leaving closes both pools, shielded.

    Raises:
      ImportError: trigraph's PostgreSQL support (the postgres extra) is missing.
    """
    from trigraph import PostgresCheckpointer
    from trigraph.postgres._db import Database  # the Trio seam over psycopg
    from trigraph.postgres._schema import Component, ensure

    component = Component("server", MIGRATIONS)
    cp = PostgresCheckpointer(dsn, schema=schema, lock_ttl=lock_ttl)
    db = Database(dsn, min_size=1, max_size=10, application_name="trigraph-server")
    await cp.__aenter__()
    try:
        await db.open(lambda conn: ensure(conn, schema, component, where=db.target))
        try:
            yield PostgresStore(db, schema), cp
        finally:
            with trio.CancelScope(shield=True):
                await db.aclose()
    finally:
        with trio.CancelScope(shield=True):
            await cp.aclose()

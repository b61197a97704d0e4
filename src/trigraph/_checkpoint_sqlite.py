"""``SqliteCheckpointer``: durable threads in one SQLite file, the embedded default.

Standard-library ``sqlite3`` driven from one long-lived worker thread per
checkpointer (``_worker``: one connection, used only by that thread), in WAL
mode with a busy timeout, so several runs in one process and several
processes on one file can share it. Each ``put`` is one
transaction: a checkpoint is stored whole or not at all, also when the run
is cancelled or the process is killed mid-write. The schema is versioned
with ``PRAGMA user_version``; a newer file is refused, not misread.

One run per thread: a claim is a byte-range lock on ``<file>-locks`` beside the
database (see ``_filelock``), which the kernel drops the moment its process
dies, so a killed run never keeps its thread.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from . import _filelock
from ._abc import CheckpointRecord, ThreadLock, prunable
from ._exceptions import CheckpointError, ThreadBusyError
from ._util import final
from ._worker import WorkerThread

__all__ = ["SCHEMA_VERSION", "SqliteCheckpointer"]

SCHEMA_VERSION = 1
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trigraph_checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    thread TEXT NOT NULL,
    ns TEXT NOT NULL,
    id TEXT NOT NULL,
    parent_id TEXT,
    step INTEGER NOT NULL,
    created_at REAL NOT NULL,
    body BLOB NOT NULL,
    snapshot BLOB,
    pending BLOB,
    UNIQUE (thread, ns, id)
);
CREATE INDEX IF NOT EXISTS trigraph_checkpoints_thread
    ON trigraph_checkpoints (thread, ns, seq);
"""

_COLUMNS = "thread, ns, id, parent_id, step, created_at, body, snapshot, pending"


def _row(row: tuple[Any, ...]) -> CheckpointRecord:
    return CheckpointRecord(
        thread=row[0],
        ns=row[1],
        id=row[2],
        parent_id=row[3],
        step=row[4],
        created_at=row[5],
        body=bytes(row[6]),
        snapshot=None if row[7] is None else bytes(row[7]),
        pending=None if row[8] is None else bytes(row[8]),
    )


@final
class SqliteCheckpointer:
    """Checkpoints in a SQLite file that survive the process.

    Commits use ``synchronous=NORMAL`` in WAL mode: a committed checkpoint
    survives a killed process; after a power loss the last few commits may be
    missing, never half-written.

    Args:
      path: the database file; created (with its folder) if missing.
      busy_timeout: seconds to wait for another process's write lock.

    Raises:
      CheckpointError: (on first use) the file is not a trigraph database, or
        was written by a newer trigraph.

    Example:
      >>> import tempfile, os, trio
      >>> from trigraph import END, START, SqliteCheckpointer, StateGraph
      >>> async def inc(state: dict) -> dict:
      ...     return {"n": state["n"] + 1}
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(inc).add_edge(START, "inc").add_edge("inc", END)
      >>> path = os.path.join(tempfile.mkdtemp(), "threads.db")
      >>> async def main():
      ...     async with SqliteCheckpointer(path) as cp:
      ...         graph = g.compile(checkpointer=cp)
      ...         await graph.ainvoke({"n": 1}, thread="t")
      ...         return (await graph.get_state("t")).values
      >>> trio.run(main)
      {'n': 2}

    .. versionadded:: 0.1
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        # A database only this object can open (":memory:") keeps its claims here.
        self._lock_path: Path | None = None
        if str(path) not in (":memory:", ""):
            self._lock_path = Path(os.path.abspath(self.path)).with_name(self.path.name + "-locks")
        self._claims: dict[str, str] = {}
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._worker = WorkerThread(f"SqliteCheckpointer({str(self.path)!r})")
        weakref.finalize(self, self._worker.stop)  # one nobody closed ends its thread

    def __repr__(self) -> str:
        return f"<SqliteCheckpointer {str(self.path)!r}>"

    async def __aenter__(self) -> SqliteCheckpointer:
        await self._run(lambda conn: None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, check_same_thread=False,
            isolation_level=None,
        )
        try:
            # Read-only checks first: a file that is not ours must be left as it was.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CheckpointError(
                    f"{self.path} was written by a newer trigraph (schema v{version}; "
                    f"this one reads v{SCHEMA_VERSION}); upgrade trigraph"
                )
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if version == 0:
                foreign = {t for t in tables if not t.startswith(("trigraph_", "sqlite_"))}
                if foreign:
                    raise CheckpointError(
                        f"{self.path} is not a trigraph database (it has tables "
                        f"{', '.join(sorted(foreign))})"
                    )
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CheckpointError(f"{self.path} is not a trigraph database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("SqliteCheckpointer is closed")
        def work() -> T:
            conn = self._connect()
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise CheckpointError(f"SQLite error on {self.path}: {exc}") from exc

        return await self._worker.run(work)

    # -- the Checkpointer protocol ----------------------------------------

    def _acquire(self, thread: str) -> ThreadLock:
        if self._lock_path is not None:
            return _filelock.acquire(self._lock_path, thread)
        if thread in self._claims:
            raise ThreadBusyError(thread, holder="another run on this SqliteCheckpointer")
        lock = ThreadLock(thread, secrets.token_hex(8))
        self._claims[thread] = lock.token
        return lock

    def _holds(self, lock: ThreadLock) -> bool:
        if self._lock_path is not None:
            return _filelock.holds(lock)
        return self._claims.get(lock.thread) == lock.token

    def _release(self, lock: ThreadLock) -> None:
        if self._lock_path is not None:
            _filelock.release(lock)
        elif self._claims.get(lock.thread) == lock.token:
            del self._claims[lock.thread]

    def _fence(self, thread: str, lock: ThreadLock | None) -> None:
        if lock is not None and not self._holds(lock):
            raise ThreadBusyError(thread, lost=True)

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None:
        """Store *record* in one transaction.

        Cancellation:
          A checkpoint. A write already under way in the worker thread is
          finished (committed whole) before the cancellation is delivered.
        """

        def work(conn: sqlite3.Connection) -> None:
            self._fence(record.thread, lock)
            conn.execute(
                f"INSERT INTO trigraph_checkpoints ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (record.thread, record.ns, record.id, record.parent_id, record.step,
                 record.created_at, record.body, record.snapshot, record.pending),
            )

        await self._run(work)

    async def put_pending(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        pending: bytes | None,
        *,
        lock: ThreadLock | None = None,
    ) -> None:
        """Replace a record's pending writes. Cancellation: as :meth:`put`."""

        def work(conn: sqlite3.Connection) -> None:
            self._fence(thread, lock)
            cur = conn.execute(
                "UPDATE trigraph_checkpoints SET pending=? WHERE thread=? AND ns=? AND id=?",
                (pending, thread, ns, checkpoint_id),
            )
            if cur.rowcount != 1:
                raise CheckpointError(f"thread {thread!r} has no checkpoint {checkpoint_id!r}")

        await self._run(work)

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None:
        """One record, or the latest written. Cancellation: a checkpoint; reads only."""

        def work(conn: sqlite3.Connection) -> CheckpointRecord | None:
            if checkpoint_id is None:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM trigraph_checkpoints WHERE thread=? AND ns=? "
                    "ORDER BY seq DESC LIMIT 1",
                    (thread, ns),
                ).fetchone()
            else:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM trigraph_checkpoints "
                    "WHERE thread=? AND ns=? AND id=?",
                    (thread, ns, checkpoint_id),
                ).fetchone()
            return None if row is None else _row(row)

        return await self._run(work)

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]:
        """A record and its ancestors back to a snapshot, in one query.

        Cancellation: a checkpoint; reads only.
        """

        def work(conn: sqlite3.Connection) -> list[CheckpointRecord]:
            rows = conn.execute(
                f"""
                WITH RECURSIVE c(seq, parent_id, has_snapshot, depth) AS (
                    SELECT seq, parent_id, snapshot IS NOT NULL, 0 FROM trigraph_checkpoints
                    WHERE thread=?1 AND ns=?2 AND id=?3
                    UNION ALL
                    SELECT p.seq, p.parent_id, p.snapshot IS NOT NULL, c.depth + 1
                    FROM trigraph_checkpoints p JOIN c
                    ON p.thread=?1 AND p.ns=?2 AND p.id=c.parent_id
                    WHERE NOT c.has_snapshot
                )
                SELECT {", ".join("t." + col.strip() for col in _COLUMNS.split(","))}
                FROM c JOIN trigraph_checkpoints t ON t.seq = c.seq ORDER BY c.depth
                """,
                (thread, ns, checkpoint_id),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(work)

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]:
        """All records of a thread, newest first. Cancellation: a checkpoint; reads only."""

        def work(conn: sqlite3.Connection) -> list[CheckpointRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM trigraph_checkpoints WHERE thread=? AND ns=? "
                "ORDER BY seq DESC",
                (thread, ns),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(work)

    async def threads(self) -> list[str]:
        """Thread ids, most recently written first. Cancellation: a checkpoint."""

        def work(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT thread FROM trigraph_checkpoints WHERE ns='' "
                "GROUP BY thread ORDER BY MAX(seq) DESC"
            ).fetchall()
            return [r[0] for r in rows]

        return await self._run(work)

    async def lock_thread(self, thread: str) -> ThreadLock:
        """Claim *thread* for one run, against every process using this file.

        The claim is a lock the kernel holds for this process: it lasts until
        :meth:`unlock_thread` or until the process dies, however it dies, so a
        killed run's thread is free again at once.

        Cancellation: a checkpoint; a cancelled call holds nothing.

        Raises:
          ThreadBusyError: another run holds the thread (in this process or
            in another one).
        """
        return await self._run(lambda conn: self._acquire(thread))

    async def renew_lock(self, lock: ThreadLock) -> None:
        """Check that *lock* is still held (claims here never lapse).

        Cancellation: a checkpoint.
        """
        await trio.lowlevel.checkpoint()
        self._fence(lock.thread, lock)

    async def unlock_thread(self, lock: ThreadLock) -> None:
        """Release *lock*; one no longer held is left alone.

        Cancellation: a checkpoint; the claim is released even if cancelled.
        """
        await trio.lowlevel.checkpoint()
        self._release(lock)

    async def delete_thread(self, thread: str) -> None:
        """Delete every record of *thread*, in every namespace, in one transaction.

        Cancellation: a checkpoint; deleted whole or not at all.

        Raises:
          ThreadBusyError: a run holds the thread.
        """

        def work(conn: sqlite3.Connection) -> None:
            lock = self._acquire(thread)
            try:
                conn.execute("DELETE FROM trigraph_checkpoints WHERE thread=?", (thread,))
            finally:
                self._release(lock)

        await self._run(work)

    async def prune(self, thread: str, *, keep: int) -> int:
        """Delete the records older than the latest *keep* (per namespace) that
        those do not need, in one transaction; return how many went.

        Cancellation: a checkpoint; pruned whole or not at all.
        """
        prunable((), keep)

        def work(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT ns, id, parent_id, snapshot IS NOT NULL FROM trigraph_checkpoints "
                "WHERE thread=? ORDER BY ns, seq",
                (thread,),
            ).fetchall()
            by_ns: dict[str, list[tuple[str, str | None, bool]]] = {}
            for ns, rid, parent, snap in rows:
                by_ns.setdefault(ns, []).append((rid, parent, bool(snap)))
            doomed = [
                (ns, rid) for ns, recs in by_ns.items() for rid in prunable(recs, keep, ns=ns)
            ]
            if doomed:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "DELETE FROM trigraph_checkpoints WHERE thread=? AND ns=? AND id=?",
                    [(thread, ns, rid) for ns, rid in doomed],
                )
                conn.execute("COMMIT")
            return len(doomed)

        return await self._run(work)

    async def aclose(self) -> None:
        """Close the connection; later calls raise ``RuntimeError``.

        Cancellation: a checkpoint; the connection is closed even if cancelled
        (shielded: the close waits for a job under way).
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True  # no job is submitted after this one

        def work() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            with trio.CancelScope(shield=True):
                await self._worker.run(work)
        finally:
            self._worker.stop()
        await trio.lowlevel.checkpoint_if_cancelled()

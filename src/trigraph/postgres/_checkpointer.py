"""``PostgresCheckpointer``: durable threads in PostgreSQL, shared by many processes.

It keeps what ``SqliteCheckpointer`` keeps (the statements are in ``_sql``)
in a schema of its own, created or upgraded on first use (``_schema``), and
talks to the server through ``_db``: one worker-thread hop per call, each
call one statement or one transaction, cancellation reaching the server.

Thread claims are leases (``lock_ttl`` seconds, on the server's clock) that
the engine renews every third of their ttl: a process that dies holds its
threads for at most ``lock_ttl`` seconds, and a process that stalls past its
lease finds its later writes refused (``ThreadBusyError(lost=True)``) once
another process has taken the thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import trio

from .._abc import CheckpointRecord, ThreadLock, prunable
from .._exceptions import CheckpointError, ThreadBusyError
from .._util import final
from ._db import Database
from ._schema import ensure, quote_ident, valid_schema_name
from ._sql import COMPONENT, Statements, record

__all__ = ["PostgresCheckpointer"]

T = TypeVar("T")

def _owner() -> str:
    return f"host {socket.gethostname()}, process {os.getpid()}"


def _fenced_out(thread: str) -> ThreadBusyError:
    return ThreadBusyError(thread, lost=True)


@final
class PostgresCheckpointer:
    """Checkpoints in PostgreSQL, for many processes on many machines.

    Every call is one statement or one transaction in a worker thread (never
    on the Trio loop); a committed checkpoint is in the database before the
    next step starts. Claims on threads are leases on the server's clock:
    a run's process that dies keeps its threads busy for at most *lock_ttl*
    seconds, after which another process resumes them from their last
    checkpoint.

    Args:
      dsn: a libpq connection string or ``postgresql://`` URL (shown only
        with its password replaced by ``***``).
      schema: the PostgreSQL schema (namespace) holding trigraph's tables;
        created on first use. A schema that holds other tables is refused.
      lock_ttl: seconds a thread claim lasts unless renewed (the engine
        renews it every ``lock_ttl / 3`` seconds while a run lives).
      max_connections: pool size: most database calls at once.
      connect_timeout: seconds to wait for a connection (a new one, or a
        free one from the pool) before ``CheckpointError``.
      connect_kwargs: more psycopg/libpq connection options
        (e.g. ``{"prepare_threshold": None}`` behind PgBouncer).

    Raises:
      ImportError: the ``postgres`` extra (psycopg 3, psycopg-pool) is missing.
      CheckpointError: (on first use) the server cannot be reached or refuses
        the login (naming the server), the schema is not trigraph's, or it
        was written by a newer trigraph.

    Example:
      >>> import os, trio
      >>> from trigraph import END, START, PostgresCheckpointer, StateGraph
      >>> async def inc(state: dict) -> dict:
      ...     return {"n": state["n"] + 1}
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(inc).add_edge(START, "inc").add_edge("inc", END)
      >>> async def main(dsn):
      ...     async with PostgresCheckpointer(dsn, schema="doctest") as cp:
      ...         graph = g.compile(checkpointer=cp)
      ...         await graph.ainvoke({"n": 1}, thread="t")
      ...         values = (await graph.get_state("t")).values
      ...         await cp.delete_thread("t")
      ...         return values
      >>> dsn = os.environ.get("TRIGRAPH_TEST_PG_DSN")
      >>> trio.run(main, dsn) if dsn else {'n': 2}
      {'n': 2}

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "trigraph",
        lock_ttl: float = 30.0,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        connect_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = valid_schema_name(schema)
        if not (isinstance(lock_ttl, int | float) and math.isfinite(lock_ttl) and lock_ttl >= 1):
            raise ValueError(f"lock_ttl must be a number of seconds >= 1, got {lock_ttl!r}")
        self.lock_ttl = float(lock_ttl)
        self._db = Database(
            dsn, min_size=1, max_size=max_connections, connect_timeout=connect_timeout,
            application_name="trigraph", connect_kwargs=connect_kwargs,
        )
        self._sql = Statements(quote_ident(self.schema))
        self._opening = trio.Lock()
        self._open = False
        self._owner = _owner()

    def __repr__(self) -> str:
        return f"<PostgresCheckpointer {self._db.redacted!r} schema={self.schema!r}>"

    @property
    def dsn(self) -> str:
        """The connection string, with its password replaced by ``***``."""
        return self._db.redacted

    async def __aenter__(self) -> PostgresCheckpointer:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing ---------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self._open:
            return
        async with self._opening:
            if not self._open:
                await self._db.open(
                    lambda conn: ensure(conn, self.schema, COMPONENT, where=self._db.target)
                )
                self._open = True

    async def _run(self, fn: Callable[..., T], *args: Any, transaction: bool = False) -> T:
        if not self._open:
            await self._ensure_open()
        return await self._db.run(fn, *args, transaction=transaction)

    # -- the Checkpointer protocol ----------------------------------------

    async def put(self, record: CheckpointRecord, *, lock: ThreadLock | None = None) -> None:
        """Store *record* in one statement (fenced by *lock* in that same statement).

        Cancellation:
          A checkpoint. The statement is cancelled on the server and waited
          for: the record is stored whole or not at all.

        Raises:
          ThreadBusyError: (``lost=True``) *lock* is no longer this thread's
            claim; nothing was stored.
          CheckpointError: the database failed, or the id is already stored.
        """
        r = record
        values = (r.thread, r.ns, r.id, r.parent_id, r.step, r.created_at, r.body,
                  r.snapshot, r.pending)
        if lock is None:
            await self._run(lambda conn: conn.execute(self._sql.put, values))
            return

        def fenced(conn: Any) -> int:
            row = conn.execute(self._sql.put_fenced, (r.thread, lock.token, *values)).fetchone()
            return int(row[0])

        if not await self._run(fenced):
            raise _fenced_out(r.thread)

    async def put_pending(
        self,
        thread: str,
        ns: str,
        checkpoint_id: str,
        pending: bytes | None,
        *,
        lock: ThreadLock | None = None,
    ) -> None:
        """Replace a record's pending writes, in one statement. Cancellation: as :meth:`put`.

        Raises:
          ThreadBusyError: (``lost=True``) *lock* is no longer held.
          CheckpointError: there is no such record.
        """

        def work(conn: Any) -> tuple[bool, int]:
            if lock is None:
                cur = conn.execute(self._sql.put_pending, (pending, thread, ns, checkpoint_id))
                return True, cur.rowcount
            row = conn.execute(
                self._sql.put_pending_fenced,
                (thread, lock.token, pending, thread, ns, checkpoint_id),
            ).fetchone()
            return bool(row[0]), int(row[1])

        held, updated = await self._run(work)
        if not held:
            raise _fenced_out(thread)
        if updated != 1:
            raise CheckpointError(f"thread {thread!r} has no checkpoint {checkpoint_id!r}")

    async def get(
        self, thread: str, ns: str, checkpoint_id: str | None = None
    ) -> CheckpointRecord | None:
        """One record, or the latest written. Cancellation: a checkpoint; reads only."""

        def work(conn: Any) -> CheckpointRecord | None:
            cur = conn.cursor(binary=True)
            if checkpoint_id is None:
                row = cur.execute(self._sql.get_latest, (thread, ns)).fetchone()
            else:
                row = cur.execute(self._sql.get_id, (thread, ns, checkpoint_id)).fetchone()
            return None if row is None else record(row)

        return await self._run(work)

    async def chain(self, thread: str, ns: str, checkpoint_id: str) -> list[CheckpointRecord]:
        """A record and its ancestors back to a snapshot, in one recursive query.

        Cancellation: a checkpoint; reads only.
        """

        def work(conn: Any) -> list[CheckpointRecord]:
            cur = conn.cursor(binary=True)
            params = {"thread": thread, "ns": ns, "id": checkpoint_id}
            return [record(r) for r in cur.execute(self._sql.chain, params).fetchall()]

        return await self._run(work)

    async def history(self, thread: str, ns: str) -> list[CheckpointRecord]:
        """All records of a thread, newest first. Cancellation: a checkpoint; reads only."""

        def work(conn: Any) -> list[CheckpointRecord]:
            cur = conn.cursor(binary=True)
            return [record(r) for r in cur.execute(self._sql.history, (thread, ns)).fetchall()]

        return await self._run(work)

    async def threads(self) -> list[str]:
        """Thread ids, most recently written first. Cancellation: a checkpoint."""

        def work(conn: Any) -> list[str]:
            return [r[0] for r in conn.execute(self._sql.threads).fetchall()]

        return await self._run(work)

    def _claim(self, conn: Any, thread: str, token: str, ttl: float) -> None:
        """Take *thread*'s claim for *token* if it is free or expired (sync)."""
        if conn.execute(self._sql.claim, (thread, token, self._owner, ttl)).fetchone():
            return
        row = conn.execute(self._sql.holder, (thread,)).fetchone()
        holder = None
        if row is not None:
            who = ("another run in this process" if row[0] == self._owner
                   else f"a run in another process: {row[0]}")
            holder = f"{who}; its claim lapses in {math.ceil(row[1])} s unless renewed"
        raise ThreadBusyError(thread, holder=holder)

    async def lock_thread(self, thread: str) -> ThreadLock:
        """Claim *thread* for one run, against every process using this database.

        The claim is a lease of *lock_ttl* seconds on the server's clock, taken
        in one statement if the thread is free or its last claim has lapsed.

        Cancellation:
          A checkpoint; a cancelled call holds nothing: a claim its statement
          may have taken is released (shielded) before ``Cancelled`` propagates.

        Raises:
          ThreadBusyError: another run holds the thread (the message names its
            host and process).
        """
        token = secrets.token_hex(8)
        try:
            await self._run(self._claim, thread, token, self.lock_ttl)
        except trio.Cancelled:
            # Best effort: if the release fails too, the claim lapses by itself.
            with contextlib.suppress(CheckpointError):
                await self._release(thread, token)
            raise
        return ThreadLock(thread, token, self.lock_ttl)

    async def renew_lock(self, lock: ThreadLock) -> None:
        """Extend *lock* by its ttl from now (server clock).

        A claim that lapsed but that nobody took over is still this run's and
        is renewed: its writes never conflicted with anyone's.

        Cancellation: a checkpoint.

        Raises:
          ThreadBusyError: (``lost=True``) another run took the thread over.
        """
        ttl = lock.ttl if lock.ttl is not None else self.lock_ttl

        def work(conn: Any) -> int:
            return int(conn.execute(self._sql.renew, (ttl, lock.thread, lock.token)).rowcount)

        if not await self._run(work):
            raise _fenced_out(lock.thread)

    async def unlock_thread(self, lock: ThreadLock) -> None:
        """Release *lock*; one no longer held is left alone.

        Cancellation:
          A checkpoint; the claim is released even if cancelled: the release
          is one short transaction, shielded, bounded by *connect_timeout*
          (to connect, and on the server); if it fails, the claim lapses by
          itself after *lock_ttl*.
        """
        await self._release(lock.thread, lock.token)

    async def _release(self, thread: str, token: str) -> None:
        # Shielded; bounded on the server too (a lock held elsewhere), so that
        # no cancelled task waits on it for longer than connect_timeout.
        bound = f"{max(1, round(self._db.connect_timeout * 1000))}ms"

        def work(conn: Any) -> None:
            conn.execute("SELECT set_config('lock_timeout', %s, true), "
                         "set_config('statement_timeout', %s, true)", (bound, bound))
            conn.execute(self._sql.release, (thread, token))

        with trio.CancelScope(shield=True):
            await self._run(work, transaction=True)

    async def delete_thread(self, thread: str) -> None:
        """Delete every record of *thread*, in every namespace, in one transaction.

        Cancellation: a checkpoint; deleted whole or not at all.

        Raises:
          ThreadBusyError: a run (in any process) holds the thread.
        """
        token = secrets.token_hex(8)

        def work(conn: Any) -> None:
            # Hold the thread's claim for the transaction: a run that starts
            # meanwhile waits for it, then finds the thread empty.
            self._claim(conn, thread, token, 60.0)
            conn.execute(self._sql.delete_thread, (thread,))
            conn.execute(self._sql.release, (thread, token))

        await self._run(work, transaction=True)

    async def prune(self, thread: str, *, keep: int) -> int:
        """Delete the records older than the latest *keep* (per namespace) that
        those do not need, in one transaction; return how many went.

        Cancellation: a checkpoint; pruned whole or not at all.
        """
        prunable((), keep)

        def work(conn: Any) -> int:
            by_ns: dict[str, list[tuple[str, str | None, bool]]] = {}
            for ns, rid, parent, snap in conn.execute(self._sql.prune_rows, (thread,)):
                by_ns.setdefault(ns, []).append((rid, parent, bool(snap)))
            doomed = [
                (ns, rid) for ns, recs in by_ns.items() for rid in prunable(recs, keep, ns=ns)
            ]
            if doomed:
                conn.execute(
                    self._sql.prune_delete,
                    ([ns for ns, _ in doomed], [rid for _, rid in doomed], thread),
                )
            return len(doomed)

        return await self._run(work, transaction=True)

    async def aclose(self) -> None:
        """Close the pool and its connections; later calls raise ``RuntimeError``.

        Cancellation: a checkpoint; closed even if cancelled.
        """
        self._open = True  # no reopening on a later call
        await self._db.aclose()

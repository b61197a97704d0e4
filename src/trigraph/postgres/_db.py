"""The seam between Trio and PostgreSQL: a pool, and one thread hop per transaction.

psycopg's async API runs only on asyncio, so trigraph drives its sync API from
worker threads. :class:`Database` owns a ``psycopg_pool.ConnectionPool`` and a
``trio.CapacityLimiter`` sized to it; :meth:`Database.run` takes a function of a
connection and runs all of it (usually one transaction) in ONE worker thread,
never one hop per statement. :meth:`Database.connect` and
:meth:`Database.run_on` give the same guarantees on a dedicated, unpooled
connection (for ``LISTEN``).

The invariant, kept by :func:`run_cancellable`: no thread and no connection is
ever abandoned. When the calling Trio task is cancelled, the query in flight
is cancelled on the server (``cancel_safe()``, re-sent until the thread is
done) and the task waits, shielded, for the thread to finish; only then is the
connection given back to the pool (rolled back if needed). A connection
handed back while a stray thread still reads its socket would corrupt the next
user of that file descriptor.

Errors are translated once, here: any ``psycopg.Error`` becomes
:class:`~trigraph.CheckpointError` naming the server (``host:port/dbname``),
with the password scrubbed; a pool that cannot hand out a connection within
*connect_timeout* says why (the last connection error), rather than waiting
for ever. Exceptions of the caller's own (``ThreadBusyError``...) pass
through untouched.

Also used by the HTTP server's run queue; keep it general.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import outcome
import trio

from .._exceptions import CheckpointError
from .._util import final
from ._dsn import describe_dsn, redact_dsn, scrub

if TYPE_CHECKING:
    import psycopg

__all__ = ["INSTALL_HINT", "Database", "import_psycopg", "run_cancellable"]

T = TypeVar("T")

INSTALL_HINT = (
    'PostgreSQL support needs psycopg 3 and psycopg-pool: pip install "trigraph[postgres]"'
)
CANCEL_RETRY = 1.0
"""Seconds between cancel requests while a cancelled query's thread runs on."""


def import_psycopg() -> ModuleType:
    """Import psycopg (and check psycopg_pool) on first use, or say how to install them.

    Raises:
      ImportError: the ``postgres`` extra is not installed.
    """
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return psycopg


@attrs.define(eq=False)
class _Call:
    """What the Trio side of a call shares with its worker thread."""

    lock: threading.Lock = attrs.Factory(threading.Lock)
    conn: Any = None
    """The connection running the call's statements, while it runs them."""
    cancelled: bool = False


class _CallCancelled(Exception):
    """Raised in a worker thread whose Trio task was cancelled before it started."""


def _attach(call: _Call, conn: Any) -> None:
    with call.lock:
        if call.cancelled:
            raise _CallCancelled
        call.conn = conn


def _detach(call: _Call) -> None:
    with call.lock:
        call.conn = None


def _send_cancel(call: _Call, timeout: float) -> None:
    # Under the call's lock: the thread cannot hand the connection back (and a
    # new user start a query on it) while the cancel request is on its way.
    with call.lock:
        call.cancelled = True
        if call.conn is not None:
            # A server that is gone or refuses: the thread sees it too.
            with contextlib.suppress(Exception):
                call.conn.cancel_safe(timeout=timeout)


async def run_cancellable(
    work: Callable[[_Call], T], *, limiter: trio.CapacityLimiter,
    cancel_limiter: trio.CapacityLimiter | None = None, cancel_timeout: float = 10.0,
) -> T:
    """Run ``work(call)`` in a worker thread; on cancellation, cancel its query and join it.

    *work* must register the connection it uses with ``_attach(call, conn)``
    before its first statement and ``_detach(call)`` after its last.

    Cancellation:
      A checkpoint. If the calling task is cancelled, the query in flight is
      cancelled on the server and this waits (shielded) until the thread has
      returned, so the connection is idle again (or discarded) before
      ``Cancelled`` propagates; a query that ignores the cancel request is
      waited for, with the request re-sent every second.
    """
    call = _Call()
    # Acquired here, not by to_thread: a cancellation while waiting for a
    # thread slot must mean "nothing started", and one after it "a thread runs".
    await limiter.acquire_on_behalf_of(call)
    try:
        done = trio.Event()
        result: list[outcome.Outcome[T]] = []
        token = trio.lowlevel.current_trio_token()

        def deliver(got: outcome.Outcome[T]) -> None:  # in the worker thread
            def in_trio() -> None:
                result.append(got)
                done.set()

            with contextlib.suppress(trio.RunFinishedError):  # the run ended meanwhile
                token.run_sync_soon(in_trio)

        trio.lowlevel.start_thread_soon(lambda: work(call), deliver)
        try:
            await done.wait()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                while not done.is_set():
                    await trio.to_thread.run_sync(
                        _send_cancel, call, cancel_timeout, limiter=cancel_limiter
                    )
                    with trio.move_on_after(CANCEL_RETRY):
                        await done.wait()
            raise
        return result[0].unwrap()
    finally:
        limiter.release_on_behalf_of(call)


def _make_connection_class(psycopg: ModuleType, db: Database) -> type[Any]:
    """A ``psycopg.Connection`` subclass that tells *db* why a connect failed."""

    class Connection(psycopg.Connection):  # type: ignore[misc, name-defined]
        returned_at = 0.0

        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                conn = super().connect(*args, **kwargs)
            except Exception as exc:
                db._connect_error = (time.monotonic(), exc)
                raise
            db._connect_error = None
            return conn

    return Connection


@final
class Database:
    """A PostgreSQL connection pool that Trio code calls one transaction at a time.

    Args:
      dsn: a libpq connection string or ``postgresql://`` URL.
      min_size: connections kept open.
      max_size: most connections at once (and most worker threads at once).
      connect_timeout: seconds a connection attempt, or a wait for a pooled
        connection, may take before :class:`~trigraph.CheckpointError`.
      idle_check: a pooled connection idle for longer than this many seconds
        is checked (an empty query) before it is handed out, so one killed by
        a server restart is replaced rather than failing a call.
      application_name: shown in ``pg_stat_activity``.
      connect_kwargs: more libpq or psycopg connection options; they
        override trigraph's defaults (``autocommit=True``, TCP keepalives,
        *connect_timeout*).

    Every connection is in autocommit mode: a call's statements are their own
    transactions unless :meth:`run` wraps them in one.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        idle_check: float = 1.0,
        application_name: str = "trigraph",
        connect_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.psycopg = import_psycopg()
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a str, got {type(dsn).__name__}")
        if max_size < 1 or min_size < 0 or min_size > max_size:
            raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1, "
                             f"got min_size={min_size}, max_size={max_size}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0, got {connect_timeout!r}")
        try:
            self.psycopg.conninfo.conninfo_to_dict(dsn)
        except self.psycopg.Error as exc:
            raise CheckpointError(
                f"not a PostgreSQL connection string: {redact_dsn(dsn)!r} "
                f"({scrub(str(exc), dsn)})"
            ) from None
        self._dsn = dsn
        self.redacted = redact_dsn(dsn)
        self.target = describe_dsn(dsn)
        self.connect_timeout = connect_timeout
        self.min_size = min_size
        self.max_size = max_size
        self._idle_check = idle_check
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq rounds connect_timeout down and ignores values under 2 s;
            # psycopg enforces it itself.
            "connect_timeout": max(2, round(connect_timeout)),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "application_name": application_name,
            **(connect_kwargs or {}),
        }
        self.limiter = trio.CapacityLimiter(max_size)
        self._cancel_limiter = trio.CapacityLimiter(max_size)
        self._connect_error: tuple[float, BaseException] | None = None
        self._connection_class = _make_connection_class(self.psycopg, self)
        self._pool: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Database {self.redacted!r}>"

    # -- errors -------------------------------------------------------------

    def error(self, exc: BaseException, doing: str = "") -> CheckpointError:
        """A ``CheckpointError`` for *exc*, naming the server, password scrubbed."""
        what = f" ({doing})" if doing else ""
        text = " ".join(str(exc).split()) or type(exc).__name__
        return CheckpointError(scrub(f"PostgreSQL at {self.target}{what}: {text}", self._dsn))

    # -- connections (called in worker threads) ------------------------------

    def connect_sync(self, **overrides: Any) -> Any:
        """A new connection outside the pool (sync: call it from a worker thread)."""
        return self._connection_class.connect(self._dsn, **{**self._kwargs, **overrides})

    def _check(self, conn: Any) -> None:
        if time.monotonic() - conn.returned_at > self._idle_check:
            conn.execute("")

    def _reset(self, conn: Any) -> None:
        conn.returned_at = time.monotonic()

    def _getconn(self) -> tuple[Any, bool]:
        """A connection, and whether it is the pool's (else the caller closes it).

        While the pool has connections to give, it gives one. When it has
        none and its last attempt to connect failed (the server went away),
        this connects directly instead of waiting for the pool's backoff: a
        server that is back serves the call at once, and one that is still
        down fails it at once with the server's own reason.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeError("the Database is closed" if self._closed
                               else "the Database is not open; use 'async with' or open()")
        deadline = time.monotonic() + self.connect_timeout
        pool_timeout = self.psycopg.OperationalError  # PoolTimeout subclasses it
        while True:
            try:
                slice_ = min(0.25, max(0.01, deadline - time.monotonic()))
                return pool.getconn(timeout=slice_), True
            except pool_timeout:
                if self._connect_error is not None:
                    try:
                        return self.connect_sync(), False
                    except self.psycopg.Error as exc:
                        raise self.error(exc, "cannot connect") from exc
                if time.monotonic() >= deadline:
                    raise CheckpointError(
                        f"PostgreSQL at {self.target}: no connection within "
                        f"{self.connect_timeout:g} s (all {self.max_size} in use, or the "
                        "server does not answer)"
                    ) from None

    # -- the Trio API ----------------------------------------------------------

    async def open(self, setup: Callable[[Any], None] | None = None) -> None:
        """Connect once (so a bad DSN, password or host fails now, with the
        server's reason), run *setup* on that connection, then start the pool.

        Cancellation:
          A checkpoint; a cancelled open leaves nothing open.

        Raises:
          CheckpointError: the server cannot be reached within
            *connect_timeout*, refuses the login, or *setup* failed.
        """
        if self._closed:
            raise RuntimeError("the Database is closed")
        if self._pool is not None:
            await trio.lowlevel.checkpoint()
            return
        from psycopg_pool import ConnectionPool

        def first(call: _Call) -> None:
            try:
                conn = self.connect_sync()
            except self.psycopg.Error as exc:
                raise self.error(exc, "cannot connect") from exc
            with conn:
                _attach(call, conn)
                try:
                    if setup is not None:
                        setup(conn)
                finally:
                    _detach(call)

        await self._call(first)
        pool = ConnectionPool(
            self._dsn, connection_class=self._connection_class, kwargs=self._kwargs,
            min_size=self.min_size, max_size=self.max_size, open=False,
            check=self._check, reset=self._reset, timeout=self.connect_timeout,
            name=f"trigraph {self.target}",
        )
        await trio.to_thread.run_sync(pool.open)
        self._pool = pool

    async def run(
        self, fn: Callable[..., T], *args: Any, transaction: bool = True
    ) -> T:
        """Run ``fn(conn, *args)`` with a pooled connection, in one worker thread.

        With *transaction* (the default) *fn* runs inside one transaction,
        committed when it returns and rolled back if it raises; without it,
        each statement commits on its own (enough for one statement, and one
        round trip cheaper).

        Cancellation:
          A checkpoint. A cancelled call cancels its query on the server and
          waits for its thread; the transaction is rolled back unless it had
          already committed, so a write happened whole or not at all.

        Raises:
          CheckpointError: the database failed (a ``psycopg.Error``), naming
            the server. Exceptions raised by *fn* itself pass through.
        """

        def work(call: _Call) -> T:
            conn, pooled = self._getconn()
            try:
                _attach(call, conn)
                try:
                    if transaction:
                        with conn.transaction():
                            return fn(conn, *args)
                    return fn(conn, *args)
                finally:
                    _detach(call)
            finally:
                if pooled:
                    self._pool.putconn(conn)
                else:
                    conn.close()

        return await self._call(work)

    async def connect(self, **overrides: Any) -> psycopg.Connection[Any]:
        """A new autocommit connection outside the pool (e.g. for ``LISTEN``).

        The caller owns it: use it through :meth:`run_on` and close it with
        ``conn.close()`` (sync, cheap) when done.

        Cancellation:
          A checkpoint; the attempt is bounded by *connect_timeout*, and a
          cancelled attempt leaves no connection open.
        """

        made: list[Any] = []

        def work(call: _Call) -> Any:
            try:
                made.append(self.connect_sync(**overrides))
            except self.psycopg.Error as exc:
                raise self.error(exc, "cannot connect") from exc
            return made[0]

        try:
            return await self._call(work)
        except trio.Cancelled:
            for conn in made:  # the thread has finished: close what it made
                conn.close()
            raise

    async def run_on(self, conn: Any, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a connection from :meth:`connect`, in one worker
        thread, with :meth:`run`'s cancellation and error rules."""

        def work(call: _Call) -> T:
            _attach(call, conn)
            try:
                return fn(conn, *args)
            finally:
                _detach(call)

        return await self._call(work)

    async def _call(self, work: Callable[[_Call], T]) -> T:
        try:
            return await run_cancellable(
                work, limiter=self.limiter, cancel_limiter=self._cancel_limiter,
                cancel_timeout=self.connect_timeout,
            )
        except self.psycopg.Error as exc:
            raise self.error(exc) from exc

    async def aclose(self) -> None:
        """Close the pool and its connections; later calls raise ``RuntimeError``.

        Cancellation:
          A checkpoint; the pool is closed even if cancelled (shielded,
          bounded by *connect_timeout*).
        """
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(lambda: pool.close(timeout=self.connect_timeout))

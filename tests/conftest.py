"""Shared configuration of trigraph's test suite.

Hypothesis profiles: ``ci`` (the default: derandomized, 25 examples, no
deadline) and ``thorough`` (500 examples); pick one with the environment
variable ``HYPOTHESIS_PROFILE``.

Checkpointers: the ``stores``/``cp`` fixtures run a test on each store
(memory, SQLite, PostgreSQL). PostgreSQL is the server named by
``$TRIGRAPH_TEST_PG_DSN``, else a disposable one started for the session
(``_pg.PgServer``) and stopped at the end; each test gets a schema of its own,
dropped after it. Without PostgreSQL binaries (or psycopg) the PostgreSQL
params are skipped, saying why; with ``CI=true`` or
``TRIGRAPH_REQUIRE_POSTGRES=1`` that is a failure instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _helpers import TaskTracker
from _pg import PgServer, missing_reason
from _stores import Stores
from hypothesis import settings

from trigraph.abc import Checkpointer

settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def trio_thread() -> int:
    """The ident of the thread the test's Trio loop runs in (pytest's thread)."""
    import threading

    return threading.get_ident()


@pytest.fixture
def task_tracker() -> Iterator[TaskTracker]:
    """A ``TaskTracker``, not yet watching: use ``with task_tracker.watch(): ...``."""
    tracker = TaskTracker()
    yield tracker
    assert not tracker.watching, "task_tracker.watch() was left open"



def postgres_required() -> bool:
    """Whether a missing PostgreSQL fails the run (CI) instead of skipping."""
    return (os.environ.get("CI", "").lower() == "true"
            or os.environ.get("TRIGRAPH_REQUIRE_POSTGRES") == "1")


def _no_postgres(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"PostgreSQL tests are required here (CI=true or "
                    f"TRIGRAPH_REQUIRE_POSTGRES=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL server for the session (see the module docstring)."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        _no_postgres('psycopg is not installed (pip install -e ".[test]")')
    given = os.environ.get("TRIGRAPH_TEST_PG_DSN")
    if given:
        yield given
        return
    reason = missing_reason()
    if reason is not None:
        _no_postgres(reason)
    try:
        server = PgServer.start()
    except RuntimeError as exc:
        _no_postgres(f"the disposable server did not start: {exc}")
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture
def pg_binaries() -> None:
    """Skip (or, where PostgreSQL is required, fail) unless a disposable
    PostgreSQL server can be started here."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _no_postgres('psycopg is not installed (pip install -e ".[test]")')
    reason = missing_reason()
    if reason is not None:
        _no_postgres(reason)


CHECKPOINTERS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=CHECKPOINTERS)
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """Each kind of checkpointer in turn, not opened yet. (Sync, so that a
    PostgreSQL skip reaches pytest with its reason.)"""
    kind: str = request.param
    s = Stores(kind, tmp_path / "t.db")
    if kind == "postgres":
        s.dsn = request.getfixturevalue("pg_dsn")
        s.schema = f"t_{secrets.token_hex(6)}"
    return s


@pytest.fixture
async def stores(store_kind: Stores) -> AsyncIterator[Stores]:
    """Each kind of checkpointer in turn (SQLite on a file in *tmp_path*;
    PostgreSQL in a fresh schema of the session's server), closed after."""
    try:
        yield store_kind
    finally:
        await store_kind.aclose()


@pytest.fixture
def cp(stores: Stores) -> Checkpointer:
    """Each checkpointer in turn (see ``stores``), closed after."""
    return stores.cp


SERVER_KEY = "test-key-7f3a"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One ``trigraph serve`` subprocess (API key ``SERVER_KEY``) shared by the
    server tests; stopped by its pid at the end of the session."""
    from _server import Server

    folder = tmp_path_factory.mktemp("serve")
    srv = Server(folder, "--api-key", SERVER_KEY, "--db", str(folder / "threads.db"))
    yield srv
    assert srv.stop() == 0, srv.text()

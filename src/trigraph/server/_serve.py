"""Running a server and workers: the database, Hypercorn on Trio, the workers.

:func:`open_backend` opens the run store and the checkpointer of one
database (a SQLite path, or a ``postgresql://`` URL). :func:`serve` serves
the API with Hypercorn's Trio worker and, unless ``workers=0``, executes
runs in the same process; :func:`run_worker` only executes runs. Both are
Trio background services: ``await nursery.start(serve, ...)`` returns once
the server listens (with its port) or the worker claims.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from trigraph import CompiledGraph, SqliteCheckpointer, StateGraph
from trigraph.abc import Checkpointer

from ._app import DEFAULT_MAX_BODY, create_app
from ._graphs import Graphs
from ._shapes import Context
from ._store import RunStore, watch
from ._store_sqlite import LockedCheckpointer, SqliteStore
from ._worker import Worker

__all__ = ["is_postgres", "open_backend", "run_worker", "serve"]

log = logging.getLogger("trigraph.server")
SWEEP_EVERY = 60.0
KEEP_EVENTS = 3600.0


def is_postgres(db: str) -> bool:
    """Whether *db* names a PostgreSQL database (a URL) rather than a SQLite file."""
    return db.lower().startswith(("postgresql://", "postgres://"))


@asynccontextmanager
async def open_backend(
    db: str, *, lease: float = 30.0
) -> AsyncIterator[tuple[RunStore, Checkpointer]]:
    """The run store and checkpointer of *db*, open for the block.

    *lease* is also how long a PostgreSQL thread claim of a dead process
    lasts, so that a run taken over can claim its thread as soon as it may.

    Cancellation:
      Entering is a checkpoint; leaving closes both, shielded.

    Raises:
      ValueError: *db* is a PostgreSQL URL but PostgreSQL support is missing.
      CheckpointError: the database cannot be opened or is not trigraph's.

    .. versionadded:: 0.2
    """
    if is_postgres(db):
        try:
            from ._store_postgres import open_postgres
        except ImportError as exc:
            raise ValueError(f"a postgresql:// database needs PostgreSQL support "
                             f'(pip install "trigraph[postgres]"): {exc}') from None
        async with open_postgres(db, lock_ttl=max(lease, 1.0)) as (pg_store, pg_cp):
            yield pg_store, pg_cp
        return
    cp = SqliteCheckpointer(db)
    store = SqliteStore(db)
    try:
        await cp.__aenter__()
        await store.open()
        yield store, LockedCheckpointer(cp, store.write_lock)
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
            await cp.aclose()


async def _sweep(store: RunStore, keep: float) -> None:
    while True:
        try:
            await store.sweep(keep)
        except Exception:
            log.exception("sweeping old runs failed")
        await trio.sleep(SWEEP_EVERY)


async def serve(
    graphs: Mapping[str, CompiledGraph | StateGraph[Any]],
    *,
    db: str,
    host: str = "127.0.0.1",
    port: int = 2024,
    workers: int = 10,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
    lease: float = 30.0,
    keep_events: float = KEEP_EVENTS,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve *graphs* over HTTP with the LangGraph Server API until cancelled.

    Args:
      graphs: graph id -> graph (compiled or not); each is an assistant.
      db: a SQLite file or a ``postgresql://`` URL: checkpoints, threads,
        the run queue and the events.
      host, port: where to listen (port 0: a free port, given to
        ``task_status.started``).
      workers: runs this process executes at once; 0 serves the API only.
      api_key: when set, every route but ``/ok`` and the page's static
        files needs it in ``x-api-key``.
      cors_origins: browser origins allowed to call the API.
      max_body: the largest request body, in bytes.
      lease: seconds before a run of a dead worker is taken over.
      keep_events: seconds a finished run's events are kept for late readers.

    Example:
      >>> import os, tempfile, httpx, trio
      >>> from trigraph import END, START, StateGraph
      >>> async def hello(state: dict) -> dict:
      ...     return {"text": "hi"}
      >>> g = StateGraph(dict)
      >>> _ = g.add_node(hello).add_edge(START, "hello").add_edge("hello", END)
      >>> async def main():
      ...     db = os.path.join(tempfile.mkdtemp(), "threads.db")
      ...     async with trio.open_nursery() as nursery:
      ...         port = await nursery.start(lambda task_status: serve(
      ...             {"hello": g}, db=db, port=0, task_status=task_status))
      ...         async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
      ...             out = await c.post("/runs/wait", json={"assistant_id": "hello"})
      ...         nursery.cancel_scope.cancel()
      ...     return out.json()
      >>> trio.run(main)
      {'text': 'hi'}

    Cancellation:
      Cancelling stops listening, closes open streams, and cancels the runs
      in progress (they stay claimed until their lease lapses, then another
      worker resumes them from their last checkpoint), then closes the
      database.

    .. versionadded:: 0.2
    """
    async with open_backend(db, lease=lease) as (store, cp):
        served = Graphs(graphs, cp)
        app = create_app(Context(store, served, cp), api_key=api_key,
                         cors_origins=cors_origins, max_body=max_body)
        from hypercorn.config import Config
        from hypercorn.trio import serve as hypercorn_serve

        config = Config()
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.keep_alive_timeout = 75
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            if workers > 0:
                worker = Worker(store, served, cp, concurrency=workers, lease=lease)
                await nursery.start(worker.run)
            nursery.start_soon(_sweep, store, keep_events)
            await nursery.start(store.services)
            await nursery.start(watch, store)
            binds: list[str] = await nursery.start(hypercorn_serve, app, config)
            task_status.started(int(binds[0].rsplit(":", 1)[1]))


async def run_worker(
    graphs: Mapping[str, CompiledGraph | StateGraph[Any]],
    *,
    db: str,
    concurrency: int = 10,
    lease: float = 30.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Execute queued runs of *graphs* from *db* until cancelled.

    Takes the arguments of :func:`serve` that concern running (*concurrency*
    is its *workers*); several workers, in any processes, share one database.
    ``trio.run(run_worker, graphs, db=url)`` is what ``trigraph worker`` does.

    Cancellation:
      As :func:`serve`: runs in progress are cancelled and taken over by
      another worker once their lease lapses.

    .. versionadded:: 0.2
    """
    async with open_backend(db, lease=lease) as (store, cp):
        worker = Worker(store, Graphs(graphs, cp), cp, concurrency=concurrency, lease=lease)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.services)
            await nursery.start(watch, store)
            await nursery.start(worker.run)
            task_status.started()

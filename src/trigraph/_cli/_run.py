"""Running a graph from the command line: the stream, Ctrl-C, and how it ended.

:func:`execute` runs one graph (``run``, ``resume`` and ``demo`` all end
here) inside one ``trio.run``: it streams the run into a renderer, turns the
first Ctrl-C into a cancellation of the run (every node task is torn down,
the durable thread keeps its last completed step, and the user is told how
to resume; a second Ctrl-C exits at once), and turns every way a run can
fail into a short message on stderr and an exit status. The invariant: no
traceback reaches the user; the exit status is 0 (done or paused), 1 (the
run failed), 2 (bad input) or 130 (cancelled).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from .._abc import Checkpointer
from .._checkpoint_sqlite import SqliteCheckpointer
from .._compiled import CompiledGraph
from .._events import Event, Interrupted, TaskStart, Values
from .._exceptions import (
    CheckpointError,
    EmptyInputError,
    InvalidUpdateError,
    SerializationError,
    ThreadBusyError,
    TrigraphError,
)
from .._graph import StateGraph
from .._util import collapse
from ..postgres import PostgresCheckpointer
from ..postgres._dsn import is_postgres_url, redact_dsn
from ._load import DEFAULT_DB, UsageError, one_line, with_checkpointer
from ._render import JsonRenderer, LiveRenderer, Renderer, make_console

__all__ = ["Db", "Job", "PgTarget", "error", "execute", "open_db", "resolve_db",
           "resume_command"]

#: Shown by the live renderer unless ``--mode`` says otherwise.
LIVE_MODES = frozenset({"tasks", "messages", "custom"})
#: Written by ``--json`` unless ``--mode`` says otherwise.
JSON_MODES = frozenset({"tasks", "updates", "custom", "messages"})

_NODE_NOTE = re.compile(r"^in node '(?P<node>.*)', step (?P<step>\d+)$")
# Errors that, before any node has started, mean the input (or thread) was wrong.
_INPUT_ERRORS = (InvalidUpdateError, EmptyInputError, CheckpointError, SerializationError,
                 ValueError, KeyError)


def error(message: str) -> None:
    """Print one ``trigraph: ...`` line on stderr."""
    print(f"trigraph: {message}", file=sys.stderr, flush=True)


@attrs.frozen
class PgTarget:
    """A PostgreSQL ``--db``: a DSN and the schema holding trigraph's tables.

    ``str()`` is the DSN with its password replaced by ``***``: the only form
    ever printed.
    """

    dsn: str = attrs.field(repr=False)
    schema: str = "trigraph"

    def __str__(self) -> str:
        return redact_dsn(self.dsn)


Db = Path | PgTarget
"""Where the command keeps threads: a SQLite file or a PostgreSQL database."""


def resolve_db(db: str | None, graph: CompiledGraph | StateGraph[Any] | None) -> Db:
    """``--db`` (a SQLite path or a ``postgresql://`` URL), else the target's own
    checkpointer's file or database, else the default file."""
    if db is not None:
        return PgTarget(db) if is_postgres_url(db) else Path(db)
    cp = graph.checkpointer if isinstance(graph, CompiledGraph) else None
    if isinstance(cp, SqliteCheckpointer):
        return cp.path
    if isinstance(cp, PostgresCheckpointer):
        return PgTarget(cp._db._dsn, cp.schema)
    return DEFAULT_DB


def _check_db_path(path: Path, must_exist: bool) -> None:
    # Two stat() calls: not worth a worker thread.
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a trigraph database")
    if must_exist and not path.exists():
        raise UsageError(f"no trigraph database at {path} (run a graph with --thread first)")


@asynccontextmanager
async def open_db(db: Db, *, must_exist: bool) -> AsyncIterator[Checkpointer]:
    """A checkpointer on *db* (a SQLite file or a PostgreSQL database), open for the block.

    With *must_exist*, a missing SQLite file is an error rather than a new
    database (inspecting a thread never creates a file). A PostgreSQL
    database gets trigraph's schema on first use.

    Cancellation:
      Entering is a checkpoint; leaving closes the connection(s), shielded.

    Raises:
      UsageError: *db* is missing (with *must_exist*), a folder, not a
        trigraph database, from a newer trigraph, or a server that cannot
        be reached or refuses the login (within its connect timeout).
    """
    cp: SqliteCheckpointer | PostgresCheckpointer
    try:
        if isinstance(db, PgTarget):
            cp = await PostgresCheckpointer(db.dsn, schema=db.schema).__aenter__()
        else:
            _check_db_path(db, must_exist)
            cp = await SqliteCheckpointer(db).__aenter__()
    except (CheckpointError, ImportError, ValueError) as exc:
        raise UsageError(one_line(exc)) from exc
    try:
        yield cp
    finally:
        with trio.CancelScope(shield=True):
            await cp.aclose()


def resume_command(target: str, thread: str, db: str | None, *extra: str) -> str:
    """The shell command that resumes *thread*."""
    words = ["trigraph", "resume", target, "--thread", thread]
    if db is not None:
        words += ["--db", db]
    return shlex.join([*words, *extra])


@attrs.define
class Job:
    """One run to execute and render.

    Attributes:
      graph: the target graph (compiled with a checkpointer on *db* when
        *thread* is set).
      target: the target as the user typed it, for the resume hint.
      input: the run's input: a state, ``None`` or a ``Command``.
      db_option: ``--db`` as given (``None``: not given), for hints.
      show: the stream modes to show or write; ``None`` for the default.
    """

    graph: CompiledGraph | StateGraph[Any]
    target: str
    input: Any
    thread: str | None = None
    db: Db = DEFAULT_DB
    db_option: str | None = None
    show: frozenset[str] | None = None
    json: bool = False

    def hint(self, *extra: str) -> str:
        assert self.thread is not None
        db = None if self.db_option is None else str(resolve_db(self.db_option, None))
        return resume_command(self.target, self.thread, db, *extra)


@attrs.define
class _Seen:
    """What the command needs to remember of a run's events."""

    started: bool = False
    state: Any = None
    has_state: bool = False
    interrupts: list[Interrupted] = attrs.Factory(list)

    def see(self, event: Event) -> None:
        if isinstance(event, TaskStart):
            self.started = True
        elif event.ns == ():
            if isinstance(event, Values):
                self.state, self.has_state = event.state, True
            elif isinstance(event, Interrupted):
                self.interrupts.append(event)


def execute(job: Job) -> int:
    """Run *job* in a new ``trio.run``; return the exit status."""
    return trio.run(_execute, job)


async def _execute(job: Job) -> int:
    show = job.show or (JSON_MODES if job.json else LIVE_MODES)
    renderer: Renderer = (
        JsonRenderer(show) if job.json else LiveRenderer(make_console(), show)
    )
    # Step boundaries and the final state come from these, whatever is shown.
    modes = show | {"tasks", "values"}
    if job.thread is None:
        return await _attempt(with_checkpointer(job.graph, None), job, renderer, modes)
    async with open_db(job.db, must_exist=False) as cp:
        return await _attempt(with_checkpointer(job.graph, cp), job, renderer, modes)


async def _attempt(
    graph: CompiledGraph, job: Job, renderer: Renderer, modes: frozenset[str]
) -> int:
    seen = _Seen()
    try:
        try:
            cancelled = await _stream(graph, job, renderer, modes, seen)
        finally:
            renderer.close()
    except BrokenPipeError:
        raise  # the reader went away; dispatch() ends quietly
    except Exception as exc:
        return await _failed(graph, job, seen, exc)
    if cancelled:
        await _cancelled(graph, job)
        return 130
    if not seen.has_state and job.thread is not None:
        seen.state = (await graph.get_state(job.thread)).values
    renderer.finish(seen.state, seen.interrupts)
    if seen.interrupts and job.thread is not None:
        print(f"paused; {_how_to_continue(job, seen.interrupts)}", file=sys.stderr, flush=True)
    return 0


def _how_to_continue(job: Job, interrupts: list[Interrupted]) -> str:
    # interrupt() has an id and wants an answer; interrupt_before/after does not.
    questions = [i for i in interrupts if i.id]
    if not questions:
        return f"continue with: {job.hint()}"
    if len(questions) == 1:
        return f"answer with: {job.hint('--resume', 'JSON')}"
    answers = ", ".join(f'"{i.id}": JSON' for i in questions)
    return (f"answer with: {job.hint()} (it asks for each answer), "
            f"or add --resume '{{{answers}}}'")


async def _stream(
    graph: CompiledGraph, job: Job, renderer: Renderer, modes: frozenset[str], seen: _Seen
) -> bool:
    """Stream the run into *renderer*; return whether Ctrl-C cancelled it."""
    run_scope = trio.CancelScope()
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_ctrl_c, signals, run_scope)
                with run_scope:
                    async with graph.stream(
                        job.input, modes=tuple(modes), thread=job.thread
                    ) as events:
                        async for event in events:
                            seen.see(event)
                            renderer.event(event)
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            failure = collapse(group)
            if failure is group:
                raise
            raise failure from None
    return run_scope.cancelled_caught


async def _watch_ctrl_c(signals: AsyncIterator[int], run_scope: trio.CancelScope) -> None:
    async for _ in signals:
        if not run_scope.cancel_called:
            run_scope.cancel()
            continue
        # Teardown can wait on a sync node's thread; a second Ctrl-C does not.
        print("\ntrigraph: interrupted again; exiting without waiting for the run",
              file=sys.stderr, flush=True)
        os._exit(130)


async def _where_thread_is(graph: CompiledGraph, job: Job) -> str:
    assert job.thread is not None
    try:
        snapshot = await graph.get_state(job.thread)
    except KeyError:
        return f"thread {job.thread!r} has no checkpoint yet"
    nxt = f" (next: {', '.join(snapshot.next)})" if snapshot.next else ""
    return f"thread {job.thread!r} keeps step {snapshot.step}{nxt}"


async def _cancelled(graph: CompiledGraph, job: Job) -> None:
    print(file=sys.stderr)
    if job.thread is None:
        error("cancelled (run with --thread ID to be able to resume)")
        return
    error(f"cancelled; {await _where_thread_is(graph, job)}")
    print(f"resume it with: {job.hint()}", file=sys.stderr, flush=True)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TrigraphError):
        return one_line(exc)
    return f"{type(exc).__name__}: {one_line(exc)}"


def _node_and_step(exc: BaseException) -> tuple[str, str] | None:
    """The outermost ``in node 'x', step N`` note the engine added, if any."""
    for note in reversed(getattr(exc, "__notes__", ())):
        match = _NODE_NOTE.match(note)
        if match:
            return match["node"], match["step"]
    return None


async def _failed(graph: CompiledGraph, job: Job, seen: _Seen, exc: Exception) -> int:
    leaves = _leaves(exc)
    busy = [e for e in leaves if isinstance(e, ThreadBusyError)]
    if busy:  # another run has the thread: nothing to fix, nothing to resume here
        error(one_line(busy[0]))
        return 1
    # The engine's input checks raise before any node starts and add no note;
    # a note means user code (a router, a reducer) ran and failed.
    bad_input = not seen.started and all(
        isinstance(e, _INPUT_ERRORS) and not getattr(e, "__notes__", None) for e in leaves
    )
    for leaf in leaves:
        where = _node_and_step(leaf)
        if where is not None:
            error(f"error in node {where[0]!r}, step {where[1]}: {_describe(leaf)}")
        elif bad_input:
            error(_describe(leaf))
        else:
            error(f"error: {_describe(leaf)}")
    if bad_input:
        return 2
    if job.thread is not None:
        try:
            position = await _where_thread_is(graph, job)
        except TrigraphError:  # the database itself failed; the error says so
            return 1
        print(f"{position}; after a fix, resume it with: {job.hint()}",
              file=sys.stderr, flush=True)
    return 1

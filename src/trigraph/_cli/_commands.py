"""The commands of the ``trigraph`` console script and their argument parser.

Each ``cmd_*`` function takes the parsed arguments and returns the exit
status; the slow parts (imports of the target, reading the database) happen
outside Trio or inside one ``trio.run`` per phase. :func:`dispatch` is the
one place where errors become messages: a :class:`UsageError` is one line
and status 2, Ctrl-C outside a run is status 130, and anything unexpected
is one line and status 1 (``TRIGRAPH_DEBUG=1`` shows its traceback instead).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import trio

from .._abc import CheckpointRecord
from .._compiled import CompiledGraph
from .._events import MODES
from .._graph import StateGraph
from .._types import Command, Interrupt, StateSnapshot
from .._util import Sentinel
from .._version import __version__
from ._inspect import read_history, read_state
from ._load import UsageError, load_target, one_line, with_checkpointer
from ._render import (
    make_console,
    print_history,
    print_state,
    print_threads,
    snapshot_dict,
    to_json,
)
from ._run import Db, Job, error, execute, open_db, resolve_db

__all__ = ["dispatch"]

_NO_ANSWER = Sentinel("NO_ANSWER")


# -- argument helpers --------------------------------------------------------


def _read_json(text: str, option: str) -> Any:
    """Parse ``JSON`` or ``@file`` (``@-``: stdin)."""
    if text.startswith("@"):
        name = text[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{option}: cannot read {name}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{option} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _modes(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    modes = frozenset(m.strip() for m in text.split(",") if m.strip())
    unknown = modes - MODES
    if unknown or not modes:
        raise UsageError(
            f"--mode: unknown mode(s) {', '.join(sorted(unknown)) or '(none given)'}; "
            f"choose from {','.join(sorted(MODES))}"
        )
    return modes


def _unknown_thread(thread: str, db: Db) -> UsageError:
    return UsageError(
        f"no thread {thread!r} in {db} ('trigraph threads --db {shlex.quote(str(db))}' lists them)"
    )


# -- run, resume, demo -------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``trigraph run TARGET``: run a graph and render its stream."""
    graph = load_target(args.target)
    data = {} if args.input is None else _read_json(args.input, "--input")
    db = resolve_db(args.db, graph)
    return execute(Job(graph, args.target, data, args.thread, db, args.db,
                       _modes(args.mode), args.json))


async def _current_state(
    graph: CompiledGraph | StateGraph[Any], db: Db, thread: str
) -> StateSnapshot:
    async with open_db(db, must_exist=True) as cp:
        try:
            return await with_checkpointer(graph, cp).get_state(thread)
        except KeyError:
            raise _unknown_thread(thread, db) from None


def _ask(interrupts: Sequence[Interrupt], thread: str) -> Any:
    """Prompt on the terminal for an answer to each interrupt."""
    answers: dict[str, Any] = {}
    for intr in interrupts:
        question = intr.value if isinstance(intr.value, str) else to_json(intr.value)
        sys.stderr.write(f"node {intr.node!r} asks: {question}\nanswer (JSON or text)> ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise UsageError(
                f"thread {thread!r} waits for an answer to node {intr.node!r}; "
                "pass it with --resume JSON"
            )
        text = line.strip()
        try:
            answers[intr.id] = json.loads(text)
        except json.JSONDecodeError:
            answers[intr.id] = text
    return answers[interrupts[0].id] if len(interrupts) == 1 else answers


def cmd_resume(args: argparse.Namespace) -> int:
    """``trigraph resume TARGET --thread ID``: continue a thread, answering interrupts."""
    graph = load_target(args.target)
    answer = _NO_ANSWER if args.resume is None else _read_json(args.resume, "--resume")
    db = resolve_db(args.db, graph)
    snapshot = trio.run(_current_state, graph, db, args.thread)
    data: Any = None
    if snapshot.interrupts:
        if answer is _NO_ANSWER:
            answer = _ask(snapshot.interrupts, args.thread)
        data = Command(resume=answer)
    elif answer is not _NO_ANSWER:
        raise UsageError(
            f"thread {args.thread!r} has no pending interrupt to answer; "
            "leave out --resume to continue it"
        )
    elif not snapshot.next:
        raise UsageError(
            f"thread {args.thread!r} is done (step {snapshot.step}); nothing to resume"
        )
    return execute(Job(graph, args.target, data, args.thread, db, args.db,
                       _modes(args.mode), args.json))


def cmd_demo(args: argparse.Namespace) -> int:
    """``trigraph demo [research|agent]``: the research chatbot, or the travel agent
    that asks for approval; with a local model unless one is configured."""
    if args.variant == "agent":
        from ._approve import run_agent_demo

        return run_agent_demo(args.db, args.json)
    from ._demo import TARGET, graph

    thread = f"demo-{secrets.token_hex(3)}"
    db = resolve_db(args.db, None)
    question = {"question": "How do Trio nurseries make parallel research safe?"}
    status = execute(Job(graph, TARGET, question, thread, db, args.db, None, args.json))
    if status == 0:
        where = "" if args.db is None else f" --db {shlex.quote(str(db))}"
        print(f"\nthe demo ran on thread {thread!r}, kept in {db}; look at it with:\n"
              f"  trigraph state --thread {thread}{where}\n"
              f"  trigraph history --thread {thread}{where}", file=sys.stderr, flush=True)
    return status


# -- inspection --------------------------------------------------------------


async def _threads(db: Db, as_json: bool) -> int:
    async with open_db(db, must_exist=True) as cp:
        rows = []
        for thread in await cp.threads():
            found = await read_state(cp, thread)
            if found is not None:
                rows.append((thread, found[0], found[1].created_at))
    if as_json:
        for thread, snapshot, created_at in rows:
            print(to_json({"thread": thread, **snapshot_dict(snapshot, created_at)}))
    else:
        print_threads(make_console(), str(db), rows)
    return 0


def cmd_threads(args: argparse.Namespace) -> int:
    """``trigraph threads``: the threads of a database."""
    return trio.run(_threads, resolve_db(args.db, None), args.json)


def _optional_target(args: argparse.Namespace) -> CompiledGraph | StateGraph[Any] | None:
    return None if args.target is None else load_target(args.target)


async def _state(args: argparse.Namespace, graph: CompiledGraph | StateGraph[Any] | None) -> int:
    db = resolve_db(args.db, graph)
    thread = args.thread
    record: CheckpointRecord | None
    async with open_db(db, must_exist=True) as cp:
        if graph is None:
            found = await read_state(cp, thread)
            if found is None:
                raise _unknown_thread(thread, db)
            snapshot, record = found
        else:
            try:
                snapshot = await with_checkpointer(graph, cp).get_state(thread)
            except KeyError:
                raise _unknown_thread(thread, db) from None
            record = await cp.get(thread, "", snapshot.checkpoint_id)
    if args.json:
        created = None if record is None else record.created_at
        print(to_json({"thread": thread, **snapshot_dict(snapshot, created)}))
    else:
        print_state(make_console(), thread, snapshot, record)
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    """``trigraph state --thread ID [TARGET]``: a thread's latest state."""
    return trio.run(_state, args, _optional_target(args))


async def _history(args: argparse.Namespace, graph: CompiledGraph | StateGraph[Any] | None) -> int:
    db = resolve_db(args.db, graph)
    thread = args.thread
    async with open_db(db, must_exist=True) as cp:
        records = {r.id: r.created_at for r in await cp.history(thread, "")}
        if not records:
            raise _unknown_thread(thread, db)
        rows: list[tuple[StateSnapshot, float | None]]
        if graph is None:
            rows = [(s, r.created_at) for s, r in await read_history(cp, thread)]
        else:
            snapshots = await with_checkpointer(graph, cp).get_state_history(thread)
            rows = [(s, records.get(s.checkpoint_id)) for s in snapshots]
    if args.json:
        for snapshot, created_at in rows:
            print(to_json(snapshot_dict(snapshot, created_at)))
    else:
        print_history(make_console(), thread, rows)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """``trigraph history --thread ID [TARGET]``: every checkpoint of a thread."""
    return trio.run(_history, args, _optional_target(args))


def cmd_mermaid(args: argparse.Namespace) -> int:
    """``trigraph mermaid TARGET``: the graph as a Mermaid flowchart."""
    print(with_checkpointer(load_target(args.target), None).to_mermaid())
    return 0


# -- the parser --------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


_TARGET_HELP = "a graph: MODULE:ATTR or FILE.py:ATTR (ATTR may be left out if there is one)"
_DB_HELP = ("the SQLite checkpoint file (default: ./.trigraph/threads.db), or a "
            "postgresql:// URL (needs the postgres extra)")


def _parser() -> _Parser:
    parser = _Parser(
        prog="trigraph",
        description="Run and inspect trigraph graphs; durable threads live in SQLite "
                    "or PostgreSQL.",
        epilog="exit status: 0 done or paused, 1 the run failed, 2 bad usage or input, "
               "130 cancelled (Ctrl-C)",
    )
    parser.add_argument("--version", action="version", version=f"trigraph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, fn: Any) -> _Parser:
        p: _Parser = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    def streaming(p: _Parser) -> None:
        p.add_argument("--db", metavar="PATH|URL", help=_DB_HELP)
        p.add_argument("--mode", metavar="MODES", help=(
            "comma-separated stream modes to show: values,updates,custom,messages,tasks "
            "(default: tasks,messages,custom; with --json: tasks,updates,custom,messages)"))
        p.add_argument("--json", action="store_true",
                       help="print one JSON object per event (JSON Lines)")

    p = command("run", "run a graph and show its stream live", cmd_run)
    p.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    p.add_argument("--input", metavar="JSON|@FILE", help="the input state (default: {})")
    p.add_argument("--thread", metavar="ID", help="run on this durable thread")
    streaming(p)

    p = command("resume", "continue a paused, failed or cancelled thread", cmd_resume)
    p.add_argument("target", metavar="TARGET", help=_TARGET_HELP)
    p.add_argument("--thread", metavar="ID", required=True, help="the thread to resume")
    p.add_argument("--resume", metavar="JSON|@FILE",
                   help="the answer to a pending interrupt() (else you are asked)")
    streaming(p)

    p = command("threads", "list the threads of a checkpoint database", cmd_threads)
    p.add_argument("--db", metavar="PATH|URL", help=_DB_HELP)
    p.add_argument("--json", action="store_true", help="print JSON Lines")

    for name, help, fn in (("state", "show a thread's latest state", cmd_state),
                           ("history", "list a thread's checkpoints, newest first", cmd_history)):
        p = command(name, help, fn)
        p.add_argument("target", metavar="TARGET", nargs="?",
                       help="the thread's graph, to decode its values exactly (optional)")
        p.add_argument("--thread", metavar="ID", required=True, help="the thread")
        p.add_argument("--db", metavar="PATH|URL", help=_DB_HELP)
        p.add_argument("--json", action="store_true", help="print JSON")

    p = command("mermaid", "print a graph as a Mermaid flowchart", cmd_mermaid)
    p.add_argument("target", metavar="TARGET", help=_TARGET_HELP)

    from ._serve import add_parsers

    add_parsers(command, _TARGET_HELP)

    p = command("demo", "run a demo offline: a research chatbot that streams its answer, "
                        "or ('agent') a tools agent that asks you to approve a booking",
                cmd_demo)
    p.add_argument("variant", nargs="?", choices=("research", "agent"), default="research",
                   help="which demo (default: research)")
    p.add_argument("--db", metavar="PATH|URL", help=_DB_HELP)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per event (JSON Lines)")
    return parser


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Parse *argv*, run the command, and turn its errors into an exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        error("cancelled")
        return 130
    except BrokenPipeError:
        # The reader went away (`trigraph ... | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("TRIGRAPH_DEBUG"):
            raise
        error(f"error: {type(exc).__name__}: {one_line(exc)}")
        return 1

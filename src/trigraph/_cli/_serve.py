"""``trigraph serve`` and ``trigraph worker``: the server extra's commands.

Targets name graphs as ``TARGET`` (its graph id is the attribute name) or
``ID=TARGET``; ``--config langgraph.json`` adds the ``graphs`` of a
LangGraph-style config (paths relative to the file). Everything that can be
checked before serving is checked first and becomes one :class:`UsageError`
line: a missing extra, a bad target or config, a duplicate graph id, a
database that cannot be opened. SIGINT and SIGTERM stop the server cleanly
(status 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from .._compiled import CompiledGraph
from .._exceptions import CheckpointError
from .._graph import StateGraph
from ..postgres._dsn import redact_dsn
from ._load import DEFAULT_DB, UsageError, _find_graph, _import_file, _is_path, _split, load_target

__all__ = ["cmd_serve", "cmd_worker"]

_MISSING = ("trigraph {cmd} needs the 'server' extra (Starlette, msgspec, Hypercorn, "
            "sse-starlette): pip install 'trigraph[server]'")


def _require_extra(cmd: str) -> None:
    try:
        import hypercorn  # noqa: F401
        import msgspec  # noqa: F401
        import sse_starlette  # noqa: F401
        import starlette  # noqa: F401
    except ImportError:
        raise UsageError(_MISSING.format(cmd=cmd)) from None


def _graph_id(target: str) -> str:
    source, attr = _split(target)
    if attr is not None:
        return attr.rsplit(".", 1)[-1]
    if _is_path(source):
        name, _ = _find_graph(_import_file(source), source)
        return name
    import importlib

    name, _ = _find_graph(importlib.import_module(source), source)
    return name


def _from_config(path: str) -> dict[str, str]:
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--config: {path} is not valid JSON: {exc.msg} "
                         f"(line {exc.lineno})") from None
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if not isinstance(graphs, dict) or not graphs:
        raise UsageError(f"--config: {path} has no \"graphs\" object naming graphs")
    out: dict[str, str] = {}
    for graph_id, target in graphs.items():
        if not isinstance(target, str):
            raise UsageError(f"--config: graph {graph_id!r} must name a target string")
        source, _, attr = target.rpartition(":")
        if source and _is_path(source) and not Path(source).is_absolute():
            target = f"{(file.parent / source).resolve()}:{attr}"
        out[graph_id] = target
    return out


def load_graphs(
    targets: list[str], config: str | None
) -> dict[str, CompiledGraph | StateGraph[Any]]:
    """Graph id -> graph for *targets* (``TARGET`` or ``ID=TARGET``) and *config*."""
    named: dict[str, str] = {} if config is None else _from_config(config)
    for target in targets:
        graph_id, eq, rest = target.partition("=")
        if eq and graph_id and ":" not in graph_id and "/" not in graph_id:
            target = rest
        else:
            graph_id = _graph_id(target)
        if graph_id in named:
            raise UsageError(f"two graphs are named {graph_id!r}; name one as ID=TARGET")
        named[graph_id] = target
    if not named:
        raise UsageError("name at least one graph to serve: TARGET, ID=TARGET or --config")
    return {graph_id: load_target(target) for graph_id, target in named.items()}


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="trigraph: %(levelname)s %(name)s: %(message)s")


def _db(args: argparse.Namespace) -> str:
    db = args.db or str(DEFAULT_DB)
    if "://" not in db and Path(db).is_dir():
        raise UsageError(f"--db {db} is a folder, not a database file")
    return db


def cmd_serve(args: argparse.Namespace) -> int:
    """``trigraph serve TARGET...``: the LangGraph Server API over HTTP."""
    _require_extra("serve")
    from ..server import serve

    graphs = load_graphs(args.targets, args.config)
    db = _db(args)
    api_key = args.api_key or os.environ.get("TRIGRAPH_API_KEY") or None
    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    _setup_logging()

    def announce(port: int) -> None:
        url = f"http://{args.host}:{port}"
        lines = [f"trigraph serve: listening on {url} (graphs: {', '.join(sorted(graphs))}; "
                 f"database: {redact_dsn(db)}; workers: {args.workers})"]
        if api_key is None and args.host in ("127.0.0.1", "localhost", "::1"):
            lines.append(f"trigraph serve: no API key: listening on {args.host} only; set "
                         "--api-key or TRIGRAPH_API_KEY to serve other machines")
        elif api_key is None:
            lines.append(f"trigraph serve: WARNING: no API key on {args.host}: anyone who "
                         "reaches this port can run these graphs")
        else:
            lines.append("trigraph serve: every API route needs the x-api-key header (the page at "
                         "/ui asks for it)")
        lines.append(f"trigraph serve: the page is at {url}/ui")
        print("\n".join(lines), file=sys.stderr, flush=True)

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                port = await nursery.start(lambda task_status: serve(
                    graphs, db=db, host=args.host, port=args.port, workers=args.workers,
                    api_key=api_key, cors_origins=args.cors_origin or (),
                    max_body=args.max_body, lease=args.lease, task_status=task_status))
                announce(port)
                async for _ in signals:
                    break
                print("trigraph serve: stopping", file=sys.stderr, flush=True)
                nursery.cancel_scope.cancel()
        return 0

    return _run(main)


def cmd_worker(args: argparse.Namespace) -> int:
    """``trigraph worker TARGET... --db URL``: execute queued runs."""
    _require_extra("worker")
    from ..server import run_worker

    graphs = load_graphs(args.targets, args.config)
    db = _db(args)
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be >= 1, got {args.concurrency}")
    _setup_logging()

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await nursery.start(lambda task_status: run_worker(
                    graphs, db=db, concurrency=args.concurrency, lease=args.lease,
                    task_status=task_status))
                print(f"trigraph worker: running graphs {', '.join(sorted(graphs))} from "
                      f"{redact_dsn(db)} ({args.concurrency} at once)", file=sys.stderr,
                      flush=True)
                async for _ in signals:
                    break
                print("trigraph worker: stopping", file=sys.stderr, flush=True)
                nursery.cancel_scope.cancel()
        return 0

    return _run(main)


def _run(main: Any) -> int:
    try:
        return int(trio.run(main))
    except OSError as exc:
        raise UsageError(f"cannot serve: {exc.strerror or exc}") from None
    except (CheckpointError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except BaseExceptionGroup as group:
        found = group.subgroup((OSError, CheckpointError, ValueError))
        if found is None:
            raise
        first: BaseException = found.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise UsageError(f"cannot serve: {first}") from None


def add_parsers(command: Any, target_help: str) -> None:
    """Add ``serve`` and ``worker`` to the parser (*command* makes a subparser)."""
    db_help = ("the database: a SQLite file (default: ./.trigraph/threads.db) or a "
               "postgresql:// URL")
    p = command("serve", "serve graphs over HTTP with the LangGraph Server API "
                         "(langgraph-sdk works unchanged)", cmd_serve)
    p.add_argument("targets", metavar="TARGET", nargs="*",
                   help=f"{target_help}; ID=TARGET names the graph (default: ATTR)")
    p.add_argument("--config", metavar="FILE", help="a langgraph.json naming the graphs")
    p.add_argument("--db", metavar="PATH|URL", help=db_help)
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=2024, help="the port (default 2024; 0: any)")
    p.add_argument("--workers", type=int, default=10, metavar="N",
                   help="runs this process executes at once (default 10; 0: API only)")
    p.add_argument("--api-key", metavar="KEY",
                   help="require this key in x-api-key (default: $TRIGRAPH_API_KEY)")
    p.add_argument("--cors-origin", metavar="ORIGIN", action="append",
                   help="allow browser calls from ORIGIN (repeatable; '*' for any)")
    p.add_argument("--max-body", type=int, default=10 * 1024 * 1024, metavar="BYTES",
                   help="the largest request body (default 10 MiB)")
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="how long a dead worker's runs wait before another takes them over")

    p = command("worker", "execute queued runs of graphs (for a PostgreSQL deployment)",
                cmd_worker)
    p.add_argument("targets", metavar="TARGET", nargs="*", help=target_help)
    p.add_argument("--config", metavar="FILE", help="a langgraph.json naming the graphs")
    p.add_argument("--db", metavar="PATH|URL", required=True, help=db_help)
    p.add_argument("--concurrency", "--workers", type=int, default=10, metavar="N",
                   help="runs executed at once (default 10)")
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="how long a dead worker's runs wait before another takes them over")

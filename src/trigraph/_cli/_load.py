"""Finding the graph a command names, and making it durable when asked.

A target is ``MODULE:ATTR`` (an importable module) or ``FILE.py:ATTR``; the
attribute may be dotted, and may be left out when the module holds exactly
one graph (or one named ``graph``). It must be a ``CompiledGraph`` or a
``StateGraph``. The invariant: whatever goes wrong here (a missing file, a
module that fails to import, an attribute that is not a graph) becomes one
:class:`UsageError` with a one-line message, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._compiled import CompiledGraph
from .._graph import StateGraph

if TYPE_CHECKING:
    from .._abc import Checkpointer

__all__ = ["DEFAULT_DB", "UsageError", "load_target", "one_line", "with_checkpointer"]

DEFAULT_DB = Path(".trigraph") / "threads.db"
"""Where durable threads live unless ``--db`` says otherwise (relative to the
current directory)."""


class UsageError(Exception):
    """What the user asked for cannot be done as asked; exit status 2."""


def one_line(exc: BaseException) -> str:
    """*exc*'s message on one line (its type name when it has none)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]  # KeyError's str() adds quotes
    return text or type(exc).__name__


def _split(target: str) -> tuple[str, str | None]:
    source, sep, attr = target.rpartition(":")
    if not sep or "/" in attr or "\\" in attr:
        return target, None  # no attribute (a bare "C:\\x.py" is a path, too)
    if not attr:
        return source, None
    if not source:
        raise UsageError(f"target {target!r} names no module or file before ':'")
    return source, attr


def _is_path(source: str) -> bool:
    return source.endswith(".py") or os.sep in source or "/" in source


def _import_file(source: str) -> ModuleType:
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"no such file: {source}")
    path = path.resolve()
    # Named by its stem, as `python -m` would name it from its folder, so the
    # attrs/dataclass types it defines get the same checkpoint name in every
    # process (and under MODULE:ATTR); a stem that is taken gets a stable suffix.
    name = path.stem
    taken = sys.modules.get(name)
    if taken is not None and getattr(taken, "__file__", None) != str(path):
        name = f"{name}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    elif taken is not None:
        return taken
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {source}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    # Let the file import its neighbours, as `python file.py` would.
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageError(
            f"importing {source} failed: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    return module


def _import_module(source: str) -> ModuleType:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script's path lacks the cwd
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if source == missing or source.startswith(missing + "."):
            raise UsageError(f"no module named {source!r} (and no file of that name)") from exc
        raise UsageError(f"importing {source} failed: {one_line(exc)}") from exc
    except Exception as exc:
        raise UsageError(
            f"importing {source} failed: {type(exc).__name__}: {one_line(exc)}"
        ) from exc


def _find_graph(module: ModuleType, source: str) -> tuple[str, Any]:
    found = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, (CompiledGraph, StateGraph)) and not name.startswith("_")
    }
    if "graph" in found:
        return "graph", found["graph"]
    if len(found) == 1:
        return next(iter(found.items()))
    if not found:
        raise UsageError(f"{source} holds no graph; name one as {source}:ATTR")
    names = ", ".join(sorted(found))
    raise UsageError(f"{source} holds several graphs ({names}); name one as {source}:ATTR")


def load_target(target: str) -> CompiledGraph | StateGraph[Any]:
    """Import *target* and return the graph it names.

    Raises:
      UsageError: the module or file does not exist or fails to import, or
        the attribute is missing or is not a graph.
    """
    source, attr = _split(target)
    module = _import_file(source) if _is_path(source) else _import_module(source)
    if attr is None:
        attr, obj = _find_graph(module, source)
    else:
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise UsageError(f"{source} has no attribute {attr!r}") from None
    if not isinstance(obj, (CompiledGraph, StateGraph)):
        raise UsageError(
            f"{source}:{attr} is not a graph but a value of type {type(obj).__name__}; "
            "a target names a CompiledGraph or a StateGraph"
        )
    return obj


def with_checkpointer(
    graph: CompiledGraph | StateGraph[Any], checkpointer: Checkpointer | None
) -> CompiledGraph:
    """*graph* compiled (again) to use *checkpointer*, keeping its interrupts.

    A ``StateGraph`` is compiled; a ``CompiledGraph`` gets the checkpointer
    with :meth:`CompiledGraph.with_checkpointer` (same nodes, interrupts and
    name). With *checkpointer* ``None`` a ``CompiledGraph`` is returned as it is.

    Raises:
      UsageError: the graph does not compile (``GraphValidationError``).
    """
    from .._exceptions import GraphValidationError

    try:
        if isinstance(graph, StateGraph):
            return graph.compile(checkpointer=checkpointer)
        if checkpointer is None or graph.checkpointer is checkpointer:
            return graph
        return graph.with_checkpointer(checkpointer)
    except GraphValidationError as exc:
        raise UsageError(f"the graph does not compile: {one_line(exc)}") from exc

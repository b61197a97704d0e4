"""Rendering a run's events and a thread's checkpoints for a terminal or a pipe.

Two renderers take the same events. :class:`LiveRenderer` writes lines for
people: one line per superstep with the nodes that ran and their durations,
an LLM's tokens as they arrive, custom events, and the final state; on a
terminal a transient spinner names the nodes still running. :class:`JsonRenderer`
writes one JSON object per event (JSON Lines) for programs. Both flush after
every write, so a reader at the other end of a pipe or a pseudo terminal sees
each token when it arrives, not when a buffer fills. Colours follow rich's
rules (``NO_COLOR`` turns them off); on a stream that is not a terminal no
control code is written at all.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any

import attrs
from rich import box
from rich.console import Console
from rich.pretty import Pretty
from rich.status import Status
from rich.table import Table
from rich.text import Text

from .._abc import CheckpointRecord
from .._events import Custom, Event, Interrupted, TaskEnd, TaskStart, Token, Update, Values
from .._types import Interrupt, StateSnapshot
from ._inspect import Opaque

__all__ = [
    "JsonRenderer",
    "LiveRenderer",
    "Renderer",
    "event_dict",
    "make_console",
    "print_history",
    "print_state",
    "print_threads",
    "snapshot_dict",
    "to_json",
]


def make_console() -> Console:
    """A console on stdout that never reads user data as markup or emoji codes."""
    return Console(file=sys.stdout, markup=False, emoji=False, highlight=False)


def _default(obj: Any) -> Any:
    if isinstance(obj, Opaque):
        return obj.fields
    if attrs.has(type(obj)):
        kind = getattr(type(obj), "type", None)  # a message's role: "ai", "human", ...
        head = {"type": kind} if isinstance(kind, str) else {}
        return head | {a.name: getattr(obj, a.name) for a in attrs.fields(type(obj))}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    return repr(obj)


def to_json(obj: Any) -> str:
    """*obj* as one line of JSON; what JSON cannot hold becomes its ``repr``."""
    return json.dumps(obj, default=_default, ensure_ascii=False)


def event_dict(event: Event) -> dict[str, Any]:
    """``{"type": ..., "step": ..., "ns": [...], <the other fields>}``."""
    out: dict[str, Any] = {"type": type(event).__name__, "step": event.step, "ns": list(event.ns)}
    for field in attrs.fields(type(event)):
        if field.name not in out:
            out[field.name] = getattr(event, field.name)
    return out


def _one_line(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(ns: Sequence[str], node: str) -> str:
    return "/".join([*(part.split(":", 1)[0] for part in ns), node])


class Renderer:
    """What a command feeds a run's events to (the base renders nothing)."""

    def event(self, event: Event) -> None:
        """Render one event as it arrives."""

    def finish(self, state: Any, interrupts: Sequence[Interrupted]) -> None:
        """Render the end of a run that reached END or paused."""

    def close(self) -> None:
        """Stop any live display; called however the run ended."""


class JsonRenderer(Renderer):
    """One JSON object per event of the *modes* asked for (and every
    ``Interrupted``), then ``{"type": "Final", "state": ..., "interrupts": [...]}``."""

    def __init__(self, modes: frozenset[str], file: IO[str] | None = None) -> None:
        self._modes = modes
        self._file = file or sys.stdout
        self._step = 0

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(to_json(obj) + "\n")
        self._file.flush()

    def event(self, event: Event) -> None:
        if event.ns == () and isinstance(event, (Values, Interrupted)):
            self._step = max(self._step, event.step)
        if isinstance(event, Interrupted) or event.mode in self._modes:
            self._write(event_dict(event))

    def finish(self, state: Any, interrupts: Sequence[Interrupted]) -> None:
        step = self._step
        self._write({"type": "Final", "step": step, "ns": [], "state": state,
                     "interrupts": [event_dict(i) for i in interrupts]})


class LiveRenderer(Renderer):
    """Lines for people; *show* is the set of stream modes to display.

    On a terminal a transient spinner names the running nodes; lines are
    printed above it, and it is stopped while an LLM's tokens are written
    (they are written raw, as they come, with no line to wrap them in).
    """

    def __init__(self, console: Console, show: frozenset[str]) -> None:
        self._console = console
        self._show = show
        self._status = Status("", console=console) if console.is_terminal else None
        self._status_text = ""
        self._status_on = False
        self._step: int | None = None
        self._running: dict[str, str] = {}  # task id -> node, of the current step
        self._ended: list[TaskEnd] = []
        self._tokens: tuple[tuple[str, ...], str, int] | None = None  # the open token line

    # -- output primitives ------------------------------------------------

    def _refresh_status(self) -> None:
        status = self._status
        if status is None:
            return
        if not self._running or self._tokens is not None:
            if self._status_on:
                status.stop()
                self._status_on = False
            return
        text = f"step {self._step}: {', '.join(dict.fromkeys(self._running.values()))}"
        if text != self._status_text:
            self._status_text = text
            status.update(Text(text, style="dim"))
        if not self._status_on:
            status.start()
            self._status_on = True

    def _end_tokens(self) -> None:
        if self._tokens is not None:
            self._tokens = None
            self._console.file.write("\n")
            self._console.file.flush()

    def _line(self, renderable: Any) -> None:
        self._end_tokens()
        self._console.print(renderable, soft_wrap=True)
        self._console.file.flush()

    # -- events -----------------------------------------------------------

    def _flush_step(self, cancelled: Sequence[str] = ()) -> None:
        if not self._ended and not cancelled:
            return
        ended, self._ended = self._ended, []
        if "tasks" not in self._show:
            return
        line = Text(f"step {self._step}  ", style="bold")
        for i, end in enumerate(ended):
            if i:
                line.append(", ")
            node = _path(end.ns, end.node)
            if end.error is None:
                line.append(node, style="cyan")
                line.append(f" {end.duration:.2f}s", style="dim")
            else:
                line.append(node, style="red")
                line.append(f" failed after {end.duration:.2f}s", style="red")
        for i, node in enumerate(cancelled, len(ended)):
            if i:
                line.append(", ")
            line.append(f"{node} cancelled", style="yellow")
        self._line(line)

    def event(self, event: Event) -> None:
        if isinstance(event, Token):
            if "messages" in self._show:
                self._token(event)
            return
        if isinstance(event, TaskStart):
            if event.ns == ():
                if event.step != self._step:
                    self._flush_step()
                    self._step = event.step
                self._running[event.task_id] = event.node
        elif isinstance(event, TaskEnd):
            if event.ns == ():
                self._running.pop(event.task_id, None)
                self._ended.append(event)
        elif isinstance(event, Values):
            if event.ns == ():
                self._flush_step()
                if "values" in self._show:
                    self._line(Text(f"state after step {event.step}:", style="dim"))
                    self._line(Pretty(event.state, indent_guides=False))
        elif isinstance(event, Update):
            if "updates" in self._show:
                line = Text(f"  {_path(event.ns, event.node)} -> ", style="dim")
                line.append(_one_line(event.update))
                self._line(line)
        elif isinstance(event, Custom):
            if "custom" in self._show:
                line = Text(f"  {_path(event.ns, event.node)}: ", style="magenta")
                line.append(_one_line(event.data))
                self._line(line)
        elif isinstance(event, Interrupted):
            if event.ns == ():  # a paused task is not a cancelled one
                for task_id in [t for t, n in self._running.items() if n == event.node]:
                    del self._running[task_id]
            self._flush_step()
        self._refresh_status()

    def _token(self, event: Token) -> None:
        key = (event.ns, event.node, event.stream_id)
        if self._tokens != key:
            self._line(Text(f"{_path(event.ns, event.node)} says:", style="green"))
            self._tokens = key
            self._refresh_status()  # stops the spinner: tokens are written raw
        out = self._console.file
        out.write(event.text)
        out.flush()

    def finish(self, state: Any, interrupts: Sequence[Interrupted]) -> None:
        self._flush_step()
        self._line(Text("final state:" if not interrupts else "state so far:", style="bold"))
        self._line(Pretty(state, indent_guides=False))
        for intr in interrupts:
            line = Text(f"paused before node {intr.node!r}" if intr.value is None
                        else f"node {intr.node!r} asks: ", style="yellow bold")
            if intr.value is not None:
                line.append(_one_line(intr.value), style="yellow")
            self._line(line)

    def close(self) -> None:
        # A step that failed or was cancelled ends without Values.
        self._flush_step(cancelled=list(self._running.values()))
        self._running.clear()
        self._refresh_status()
        self._end_tokens()


# -- checkpoints -------------------------------------------------------------


def _when(created_at: float | None) -> str:
    if created_at is None:
        return ""
    return datetime.fromtimestamp(created_at).strftime("%m-%d %H:%M:%S")


def _interrupts(interrupts: Iterable[Interrupt]) -> str:
    return "; ".join(f"{i.node}: {_one_line(i.value, 60)}" for i in interrupts)


def snapshot_dict(snapshot: StateSnapshot, created_at: float | None) -> dict[str, Any]:
    """A snapshot as a JSON-ready dict."""
    return {
        "step": snapshot.step,
        "checkpoint_id": snapshot.checkpoint_id,
        "parent_checkpoint_id": snapshot.parent_checkpoint_id,
        "created_at": created_at,
        "next": list(snapshot.next),
        "interrupts": [{"node": i.node, "id": i.id, "value": i.value}
                       for i in snapshot.interrupts],
        "values": snapshot.values,
    }


def print_state(
    console: Console, thread: str, snapshot: StateSnapshot, record: CheckpointRecord | None
) -> None:
    """A thread's state: where it is, what runs next, what it waits for, its values."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("thread", thread)
    grid.add_row("step", str(snapshot.step))
    grid.add_row("checkpoint", snapshot.checkpoint_id)
    if record is not None:
        grid.add_row("written", _when(record.created_at))
    grid.add_row("next", ", ".join(snapshot.next) or "(nothing: the thread is done)")
    for intr in snapshot.interrupts:
        grid.add_row("interrupt", f"node {intr.node!r} asks {_one_line(intr.value)} (id {intr.id})")
    console.print(grid)
    console.print(Text("values", style="bold"))
    console.print(Pretty(snapshot.values, indent_guides=False))


def print_history(
    console: Console, thread: str, rows: Sequence[tuple[StateSnapshot, float | None]]
) -> None:
    """A table of a thread's checkpoints, newest first (with parents if it forked)."""
    table = Table(title=f"history of thread {thread!r}", box=box.SIMPLE, title_justify="left")
    forked = any(
        newer.parent_checkpoint_id != older.checkpoint_id
        for (newer, _), (older, _) in itertools.pairwise(rows)
    )
    table.add_column("step", no_wrap=True)
    table.add_column("checkpoint", no_wrap=True)
    if forked:
        table.add_column("parent", no_wrap=True)
    table.add_column("next")
    table.add_column("interrupts", min_width=10)
    table.add_column("written", no_wrap=True)
    for snapshot, created_at in rows:
        parent = [snapshot.parent_checkpoint_id or ""] if forked else []
        table.add_row(
            str(snapshot.step), snapshot.checkpoint_id, *parent, ", ".join(snapshot.next),
            _interrupts(snapshot.interrupts), _when(created_at),
        )
    console.print(table)


def print_threads(
    console: Console, path: str, rows: Sequence[tuple[str, StateSnapshot, float | None]]
) -> None:
    """A table of the threads in a database, most recently written first."""
    table = Table(title=f"threads in {path}", box=box.SIMPLE, title_justify="left")
    table.add_column("thread", overflow="fold", min_width=8)
    table.add_column("step", no_wrap=True)
    table.add_column("next")
    table.add_column("interrupts", min_width=10)
    table.add_column("written", no_wrap=True)
    for thread, snapshot, created_at in rows:
        table.add_row(thread, str(snapshot.step), ", ".join(snapshot.next) or "(done)",
                      _interrupts(snapshot.interrupts), _when(created_at))
    console.print(table)

"""Helpers shared by the tests (not collected: the name does not start with test_)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import trio
import trio.lowlevel

from trigraph import CompiledGraph
from trigraph.events import Event


class _Recorder(trio.abc.Instrument):
    def __init__(self, tracker: TaskTracker) -> None:
        self._tracker = tracker

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self._tracker.spawned.append(task)
        self._tracker.alive.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self._tracker.alive.discard(task)


class TaskTracker:
    """Records every Trio task spawned while watching, and which of them exited.

    Install it around a run with ``with tracker.watch(): ...``; afterwards
    ``tracker.alive`` must be empty if the run left no task behind. (It is not
    an ``Instrument`` itself: pytest-trio would install a fixture that is one
    for the whole test.)
    """

    def __init__(self) -> None:
        self.spawned: list[trio.lowlevel.Task] = []
        self.alive: set[trio.lowlevel.Task] = set()
        self.watching = False

    @contextmanager
    def watch(self) -> Iterator[TaskTracker]:
        recorder = _Recorder(self)
        trio.lowlevel.add_instrument(recorder)
        self.watching = True
        try:
            yield self
        finally:
            self.watching = False
            trio.lowlevel.remove_instrument(recorder)

    def alive_names(self) -> list[str]:
        return sorted(task.name for task in self.alive)


async def collect(
    graph: CompiledGraph, input: Any, modes: Sequence[str] | str, **kwargs: Any
) -> list[Event]:
    """Run *graph* with ``stream()`` and return every event it sent."""
    async with graph.stream(input, modes=modes, **kwargs) as events:
        return [event async for event in events]


def top(events: Sequence[Event]) -> list[Event]:
    """The events of the top-level graph (``ns == ()``)."""
    return [event for event in events if event.ns == ()]

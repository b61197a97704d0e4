"""Shared configuration of trigraph's test suite.

Hypothesis profiles: ``ci`` (the default: derandomized, 25 examples, no
deadline) and ``thorough`` (500 examples); pick one with the environment
variable ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _helpers import TaskTracker
from hypothesis import settings

from trigraph import MemoryCheckpointer, SqliteCheckpointer
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



@pytest.fixture(params=["memory", "sqlite"])
async def cp(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Checkpointer]:
    """Each checkpointer in turn (SQLite on a file in *tmp_path*), closed after."""
    store: Checkpointer = (
        MemoryCheckpointer() if request.param == "memory" else SqliteCheckpointer(tmp_path / "t.db")
    )
    yield store
    await store.aclose()

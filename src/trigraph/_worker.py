"""A long-lived worker thread for one blocking resource (a SQLite connection).

``trio.to_thread.run_sync`` pays for a thread-cache handoff, a context copy
and a capacity limiter on every call; a checkpoint per superstep makes that
the largest part of its cost. A :class:`WorkerThread` keeps one thread for
the resource, hands it each job through a queue, and reschedules the waiting
Trio task from the thread with ``run_sync_soon``: about half the round trip.

Jobs run one at a time, in the order they were submitted, always in the
same thread (so the resource never moves between threads). A job that has
started runs to completion: cancelling the caller waits for it, as
``to_thread.run_sync`` does by default, and the cancellation is delivered at
the caller's next checkpoint. Works across ``trio.run`` calls: each job
carries the token of the run that submitted it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

__all__ = ["WorkerThread"]

T = TypeVar("T")

_Job = tuple[Callable[[], Any], trio.lowlevel.Task, trio.lowlevel.TrioToken]


class WorkerThread:
    """One thread that runs blocking jobs for one resource, in order."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start = threading.Lock()

    @trio.lowlevel.enable_ki_protection  # a job queued is always waited for
    async def run(self, fn: Callable[[], T]) -> T:
        """Run *fn* in the worker thread and return its result (or raise its error).

        Cancellation:
          A checkpoint: an already cancelled caller submits nothing. Once
          submitted, the job runs to completion; a cancellation arriving
          meanwhile is delivered after it, at the caller's next checkpoint.

        Raises:
          RuntimeError: used in a process forked after the thread started (the
            thread, and the resource it serves, stayed in the parent).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                    thread.start()
                    self._thread, self._pid = thread, os.getpid()
        if self._pid != os.getpid():
            raise RuntimeError(
                f"{self._name} was opened before this process forked; open a new one here"
            )
        self._jobs.put(
            (fn, trio.lowlevel.current_task(), trio.lowlevel.current_trio_token())
        )
        result: T = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED
        )
        return result

    def stop(self) -> None:
        """Let the thread end once the jobs already submitted are done (sync)."""
        with self._start:
            if self._thread is not None:
                self._jobs.put(None)
                self._thread = None

    def _main(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, task, token = job
            result = outcome.capture(fn)
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            # Hold nothing of the job while idle: an owner nobody closed can then
            # be collected, and its finalizer stops this thread.
            del job, fn, task, token, result

"""What the server keeps in its database besides checkpoints: threads, the run
queue and each run's events; and the in-process wake-up hub.

A *store* (:class:`RunStore`) is the queue protocol. Every run is a row that
moves ``pending -> running -> success | error | timeout | interrupted``;
workers *claim* a pending run under a lease they renew, and every write a
worker makes for a run (its events, its outcome) is *fenced* by the attempt
number the claim gave it: once the lease lapsed and another worker claimed
the run again, the old worker's writes are refused (:class:`LeaseLost`) and
it stops. One run per thread: a pending run is claimable only when no run of
its thread is running and no earlier run of its thread is pending.

A run's events get increasing integer ids (``seq``, from 1, per run) in the
order they were committed; a reader that has seen up to *n* reads
``seq > n`` and so gets every later event exactly once, from any process.

The :class:`Hub` wakes waiting tasks of this process at once (a new run, new
events, a cancel request, a finished run); a store that serves several
processes also forwards these wake-ups between them (LISTEN/NOTIFY on
PostgreSQL). Every waiter also polls, so a lost wake-up costs a poll
interval, never a hang.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import attrs
import trio

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Busy",
    "Conflict",
    "EventRow",
    "Hub",
    "LeaseLost",
    "NotFound",
    "RunRecord",
    "RunStore",
    "SAFETY",
    "Strategy",
    "watch",
]

Strategy = Literal["reject", "enqueue", "interrupt", "rollback"]
ACTIVE = frozenset({"pending", "running"})
TERMINAL = frozenset({"success", "error", "timeout", "interrupted"})


class StoreError(Exception):
    """Base of what a store refuses; the routes turn each into an HTTP status."""


class NotFound(StoreError):
    """The thread or run does not exist (404)."""


class Busy(StoreError):
    """The thread has a run in progress and the request may not wait (409)."""


class Conflict(StoreError):
    """The thread already exists (409)."""


class LeaseLost(StoreError):
    """The worker's claim on a run lapsed and another attempt owns it now."""

    def __init__(self, run_id: str, attempt: int) -> None:
        super().__init__(
            f"run {run_id} attempt {attempt} lost its lease; a later attempt owns the run"
        )
        self.run_id = run_id
        self.attempt = attempt


@attrs.frozen(slots=True, kw_only=True)
class RunRecord:
    """One run of the queue, as stored.

    ``kwargs`` holds what the client asked for (input, command, config,
    stream_mode, ...); ``head`` the thread's latest checkpoint id when the
    run was first claimed (``""``: the thread had none), so that a takeover
    knows whether the run's input was applied already and a rollback knows
    what to restore.
    """

    run_id: str
    thread_id: str
    assistant_id: str
    graph_id: str
    status: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any]
    kwargs: dict[str, Any]
    multitask_strategy: Strategy
    temporary: bool = False
    attempt: int = 0
    head: str | None = None
    result: bytes | None = None
    cancel: str | None = None


@attrs.frozen(slots=True)
class EventRow:
    """One stored event: its id, the attempt that wrote it, the SSE event
    name (``values``, ``updates|sub:...``, ``metadata``, ``error``, ...) and
    its JSON data."""

    seq: int
    attempt: int
    event: str
    data: bytes


class Hub:
    """In-process wake-ups, keyed by string (``"runs"``, ``"events:<run>"``,
    ``"cancel:<run>"``, ``"done:<run>"``).

    Take the key's event *before* reading the state it guards, then wait on
    it: a :meth:`notify` between the read and the wait is not missed.
    """

    def __init__(self) -> None:
        self._events: dict[str, trio.Event] = {}

    def event(self, key: str) -> trio.Event:
        """The event the next :meth:`notify` of *key* sets."""
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = trio.Event()
        return ev

    def notify(self, key: str) -> None:
        """Wake every task waiting on *key* (sync; safe from any Trio task)."""
        ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()

    def waited(self) -> list[str]:
        """The keys some task is waiting on (or took the event of)."""
        return list(self._events)

    async def wait(self, ev: trio.Event, timeout: float) -> None:
        """Wait for *ev*, at most *timeout* seconds (the polling fallback).

        Cancellation: a checkpoint; nothing to undo.
        """
        with trio.move_on_after(timeout if math.isfinite(timeout) else 3600):
            await ev.wait()


SAFETY = 10.0
"""Seconds a waiter sleeps at most without a wake-up (a safety net only:
wake-ups come from this process's writes and from :func:`watch`)."""


async def watch(
    store: RunStore, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Wake this process's waiters for changes made by other processes.

    Every ``store.poll`` seconds, one query reads the status, last event id
    and cancel request of the runs someone here waits on (and whether a run
    is ready to claim), and notifies the keys whose run changed. With no
    waiters it reads nothing.

    Cancellation:
      Runs until cancelled; holds nothing between polls.
    """
    seen: dict[str, tuple[str, int, str | None]] = {}
    task_status.started()
    while True:
        await trio.sleep(store.poll)
        keys = store.hub.waited()
        runs = {k.split(":", 1)[1] for k in keys if not k.startswith("runs")}
        if not runs and "runs" not in keys:
            continue
        try:
            states, ready = await store.changes(sorted(runs), "runs" in keys)
        except Exception:
            continue  # the database is down: waiters keep their safety timeout
        for rid in runs:
            now = states.get(rid)
            if now != seen.get(rid):
                for kind in ("events", "done", "cancel"):
                    store.hub.notify(f"{kind}:{rid}")
        seen = {rid: state for rid, state in states.items()}
        if ready:
            store.hub.notify("runs")


class RunStore(Protocol):
    """The queue, threads and events of one database.

    Required: every method below; all are ``async`` and checkpoints. Writes
    are atomic (one transaction). ``hub`` wakes this process's waiters;
    ``poll`` is how long a waiter sleeps when no wake-up comes (a store that
    forwards wake-ups between processes may poll rarely).
    """

    hub: Hub
    poll: float
    cross_process: bool

    async def aclose(self) -> None: ...

    # -- threads
    async def create_thread(
        self, thread_id: str, metadata: dict[str, Any], if_exists: str
    ) -> dict[str, Any]: ...
    async def get_thread(self, thread_id: str) -> dict[str, Any] | None: ...
    async def search_threads(
        self,
        *,
        metadata: dict[str, Any] | None,
        status: str | None,
        ids: list[str] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
        values: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]: ...
    async def count_threads(
        self, *, metadata: dict[str, Any] | None, status: str | None,
        values: dict[str, Any] | None = None,
    ) -> int: ...
    async def update_thread(
        self, thread_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any] | None: ...
    async def delete_thread(self, thread_id: str) -> None: ...
    async def set_thread_state(
        self, thread_id: str, values: bytes | None, interrupts: bytes | None, status: str | None
    ) -> None: ...

    # -- runs (API side)
    async def create_run(
        self, run: RunRecord, *, if_not_exists: str, after_seconds: float
    ) -> list[str]: ...
    async def get_run(self, thread_id: str | None, run_id: str) -> RunRecord | None: ...
    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: str | None
    ) -> list[RunRecord]: ...
    async def delete_run(self, thread_id: str, run_id: str) -> None: ...
    async def cancel_runs(
        self, thread_id: str | None, run_ids: list[str] | None, action: str,
        *, status: str | None = None,
    ) -> list[str]: ...
    async def read_events(
        self, run_id: str, after: int, limit: int
    ) -> tuple[list[EventRow], str | None]: ...

    # -- runs (worker side)
    async def claim(
        self, worker: str, lease: float, graphs: list[str], limit: int = 1
    ) -> list[RunRecord]: ...
    async def begin(
        self, run_id: str, attempt: int, head: str, frames: list[tuple[str, bytes]]
    ) -> None: ...
    async def heartbeat(
        self, worker: str, held: dict[str, int], lease: float
    ) -> dict[str, str | None]: ...
    async def requeue(self, run_id: str, attempt: int) -> None: ...
    async def append_events(
        self, run_id: str, attempt: int, frames: list[tuple[str, bytes]]
    ) -> int: ...
    async def finish_run(
        self,
        run_id: str,
        attempt: int,
        *,
        status: str,
        result: bytes | None,
        frames: list[tuple[str, bytes]],
        thread_status: str,
        values: bytes | None,
        interrupts: bytes | None,
        delete: bool,
        forget: bool = False,
    ) -> None: ...
    async def sweep(self, keep: float) -> int: ...
    async def services(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...
    async def changes(
        self, run_ids: list[str], claimable: bool
    ) -> tuple[dict[str, tuple[str, int, str | None]], bool]: ...

"""Workers: claim queued runs, execute them, stream their events into the store.

A :class:`Worker` runs up to *concurrency* runs at once, each in its own
task of the worker's nursery. For each claimed run it:

1. records the thread's head checkpoint at the first claim (a later attempt
   compares it with the thread's current head: unchanged means the input
   was never applied, so it is applied now; changed means an earlier attempt
   got that far, so the thread is continued with ``None`` from its last
   checkpoint, and no completed step runs again);
2. appends ``metadata {"run_id", "attempt"}``, then the run's events in
   batches (see :meth:`Worker._pump`: a streamed run's first events go out
   at once, later ones share a write when they come within
   :data:`LINGER`), every write fenced by the attempt;
3. ends the run with its outcome, its last events and the thread's new
   status in one fenced write.

A heartbeat task renews the leases of the runs it holds every
:attr:`Worker.beat` seconds and learns of cancel requests (the polling
fallback); a cancel request of this process (or, with PostgreSQL, of any
process) wakes the run's watcher at once. A run whose lease was lost is
cancelled and writes nothing more. A run whose thread is busy (a run that
is not the queue's, e.g. a command-line run, or a dead worker's claim that
has not lapsed yet) is waited for, the run keeping its lease and its stream.

A takeover and the stream: the events an earlier attempt stored stay, with
their ids; the new attempt appends a ``metadata`` event with its attempt
number, then the events of the steps it runs: the step that was in flight
runs again and sends its events again (new events, new ids), the completed
steps do not. No id is reused and none is skipped, so a client reading
``seq > last`` sees every event once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import Any

import attrs
import orjson
import trio

from trigraph import (
    Command,
    CompiledGraph,
    MemoryCheckpointer,
    RunTimeoutError,
    Send,
    ThreadBusyError,
)
from trigraph.abc import Checkpointer, CheckpointRecord
from trigraph.events import Event

from ._convert import Converter, dumps, engine_modes, interrupt_json
from ._graphs import Graphs
from ._store import SAFETY, LeaseLost, RunRecord, RunStore

__all__ = ["Worker"]

log = logging.getLogger("trigraph.server")
BUFFER = 1024
BATCH = 512
FIRST_BATCH = 16
REQUEUE_TIMEOUT = 5.0
"""Seconds a stopping worker spends giving a run back to the queue."""
LINGER = 0.004
"""Seconds a batch of events waits for more before it is written."""
BUSY_RETRY = 0.2


@attrs.define(eq=False)
class _Job:
    run: RunRecord
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    """The scope of the engine call in progress (a new one for each try)."""
    action: str | None = None
    lost: bool = False
    stopped: bool = False
    unsent: list[tuple[str, bytes]] = attrs.Factory(list)
    """Events converted but not yet written (the run's last ones go with its end)."""

    def stop(self, *, action: str | None = None, lost: bool = False) -> None:
        """Cancel the run: at a client's request (*action*) or because its
        lease was lost."""
        self.action = action or self.action
        self.lost = self.lost or lost
        self.stopped = True
        self.scope.cancel()

    def new_scope(self) -> trio.CancelScope:
        self.scope = trio.CancelScope()
        if self.stopped:
            self.scope.cancel()
        return self.scope


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Executes queued runs of *graphs* (see the module docstring).

    Args:
      store: the run store.
      graphs: the graphs this worker can run; it claims only their runs.
      checkpointer: the checkpointer the graphs are bound to.
      concurrency: the most runs executing at once.
      lease: seconds a claim lasts without renewal; a worker that stops
        renewing (it died) loses its runs to another worker after this.
      beat: seconds between heartbeats (lease renewal and cancel polling).
    """

    def __init__(
        self,
        store: RunStore,
        graphs: Graphs,
        checkpointer: Checkpointer,
        *,
        concurrency: int = 10,
        lease: float = 30.0,
        beat: float = 0.5,
        name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"a worker needs concurrency >= 1, got {concurrency}")
        self.store = store
        self.graphs = graphs
        self.cp = checkpointer
        self.concurrency = concurrency
        self.lease = lease
        self.beat = min(beat, lease / 3)
        self.name = name or worker_name()
        self.jobs: dict[str, _Job] = {}
        self._compiled: dict[tuple[str, bool, Any, Any], CompiledGraph] = {}
        self._scratch = MemoryCheckpointer()
        """The checkpoints of stateless runs, each deleted when its run ends."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and execute runs until cancelled.

        Cancellation:
          Cancelling stops claiming and cancels the runs in progress; each
          goes back to the queue (shielded, at most ``REQUEUE_TIMEOUT``
          seconds), so another worker (or this one, restarted) takes it over
          at once and resumes it from its last checkpoint. A run that cannot
          be given back waits for its lease to lapse.
        """
        store = self.store
        slots = trio.Semaphore(self.concurrency)
        served = sorted(self.graphs.graphs)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._heartbeat)
            task_status.started()
            while True:
                await slots.acquire()
                free = 1
                while True:  # take every free slot: one claim for several runs
                    try:
                        slots.acquire_nowait()
                    except trio.WouldBlock:
                        break
                    free += 1
                wake = store.hub.event("runs")
                try:
                    runs = await store.claim(self.name, self.lease, served, free)
                except Exception:
                    log.exception("claiming a run failed; retrying")
                    runs = []
                    await trio.sleep(store.poll)
                for _ in range(free - len(runs)):
                    slots.release()
                for run in runs:
                    nursery.start_soon(self._guarded, run, slots, name=f"run {run.run_id}")
                if not runs:
                    await store.hub.wait(wake, SAFETY)

    async def _guarded(self, run: RunRecord, slots: trio.Semaphore) -> None:
        job = _Job(run)
        self.jobs[run.run_id] = job
        ended = False
        try:
            await self._execute(job)
            ended = True
        except LeaseLost as exc:
            ended = True
            log.warning("%s", exc)
        except Exception:
            ended = True
            log.exception("run %s failed in the worker", run.run_id)
            await self._fail_quietly(job)
        finally:
            del self.jobs[run.run_id]
            slots.release()
            if not ended:
                # The worker is stopping (cancelled): the run goes back to the
                # queue at once, for a later attempt to resume, rather than
                # after its lease.
                with trio.CancelScope(shield=True), trio.move_on_after(REQUEUE_TIMEOUT):
                    try:
                        await self.store.requeue(run.run_id, job.run.attempt)
                    except Exception:
                        log.warning("could not requeue run %s; it waits for its lease "
                                    "to lapse", run.run_id)

    async def _fail_quietly(self, job: _Job) -> None:
        run = job.run
        error = {"error": "WorkerError", "message": "the worker failed running this run; "
                 "see the server log"}
        try:
            await self.store.finish_run(
                run.run_id, run.attempt, status="error",
                result=dumps({"__error__": error}), frames=[("error", dumps(error))],
                thread_status="error", values=None, interrupts=None, delete=False)
        except Exception:
            log.exception("could not record the failure of run %s", run.run_id)

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self.beat)
            held = {rid: job.run.attempt for rid, job in self.jobs.items()}
            if not held:
                continue
            try:
                flags = await self.store.heartbeat(self.name, held, self.lease)
            except Exception:
                log.exception("heartbeat failed; retrying")
                continue
            for rid, attempt in held.items():
                job = self.jobs.get(rid)
                if job is None or job.run.attempt != attempt:
                    continue
                if rid not in flags:
                    job.stop(lost=True)
                elif flags[rid] is not None:
                    job.stop(action=flags[rid])

    async def _watch_cancel(self, job: _Job) -> None:
        """Wake on this process's cancel requests for the run (at once)."""
        store, rid = self.store, job.run.run_id
        while True:
            wake = store.hub.event(f"cancel:{rid}")
            await store.hub.wait(wake, float("inf"))
            current = await store.get_run(None, rid)
            if current is None or current.attempt != job.run.attempt:
                job.stop(lost=True)
                return
            if current.cancel is not None:
                job.stop(action=current.cancel)
                return

    def _graph(self, run: RunRecord, scratch: bool) -> CompiledGraph:
        """The run's graph: bound to the shared checkpointer, or for a *scratch*
        run to the in-memory one, with the run's own interrupts if it has any."""
        graph = self.graphs.graphs[run.graph_id]
        before, after = run.kwargs.get("interrupt_before"), run.kwargs.get("interrupt_after")
        if before is None and after is None and not scratch:
            return graph
        key = (run.graph_id, scratch, orjson.dumps(before), orjson.dumps(after))
        compiled = self._compiled.get(key)
        if compiled is None:
            cp = self._scratch if scratch else self.cp
            if before is None and after is None:
                compiled = graph.with_checkpointer(cp)
            else:
                nodes = list(graph.nodes)
                compiled = graph.builder.compile(
                    checkpointer=cp,
                    interrupt_before=nodes if before == "*" else (before or ()),
                    interrupt_after=nodes if after == "*" else (after or ()),
                )
            if len(self._compiled) >= 64:  # clients choose the interrupts: keep it bounded
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = compiled
        return compiled

    async def _execute(self, job: _Job) -> None:
        run = job.run
        # A thread deleted when the run ends keeps its checkpoints in memory:
        # nothing to write or delete, interrupts still work, and a run taken
        # over starts again from its input.
        scratch = run.temporary and kw_completion(run) == "delete"
        graph = self._graph(run, scratch)
        if scratch:
            try:
                await self._run_graph(job, graph, scratch)
            finally:
                with trio.CancelScope(shield=True):
                    await self._scratch.delete_thread(run.thread_id)
        else:
            await self._run_graph(job, graph, scratch)

    async def _run_graph(self, job: _Job, graph: CompiledGraph, scratch: bool) -> None:
        run, store = job.run, self.store
        rid, tid, attempt = run.run_id, run.thread_id, run.attempt
        kw = run.kwargs
        if scratch or (run.temporary and run.head is None):
            head = ""  # a new temporary thread: nothing to read
        else:
            record = await self.cp.get(tid, "")
            head = "" if record is None else record.id
        fresh = run.head is None or run.head == head
        meta = ("metadata", dumps({"run_id": rid, "attempt": attempt}))
        if scratch:
            job.unsent.append(meta)  # no head to record: sent with the first events
        else:
            await store.begin(rid, attempt, head, [meta])
        if run.head is None:
            job.run = run = attrs.evolve(run, head=head)
        if run.cancel is not None:
            job.stop(action=run.cancel)
        command = kw.get("command") or {}
        input: Any = kw.get("input") if fresh else None
        checkpoint_id = kw.get("checkpoint_id") if fresh else None
        update = command.get("update") if fresh else None
        if fresh and "resume" in command:
            input = Command(resume=command["resume"])
        elif fresh and (command.get("goto") or update is not None):
            goto = [g if isinstance(g, str) else Send(g["node"], g.get("input"))
                    for g in command.get("goto") or ()]
            input, update = Command(update=update, goto=goto), None
        elif input is None and not head and checkpoint_id is None and update is None:
            input = {}  # a run without input on a new thread starts from an empty state
        modes = kw.get("stream_mode") or ["values"]
        conv = Converter(modes, subgraphs=bool(kw.get("subgraphs")), run_id=rid)
        config = kw.get("config") or {}
        result: dict[str, Any] | None = None
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_cancel, job)
            while True:
                # A thread held by a run that is not the queue's (or by a dead
                # worker whose claim has not lapsed yet) is waited for: the run
                # keeps its lease and its stream, and tries again.
                busy = False
                send, receive = trio.open_memory_channel[Event](BUFFER)
                async with trio.open_nursery() as pumping:
                    pumping.start_soon(self._pump, job, receive, conv)
                    with job.new_scope():
                        try:
                            if update is not None:
                                await graph.update_state(tid, update)
                                update = None
                                if not isinstance(input, Command):
                                    input = None
                            result = await graph.ainvoke(
                                input, thread=tid, checkpoint_id=checkpoint_id, events=send,
                                modes=sorted(engine_modes(modes)),
                                durability=kw.get("durability") or "async",
                                recursion_limit=int(config.get("recursion_limit") or 10_000),
                            )
                        except ThreadBusyError as exc:
                            job.lost = job.lost or exc.lost
                            busy = not exc.lost
                        except Exception as exc:
                            failure = exc
                        finally:
                            send.close()
                if not busy or job.lost or job.stopped:
                    break
                with job.new_scope():
                    await trio.sleep(BUSY_RETRY)
            nursery.cancel_scope.cancel()
        if job.lost:
            raise LeaseLost(rid, attempt)
        await self._finish(job, graph, conv, result, failure)

    async def _pump(
        self, job: _Job, receive: trio.MemoryReceiveChannel[Event], conv: Converter
    ) -> None:
        """Write the run's events as they come, in batches.

        The first batch is written at once (a client sees the run start
        without delay); later ones when they hold :data:`BATCH` events or
        :data:`LINGER` seconds after their first event (so a fast run's
        events, and a burst's, share one write). The events still unwritten
        when the engine closes the channel are left in ``job.unsent`` for the
        run's final write.
        """
        store, run = self.store, job.run
        unsent = job.unsent
        # A streamed run's first batch goes at once and small, so that its
        # client sees it start as soon as it does (unsent: the metadata, not
        # yet written); a run nobody streams yet lingers from the start, so
        # that a fast run's events all go with its end.
        streamed = bool(run.kwargs.get("streamed"))
        linger, cap = (0.0, FIRST_BATCH) if unsent and streamed else (LINGER, BATCH)
        try:
            async with receive:
                while True:
                    if not unsent or (len(unsent) == 1 and unsent[0][0] == "metadata"):
                        try:
                            unsent.extend(conv.convert(await receive.receive()))
                        except trio.EndOfChannel:
                            return
                        deadline = trio.current_time() + linger
                    with trio.move_on_at(deadline):
                        while len(unsent) < cap:
                            try:
                                event = receive.receive_nowait()
                            except trio.WouldBlock:
                                event = None
                            except trio.EndOfChannel:
                                return
                            if event is None:
                                try:
                                    event = await receive.receive()
                                except trio.EndOfChannel:
                                    return
                            unsent.extend(conv.convert(event))
                    linger, cap = LINGER, BATCH
                    batch, job.unsent = list(unsent), []
                    unsent = job.unsent
                    if batch:
                        await store.append_events(run.run_id, run.attempt, batch)
        except LeaseLost:
            job.stop(lost=True)

    async def _finish(
        self,
        job: _Job,
        graph: CompiledGraph,
        conv: Converter,
        result: dict[str, Any] | None,
        failure: Exception | None,
    ) -> None:
        run, store = job.run, self.store
        rid, tid = run.run_id, run.thread_id
        frames = [*job.unsent, *conv.flush()]
        job.unsent = []
        interrupts = [interrupt_json(i.value, i.id) for i in conv.interrupts]
        thread_interrupts: dict[str, list[dict[str, Any]]] = {}
        for i in conv.interrupts:
            thread_interrupts.setdefault(i.node, []).append(interrupt_json(i.value, i.id))
        values: Any = None
        forget = False
        if failure is not None:
            status = "timeout" if isinstance(failure, RunTimeoutError) else "error"
            error = {"error": type(failure).__name__, "message": str(failure)}
            frames.append(("error", dumps(error)))
            body: Any = {"__error__": error}
            thread_status = "error"
            values = await self._values(graph, tid)
        elif result is not None:
            status = "success"
            values = {k: v for k, v in result.items() if k != "__interrupt__"}
            body = dict(values)
            if interrupts:
                body["__interrupt__"] = interrupts
            thread_status = "interrupted" if interrupts else "idle"
        else:  # cancelled
            status = "interrupted"
            if job.action == "rollback":
                await self._rollback(tid, run.head or "")
                forget = True
            snapshot = await self._snapshot(graph, tid)
            values = None if snapshot is None else snapshot.values
            body = values or {}
            thread_status = "interrupted" if snapshot is not None and snapshot.next else "idle"
        temporary = run.temporary and kw_completion(run) == "delete"
        await store.finish_run(
            rid, run.attempt, status=status, result=dumps(body), frames=frames,
            thread_status=thread_status, values=None if values is None else dumps(values),
            interrupts=dumps(thread_interrupts), delete=temporary, forget=forget,
        )

    async def _snapshot(self, graph: CompiledGraph, tid: str) -> Any:
        try:
            return await graph.get_state(tid)
        except KeyError:
            return None

    async def _values(self, graph: CompiledGraph, tid: str) -> Any:
        snapshot = await self._snapshot(graph, tid)
        return None if snapshot is None else snapshot.values

    async def _rollback(self, tid: str, head: str) -> None:
        """Make the thread's state what it was before the run: its head record
        written again as the latest (the run's records stay, as a branch no
        one continues), or the thread deleted if it had none."""
        if not head:
            await self.cp.delete_thread(tid)
            return
        record = await self.cp.get(tid, "", head)
        if record is None:
            return
        copy = attrs.evolve(record, id=f"{record.step:06d}-{secrets.token_hex(4)}")
        assert isinstance(copy, CheckpointRecord)
        await self.cp.put(copy)


def kw_completion(run: RunRecord) -> str:
    return str(run.kwargs.get("on_completion") or "delete")


"""The checkpoint record format, and reading threads back without a graph.

A checkpoint record's body holds a *delta* of the keys its step wrote:
``{"s": {key: new value}, "x": {key: added items}}``, where ``"x"`` holds the
keys whose new value only extends the old list or string (an append-only
reducer such as a chat history) with just the added items. Some records
carry a full snapshot instead (see ``_durable`` for when). A state is rebuilt
from the nearest snapshot (or the thread's first record) by replaying the
deltas after it; nothing here needs the graph, so the command line can read
any thread of a checkpoint file.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

from ._abc import Checkpointer, CheckpointRecord
from ._loop import NO_ARG, Restored, TaskPlan
from ._serde import default_serializer
from ._types import Interrupt, Send, StateSnapshot

__all__ = ["Delta", "Loaded", "read_checkpoint", "read_history"]

Delta = dict[str, dict[str, Any]]


_ids = random.Random()  # its own generator: seeding the global one never repeats ids


def _new_id(step: int) -> str:
    return f"{step:06d}-{_ids.getrandbits(32):08x}"


def _encode_goto(goto: Sequence[str | Send]) -> list[Any]:
    return [g if isinstance(g, str) else {"send": [g.node, g.arg]} for g in goto]


def _decode_goto(items: Sequence[Any]) -> tuple[str | Send, ...]:
    return tuple(g if isinstance(g, str) else Send(g["send"][0], g["send"][1]) for g in items)


def _make_delta(old: dict[str, Any], values: dict[str, Any], keys: Sequence[str]) -> Delta:
    """The delta of *keys* to their current *values*.

    *old* holds the previous values of the written reducer keys, the only
    keys that can grow by appending; every other key is stored as set.
    """
    sets: dict[str, Any] = {}
    extends: dict[str, Any] = {}
    for key in keys:
        new = values[key]
        if key in old:
            before = old[key]
            if type(new) is list and type(before) is list:
                n = len(before)
                if len(new) >= n and new[:n] == before:
                    extends[key] = new[n:]
                    continue
            elif type(new) is str and type(before) is str and new.startswith(before):
                extends[key] = new[len(before):]
                continue
        sets[key] = new
    return {"s": sets, "x": extends} if extends else {"s": sets}


def _apply_delta(values: dict[str, Any], delta: Delta) -> None:
    values.update(delta["s"])
    for key, added in delta.get("x", {}).items():
        values[key] = values[key] + added


@attrs.define(eq=False)
class Loaded:
    """A thread's state at one checkpoint, decoded."""

    record: CheckpointRecord
    values: dict[str, Any]
    plans: list[TaskPlan]
    joins: dict[int, set[str]]
    tasks: dict[str, Restored]
    interrupts: list[tuple[Interrupt, str, str]]
    """Pending interrupts: ``(interrupt, task id, node of that task)``."""
    paused_before: bool = False
    """The run paused here on ``interrupt_before``: resuming skips that pause once."""
    sizes: tuple[int, int] = (0, 0)
    """Bytes of the chain's snapshot (or root), and of the deltas written since."""

    @property
    def started(self) -> bool:
        """Whether the next step already began (a pause before it, or pending work)."""
        return self.paused_before or bool(self.tasks) or bool(self.interrupts)

    def snapshot(self) -> StateSnapshot:
        """The public view: ``next`` lists only the tasks still to run."""
        record = self.record
        prefix = f"{record.step + 1}."
        still = [
            p.node for i, p in enumerate(self.plans)
            if not (t := self.tasks.get(f"{prefix}{i}")) or not t.done
        ]
        return StateSnapshot(
            values=self.values,
            next=tuple(dict.fromkeys(still)),
            step=record.step,
            checkpoint_id=record.id,
            interrupts=tuple(intr for intr, _, _ in self.interrupts),
            parent_checkpoint_id=record.parent_id,
        )


def _decode(record: CheckpointRecord, values: dict[str, Any], serde: Any) -> Loaded:
    body = serde.loads(record.body)
    plans = [TaskPlan(p[0], p[1] if len(p) > 1 else NO_ARG) for p in body["next"]]
    joins = {int(k): set(v) for k, v in body["joins"].items()}
    tasks: dict[str, Restored] = {}
    interrupts: list[tuple[Interrupt, str, str]] = []
    paused_before = False
    if record.pending is not None:
        pending = serde.loads(record.pending)
        for task_id, t in pending["tasks"].items():
            tasks[task_id] = Restored(
                t["node"],
                done=t["done"],
                writes=[tuple(w) for w in t["writes"]],
                goto=_decode_goto(t["goto"]),
                resume=dict(t["resume"]),
                memo=dict(t.get("memo", ())),
            )
        interrupts = [
            (Interrupt(v, n, i), tid, owner) for v, n, i, tid, owner in pending["interrupts"]
        ]
        paused_before = bool(pending.get("before"))
    return Loaded(record, values, plans, joins, tasks, interrupts, paused_before)


def _rebuild(chain: list[CheckpointRecord], serde: Any) -> dict[str, Any]:
    """The values at ``chain[0]``, from the snapshot (or root) at ``chain[-1]``."""
    base = chain[-1]
    if base.snapshot is not None:
        values: dict[str, Any] = serde.loads(base.snapshot)
        rest = chain[-2::-1]
    else:
        values = {}
        rest = chain[::-1]
    for record in rest:
        _apply_delta(values, serde.loads(record.body)["delta"])
    return values


async def read_checkpoint(
    cp: Checkpointer,
    thread: str,
    checkpoint_id: str | None = None,
    *,
    ns: str = "",
    serde: Any = default_serializer,
) -> Loaded | None:
    """Read one checkpoint of *thread* (the latest by default), without a graph.

    Raises:
      KeyError: *checkpoint_id* is not a checkpoint of the thread.
    """
    record = await cp.get(thread, ns, checkpoint_id)
    if record is None:
        if checkpoint_id is not None:
            raise KeyError(f"thread {thread!r} has no checkpoint {checkpoint_id!r}")
        return None
    chain = await cp.chain(thread, ns, record.id)
    loaded = _decode(record, _rebuild(chain, serde), serde)
    base = chain[-1]
    loaded.sizes = (len(base.snapshot or base.body), sum(len(r.body) for r in chain[:-1]))
    return loaded


async def read_history(
    cp: Checkpointer, thread: str, *, ns: str = "", serde: Any = default_serializer
) -> list[StateSnapshot]:
    """Every checkpoint of *thread*, forks included, newest first, without a graph.

    One read of the thread's records; each state is rebuilt from its parent's,
    so the cost is linear in what the thread wrote.
    """
    records = await cp.history(thread, ns)
    states: dict[str, dict[str, Any]] = {}
    out: list[StateSnapshot] = []
    for record in reversed(records):
        if record.snapshot is not None:
            values = serde.loads(record.snapshot)
        else:
            parent = states.get(record.parent_id) if record.parent_id else None
            if parent is None and record.parent_id is not None:
                values = _rebuild(await cp.chain(thread, ns, record.id), serde)
            else:
                values = dict(parent) if parent is not None else {}
                _apply_delta(values, serde.loads(record.body)["delta"])
        states[record.id] = values
        out.append(_decode(record, values, serde).snapshot())
    out.reverse()
    return out

"""Reading a thread's checkpoints without its graph, for ``threads``, ``state``
and ``history`` when no target is given.

The engine's graph-free readers (``_records.read_checkpoint`` and
``read_history``) rebuild the state; here they decode leniently: an attrs or
dataclass value whose class is not registered in this process becomes an
:class:`Opaque` that prints like the original. Reading never writes to the
database and never runs code found in it.
"""

from __future__ import annotations

import json
from typing import Any

from .._abc import Checkpointer, CheckpointRecord
from .._records import read_checkpoint, read_history as engine_read_history
from .._serde import _TYPE
from .._types import StateSnapshot

__all__ = ["Opaque", "read_history", "read_state"]


class Opaque:
    """An attrs or dataclass value read without its class: its name and fields.

    A plain class on purpose: rich pretty-prints attrs classes field by field,
    and this one should print like the value it stands for.
    """

    __slots__ = ("fields", "type_name")

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self.type_name = type_name
        self.fields = fields

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.type_name.rsplit('.', 1)[-1]}({args})"


def _hook(obj: dict[str, Any]) -> Any:
    name = obj.get(_TYPE)
    if isinstance(name, str) and len(obj) == 2 and isinstance(obj.get("fields"), dict):
        return Opaque(name, obj["fields"])
    return obj


class _LenientSerializer:
    """Decodes what ``JsonSerializer`` wrote, without its class registry."""

    def dumps(self, value: Any) -> bytes:  # pragma: no cover - reading only
        raise TypeError("the inspection reader does not write")

    def loads(self, data: bytes) -> Any:
        return json.loads(data, object_hook=_hook)


_SERDE = _LenientSerializer()


async def read_state(
    cp: Checkpointer, thread: str, checkpoint_id: str | None = None
) -> tuple[StateSnapshot, CheckpointRecord] | None:
    """The thread's latest checkpoint (or *checkpoint_id*) and its record.

    ``None`` if the thread (or checkpoint) does not exist.

    Cancellation:
      A checkpoint; reads only.
    """
    try:
        loaded = await read_checkpoint(cp, thread, checkpoint_id, serde=_SERDE)
    except KeyError:
        return None
    if loaded is None:
        return None
    return loaded.snapshot(), loaded.record


async def read_history(
    cp: Checkpointer, thread: str
) -> list[tuple[StateSnapshot, CheckpointRecord]]:
    """Every checkpoint of the thread, forks included, newest first.

    Cancellation:
      A checkpoint; reads only.
    """
    snapshots = await engine_read_history(cp, thread, serde=_SERDE)
    records = await cp.history(thread, "")
    return list(zip(snapshots, records, strict=True))

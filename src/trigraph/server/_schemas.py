"""The request bodies of the LangGraph Server API, as msgspec structs.

:func:`parse` decodes and validates a body in one pass (msgspec): a body that
is not JSON, or whose fields have the wrong type or value, is refused with
422 and a ``detail`` naming the field (``Expected `int`, got `str` - at
`$.limit```). Fields the SDK sends that trigraph does not use
(``webhook``, ``feedback_keys``, ``ttl``, ...) are accepted and ignored, and
so are unknown fields, so newer clients keep working. The same structs give
the OpenAPI document its schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.exceptions import HTTPException

__all__ = [
    "AssistantCount",
    "AssistantSearch",
    "CancelMany",
    "HistoryRequest",
    "RunCreate",
    "StateAtCheckpoint",
    "StateUpdate",
    "ThreadCount",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
    "parse",
]

T = TypeVar("T")
UNSET = msgspec.UNSET
StreamMode = Literal[
    "values", "updates", "custom", "messages", "messages-tuple", "tasks", "debug"
]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Offset = Annotated[int, msgspec.Meta(ge=0)]
Status = Literal["idle", "busy", "interrupted", "error"]


class CommandBody(msgspec.Struct):
    update: dict[str, Any] | None = None
    resume: Any = UNSET
    goto: Any = None


class Config(msgspec.Struct):
    recursion_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None
    configurable: dict[str, Any] | None = None
    tags: list[str] | None = None


class CheckpointRef(msgspec.Struct):
    checkpoint_id: Id | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None


class RunCreate(msgspec.Struct):
    """``POST /threads/{thread_id}/runs[/stream|/wait]`` and ``/runs[...]``."""

    assistant_id: Id
    input: dict[str, Any] | None = None
    command: CommandBody | None = None
    config: Config | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[Id] | None = None
    interrupt_after: Literal["*"] | list[Id] | None = None
    feedback_keys: list[str] | None = None
    webhook: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: Id | None = None
    checkpoint_during: bool | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] = "delete"
    after_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400 * 365)] = 0
    durability: Literal["sync", "async", "exit"] | None = None

    def modes(self) -> list[str]:
        mode = self.stream_mode
        return list(dict.fromkeys([mode] if isinstance(mode, str) else mode)) or ["values"]


class ThreadCreate(msgspec.Struct):
    thread_id: Id | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: Id | None = None
    supersteps: list[Any] | None = None
    ttl: Any = None


class ThreadSearch(msgspec.Struct):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[Id] | None = None
    status: Status | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None
    extract: dict[str, str] | None = None


class ThreadCount(msgspec.Struct):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Status | None = None


class ThreadPatch(msgspec.Struct):
    metadata: dict[str, Any] | None = None
    ttl: Any = None


class StateUpdate(msgspec.Struct):
    values: dict[str, Any] | None = None
    as_node: Id | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: Id | None = None


class StateAtCheckpoint(msgspec.Struct):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(msgspec.Struct):
    limit: Limit = 10
    before: CheckpointRef | Id | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = None


class AssistantSearch(msgspec.Struct):
    metadata: dict[str, Any] | None = None
    graph_id: Id | None = None
    name: str | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCount(msgspec.Struct):
    metadata: dict[str, Any] | None = None
    graph_id: Id | None = None
    name: str | None = None


class CancelMany(msgspec.Struct):
    thread_id: Id | None = None
    run_ids: list[Id] | None = None
    status: Literal["pending", "running", "all"] | None = None


_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def parse(body: bytes, kind: type[T]) -> T:
    """Decode and validate a request *body* as *kind* (an empty body: ``{}``).

    Raises:
      HTTPException: 422 with the decoder's message naming the field.
    """
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        value: T = decoder.decode(body or b"{}")
    except msgspec.ValidationError as exc:
        raise HTTPException(422, f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise HTTPException(422, f"Request body is not valid JSON: {exc}") from None
    return value

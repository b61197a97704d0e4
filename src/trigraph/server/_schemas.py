"""The request bodies of the LangGraph Server API, as pydantic models.

FastAPI validates every body against these before a route runs: a body
that is not JSON, or whose fields have the wrong type or value, is answered
with 422 and a JSON ``detail`` that names the field. Fields the SDK sends
that trigraph does not use (``webhook``, ``feedback_keys``, ``ttl``, ...)
are accepted and ignored; unknown fields are ignored too, so newer clients
keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssistantSearch",
    "CancelMany",
    "HistoryRequest",
    "RunCreate",
    "StateAtCheckpoint",
    "StateUpdate",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
]

StreamMode = Literal[
    "values", "updates", "custom", "messages", "messages-tuple", "tasks", "debug"
]
Id = Annotated[str, Field(min_length=1, max_length=256)]
Limit = Annotated[int, Field(ge=1, le=1000)]
Offset = Annotated[int, Field(ge=0)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CommandBody(_Body):
    update: dict[str, Any] | None = None
    resume: Any = None
    goto: Any = None


class Config(_Body):
    model_config = ConfigDict(extra="allow")
    recursion_limit: Annotated[int, Field(ge=1)] | None = None
    configurable: dict[str, Any] | None = None
    tags: list[str] | None = None


class CheckpointRef(_Body):
    model_config = ConfigDict(extra="allow")
    checkpoint_id: Id | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None


class RunCreate(_Body):
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
    after_seconds: Annotated[float, Field(ge=0, le=86_400 * 365)] = 0
    durability: Literal["sync", "async", "exit"] | None = None

    def modes(self) -> list[str]:
        mode = self.stream_mode
        return list(dict.fromkeys([mode] if isinstance(mode, str) else mode)) or ["values"]


class ThreadCreate(_Body):
    thread_id: Id | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: Id | None = None
    supersteps: list[Any] | None = None
    ttl: Any = None


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[Id] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None
    extract: dict[str, str] | None = None


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] | None = None
    ttl: Any = None


class StateUpdate(_Body):
    values: dict[str, Any] | None = None
    as_node: Id | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: Id | None = None


class StateAtCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: Limit = 10
    before: CheckpointRef | Id | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = None


class AssistantSearch(_Body):
    metadata: dict[str, Any] | None = None
    graph_id: Id | None = None
    name: str | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCount(_Body):
    metadata: dict[str, Any] | None = None
    graph_id: Id | None = None
    name: str | None = None


class CancelMany(_Body):
    thread_id: Id | None = None
    run_ids: list[Id] | None = None
    status: Literal["pending", "running", "all"] | None = None

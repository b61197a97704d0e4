"""trigraph: a graph engine for LLM and data workflows, built on Trio.

Build a :class:`StateGraph`, ``compile()`` it, and run it with
``await graph.ainvoke(input)`` or watch it with ``async with graph.stream(...)``.
Every run lives in a nursery: nothing outlives it, and cancelling it tears
down every node task at once.
"""

from ._checkpoint_memory import MemoryCheckpointer as MemoryCheckpointer
from ._checkpoint_sqlite import SqliteCheckpointer as SqliteCheckpointer
from ._compiled import DEFAULT_BUFFER as DEFAULT_BUFFER, CompiledGraph as CompiledGraph
from ._context import (
    GraphInterrupt as GraphInterrupt,
    StreamWriter as StreamWriter,
    check_cancelled as check_cancelled,
    get_stream_writer as get_stream_writer,
    interrupt as interrupt,
    once as once,
)
from ._exceptions import (
    CheckpointError as CheckpointError,
    EmptyInputError as EmptyInputError,
    GraphRecursionError as GraphRecursionError,
    GraphValidationError as GraphValidationError,
    InvalidUpdateError as InvalidUpdateError,
    NodeTimeoutError as NodeTimeoutError,
    RunTimeoutError as RunTimeoutError,
    SerializationError as SerializationError,
    ThreadBusyError as ThreadBusyError,
    TrigraphError as TrigraphError,
)
from ._graph import StateGraph as StateGraph
from ._serde import JsonSerializer as JsonSerializer, register_type as register_type
from ._types import (
    END as END,
    START as START,
    Command as Command,
    Interrupt as Interrupt,
    RetryPolicy as RetryPolicy,
    Send as Send,
    StateSnapshot as StateSnapshot,
    default_retry_on as default_retry_on,
)
from ._util import fixup_module_metadata as _fixup
from ._version import __version__ as __version__
from .postgres import PostgresCheckpointer as PostgresCheckpointer

_fixup(__name__, globals())
del _fixup

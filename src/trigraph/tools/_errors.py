"""The errors of ``trigraph.tools``.

The hierarchy::

    TrigraphError
    ├── ToolDefinitionError (also TypeError)   a tool that cannot be described
    │                                          to a model (found by @tool)
    └── ToolTimeoutError (also TimeoutError)   a call ran past ToolNode(timeout=)
                                               with handle_errors=False

A model's own mistakes (an unknown tool, bad arguments, arguments that are
not JSON) are never raised: ``ToolNode`` answers them with an error
``ToolMessage`` the model can act on.
"""

from __future__ import annotations

from .. import TrigraphError
from .._util import final

__all__ = ["ToolDefinitionError", "ToolTimeoutError"]


@final
class ToolDefinitionError(TrigraphError, TypeError):
    """A function that cannot be a tool: a parameter whose type has no JSON
    schema, ``*args``, a recursive type, a bad name.

    Attributes:
      tool: the tool's name.
      parameter: the parameter at fault, if any.

    .. versionadded:: 0.2
    """

    def __init__(self, tool: str, problem: str, *, parameter: str | None = None) -> None:
        where = (f"tool {tool!r}" if parameter is None
                 else f"parameter {parameter!r} of tool {tool!r}")
        super().__init__(f"{where}: {problem}")
        self.tool = tool
        self.parameter = parameter


@final
class ToolTimeoutError(TrigraphError, TimeoutError):
    """A tool call ran longer than ``ToolNode(timeout=...)`` allows (raised
    only with ``handle_errors=False``; otherwise the model is told).

    .. versionadded:: 0.2
    """

    def __init__(self, tool: str, call_id: str | None, timeout: float) -> None:
        super().__init__(
            f"tool {tool!r} (call {call_id!r}) did not finish within {timeout:g} s; raise "
            "ToolNode(timeout=...) or make the tool faster"
        )
        self.tool = tool
        self.call_id = call_id
        self.timeout = timeout

"""Tools for agents: ``@tool`` functions a model can call, ``ToolNode`` that
runs a model's tool calls as child tasks of one nursery, and
``tools_condition`` that routes to it.

Trio's guarantees carry over: a node that returns or raises leaves no call
running; calls are bounded (``max_concurrency``) and timed (``timeout``);
every call gets exactly one answer, in call order; a call that finished
never runs again when the run resumes.

Example:
  >>> import trio
  >>> from trigraph.messages import AIMessage, ToolCall
  >>> from trigraph.tools import ToolNode, tool
  >>> @tool
  ... async def shout(text: str) -> str:
  ...     '''Say it louder.'''
  ...     return text.upper()
  >>> state = {"messages": [AIMessage(tool_calls=[ToolCall("shout", {"text": "hi"}, "c1")])]}
  >>> trio.run(ToolNode([shout]).ainvoke, state)["messages"][0].content
  'HI'

.. versionadded:: 0.2
"""

from .. import Command as _Command, register_type as _register
from .._util import fixup_module_metadata as _fixup
from ._errors import (
    ToolDefinitionError as ToolDefinitionError,
    ToolTimeoutError as ToolTimeoutError,
)
from ._node import ToolNode as ToolNode, tools_condition as tools_condition
from ._tool import (
    InjectedState as InjectedState,
    InjectedToolCallId as InjectedToolCallId,
    Tool as Tool,
    tool as tool,
)

_fixup(__name__, globals())
del _fixup

_register(_Command)  # a tool's Command is recorded as a call's result
del _register

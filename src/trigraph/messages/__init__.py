"""Messages for agents: frozen message values with LangChain's names, and
``add_messages``, LangGraph's reducer of a message history.

Anywhere a message is accepted, so are LangChain's shorthands: a ``str``
(a human message), a ``(role, content)`` pair, and an OpenAI-style dict
(``{"role": "assistant", "content": ..., "tool_calls": [...]}``). Messages
are JSON-checkpointable: importing this module registers them with the
checkpoint serializer.

Example:
  >>> import trio
  >>> from trigraph import END, START, StateGraph
  >>> from trigraph.messages import MessagesState
  >>> async def echo(state: MessagesState) -> dict:
  ...     return {"messages": [("ai", "you said: " + state["messages"][-1].text)]}
  >>> g = StateGraph(MessagesState)
  >>> _ = g.add_node(echo).add_edge(START, "echo").add_edge("echo", END)
  >>> final = trio.run(g.compile().ainvoke, {"messages": ["hi"]})
  >>> [(m.type, m.content) for m in final["messages"]]
  [('human', 'hi'), ('ai', 'you said: hi')]

.. versionadded:: 0.2
"""

from .. import register_type as _register
from .._util import fixup_module_metadata as _fixup
from ._convert import (
    convert_to_messages as convert_to_messages,
    to_message as to_message,
    to_openai as to_openai,
)
from ._reducer import (
    REMOVE_ALL_MESSAGES as REMOVE_ALL_MESSAGES,
    MessagesState as MessagesState,
    add_messages as add_messages,
    prepare_messages as prepare_messages,
)
from ._values import (
    AIMessage as AIMessage,
    AnyMessage as AnyMessage,
    HumanMessage as HumanMessage,
    InvalidToolCall as InvalidToolCall,
    RemoveMessage as RemoveMessage,
    SystemMessage as SystemMessage,
    ToolCall as ToolCall,
    ToolMessage as ToolMessage,
    Usage as Usage,
)

_fixup(__name__, globals())
del _fixup

for _cls in (AIMessage, HumanMessage, SystemMessage, ToolMessage, RemoveMessage, ToolCall,
             InvalidToolCall, Usage):
    _register(_cls)
del _cls, _register

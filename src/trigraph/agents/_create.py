"""``create_agent``: the model-and-tools loop, compiled.

Two nodes: ``"model"`` calls the model with the history (the system prompt
in front, not stored) and the tools' schemas, and writes its reply;
``"tools"`` is a ``ToolNode`` answering the reply's calls (after a person's
decision for the tools in *approve*). The model runs again after the tools,
and the run ends when a reply asks for no tool. Everything is checked here,
before a run: the model's kind, the tools, the names in *approve*, the
state schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, get_args, get_origin, get_type_hints

from .. import END, START, GraphValidationError, StateGraph
from ..messages import AIMessage, HumanMessage, MessagesState, SystemMessage, to_message
from ..tools import ToolNode, tools_condition
from ._errors import MaxTurnsError

if TYPE_CHECKING:
    from .. import CompiledGraph
    from ..abc import Checkpointer

__all__ = ["create_agent"]


def _check_model(model: Any) -> None:
    ainvoke = getattr(model, "ainvoke", None)
    if not callable(ainvoke) or not inspect.iscoroutinefunction(ainvoke):
        raise GraphValidationError(
            f"create_agent needs a ChatModel-like model, one with "
            f"`async def ainvoke(messages, *, tools=..., tool_choice=...)` returning an "
            f"AIMessage (e.g. trigraph.llm.ChatModel), not {model!r:.100}"
        )
    try:
        inspect.signature(ainvoke).bind([], tools=[])
    except TypeError:
        raise GraphValidationError(
            f"the model's ainvoke() does not take tools=: {inspect.signature(ainvoke)}; "
            "create_agent calls model.ainvoke(messages, tools=[...])"
        ) from None
    except ValueError:  # no signature to read (a builtin); trust it
        pass


def _check_schema(schema: Any) -> None:
    try:
        hints = get_type_hints(schema, include_extras=True)
    except Exception as exc:
        raise GraphValidationError(
            f"cannot read the state schema {schema!r:.80}: {exc}"
        ) from exc
    hint = hints.get("messages")
    reducers = get_args(hint)[1:] if get_origin(hint) is not None and hint is not None else ()
    if not any(callable(getattr(r, "prepare", None)) for r in reducers):
        raise GraphValidationError(
            f"the state schema {getattr(schema, '__qualname__', schema)!r} needs "
            "`messages: Annotated[list[AnyMessage], add_messages]` (subclass MessagesState)"
        )


def _turns(messages: Sequence[Any]) -> int:
    """Model replies since the last user message."""
    count = 0
    for message in reversed(messages):
        if type(message) is HumanMessage:
            break
        if type(message) is AIMessage:
            count += 1
    return count


def create_agent(
    model: Any,
    tools: Sequence[Any],
    *,
    system_prompt: str | None = None,
    state_schema: type[Any] | None = None,
    checkpointer: Checkpointer | None = None,
    approve: Collection[str] = (),
    max_turns: int | None = None,
    name: str = "agent",
) -> CompiledGraph:
    """Compile an agent: a model that calls tools in a loop until it answers.

    Nodes ``"model"`` and ``"tools"`` (a :class:`~trigraph.tools.ToolNode`).
    Run it like any graph: ``await agent.ainvoke({"messages": ["question"]})``;
    the model's tokens stream in the ``"messages"`` mode, async-generator
    tools' progress in ``"custom"``.

    Calls to the tools named in *approve* wait for a person: before any call
    of that turn runs, the run pauses with ``interrupt({"action_requests":
    [{"name", "args", "id"}, ...]})`` (one interrupt per model turn); resume
    with ``Command(resume={"decisions": [...]})``, one decision per request,
    in order: ``{"type": "approve"}``, ``{"type": "reject", "message": str}``
    (the tool does not run; the model gets an error ``ToolMessage`` with the
    message) or ``{"type": "edit", "args": {...}}`` (run with these
    arguments). An answer that does not fit is asked again, with an
    ``"error"`` in the request.

    Args:
      model: a ``trigraph.llm.ChatModel``, or anything with ``async def
        ainvoke(messages, *, tools=..., tool_choice=...) -> AIMessage``.
      tools: ``@tool`` tools or plain functions (at least one).
      system_prompt: sent before the history on every model call (not
        stored in the state).
      state_schema: a ``MessagesState`` subclass with keys of your own.
      checkpointer: where the thread lives (needed for *approve*).
      approve: names of tools whose calls need a person's decision.
      max_turns: most model calls per user message; one more raises
        :class:`MaxTurnsError` (the thread stays resumable).
      name: the graph's name.

    Raises:
      GraphValidationError: a model without an async ``ainvoke(..., tools=)``,
        no tools, two tools of one name, a name in *approve* that is no
        tool, *approve* without a checkpointer, a state schema without an
        ``add_messages`` key ``messages``, a *max_turns* below 1.
      ToolDefinitionError: a function that cannot be a tool.

    Example:
      >>> import trio
      >>> from trigraph.agents import create_agent
      >>> from trigraph.llm import ChatModel
      >>> from trigraph.llm.testing import Script, open_token_server
      >>> def add(a: int, b: int) -> int:
      ...     '''Add two numbers.'''
      ...     return a + b
      >>> turns = [Script(tool_calls=[("add", {"a": 2, "b": 3})]), Script(answer="It is 5.")]
      >>> async def main():
      ...     async with open_token_server(script=turns) as server, \\
      ...             ChatModel(server.base_url) as model:
      ...         agent = create_agent(model, [add])
      ...         final = await agent.ainvoke({"messages": ["What is 2 + 3?"]})
      ...         return [(m.type, m.text) for m in final["messages"]]
      >>> trio.run(main)
      [('human', 'What is 2 + 3?'), ('ai', ''), ('tool', '5'), ('ai', 'It is 5.')]

    .. versionadded:: 0.2
    """
    _check_model(model)
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence) or not tools:
        raise GraphValidationError(
            f"create_agent needs a non-empty list of tools, got {tools!r:.80}; an agent "
            "without tools is a plain model call"
        )
    node = ToolNode(tools)
    gated = frozenset([approve] if isinstance(approve, str) else approve)
    unknown = sorted(gated - set(node.tools))
    if unknown:
        raise GraphValidationError(
            f"approve= names {', '.join(map(repr, unknown))}, which "
            f"{'is not a tool' if len(unknown) == 1 else 'are not tools'} of this agent "
            f"(tools: {', '.join(map(repr, node.tools))})"
        )
    if gated and checkpointer is None:
        raise GraphValidationError(
            "approve= pauses the run until a person decides, which needs a checkpointer: "
            "create_agent(..., checkpointer=MemoryCheckpointer())"
        )
    node.approve = gated
    if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
        raise GraphValidationError(f"max_turns must be an int >= 1, got {max_turns!r}")
    schema = state_schema if state_schema is not None else MessagesState
    _check_schema(schema)
    tool_list = list(node.tools.values())
    system = [SystemMessage(system_prompt)] if system_prompt else []

    async def call_model(state: Any) -> dict[str, Any]:
        messages = state["messages"] if isinstance(state, dict) else state.messages
        if max_turns is not None and _turns(messages) >= max_turns:
            raise MaxTurnsError(max_turns, name)
        reply = await model.ainvoke([*system, *messages], tools=tool_list)
        if type(reply) is not AIMessage:
            reply = to_message(reply)
            if type(reply) is not AIMessage:
                raise TypeError(f"the model's ainvoke() returned {reply!r:.80}, not an AIMessage")
        return {"messages": [reply]}

    builder = StateGraph(schema)
    builder.add_node("model", call_model)
    builder.add_node("tools", node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, ["tools", END])
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer, name=name)

"""The public names of DESIGN.md are importable from ``trigraph`` and
``trigraph.events``, and say so in their ``__module__``."""

from __future__ import annotations

import importlib

import pytest

import trigraph
import trigraph.events

TOP_LEVEL_CLASSES = [
    "StateGraph",
    "CompiledGraph",
    "Send",
    "Command",
    "RetryPolicy",
    "Interrupt",
    "StateSnapshot",
    "StreamWriter",
    "TrigraphError",
    "GraphValidationError",
    "InvalidUpdateError",
    "GraphRecursionError",
    "NodeTimeoutError",
    "RunTimeoutError",
    "PostgresCheckpointer",
]
TOP_LEVEL_FUNCTIONS = ["interrupt", "get_stream_writer", "check_cancelled"]
EVENT_CLASSES = ["Values", "Update", "Custom", "Token", "TaskStart", "TaskEnd", "Interrupted"]


@pytest.mark.parametrize("name", TOP_LEVEL_CLASSES + TOP_LEVEL_FUNCTIONS)
def test_public_name_importable_from_trigraph(name: str) -> None:
    obj = getattr(trigraph, name)
    assert obj.__module__ == "trigraph"
    assert obj.__name__ == name


@pytest.mark.parametrize("name", TOP_LEVEL_CLASSES)
def test_public_class_qualname_is_its_public_name(name: str) -> None:
    assert getattr(trigraph, name).__qualname__ == name


@pytest.mark.parametrize("name", EVENT_CLASSES)
def test_event_class_importable_from_trigraph_events(name: str) -> None:
    cls = getattr(trigraph.events, name)
    assert isinstance(cls, type)
    assert cls.__module__ == "trigraph.events"
    assert cls.__qualname__ == name


def test_start_and_end_are_the_documented_strings() -> None:
    assert trigraph.START == "__start__"
    assert trigraph.END == "__end__"


def test_from_import_of_the_documented_example_works() -> None:
    module = importlib.import_module("trigraph")
    for name in ("StateGraph", "START", "END", "Send", "Command", "interrupt",
                 "get_stream_writer"):
        assert hasattr(module, name), name


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("GraphValidationError", ValueError),
        ("InvalidUpdateError", ValueError),
        ("GraphRecursionError", RecursionError),
        ("NodeTimeoutError", TimeoutError),
        ("RunTimeoutError", TimeoutError),
    ],
)
def test_error_subclasses_trigraph_error_and_builtin(name: str, builtin: type) -> None:
    cls = getattr(trigraph, name)
    assert issubclass(cls, trigraph.TrigraphError)
    assert issubclass(cls, builtin)


def test_trigraph_error_is_an_exception() -> None:
    assert issubclass(trigraph.TrigraphError, Exception)


def test_event_modes_are_the_documented_ones() -> None:
    assert {"values", "updates", "custom", "messages", "tasks"} == trigraph.events.MODES
    assert trigraph.events.Values.mode == "values"
    assert trigraph.events.Update.mode == "updates"
    assert trigraph.events.Custom.mode == "custom"
    assert trigraph.events.Token.mode == "messages"
    assert trigraph.events.TaskStart.mode == "tasks"
    assert trigraph.events.TaskEnd.mode == "tasks"


def test_repr_uses_public_module() -> None:
    assert repr(trigraph.StateGraph).startswith("<class 'trigraph.StateGraph'")
    assert repr(trigraph.events.Values).startswith("<class 'trigraph.events.Values'")


AGENT_NAMES = {
    "trigraph.messages": ["AIMessage", "HumanMessage", "SystemMessage", "ToolMessage",
                          "RemoveMessage", "ToolCall", "REMOVE_ALL_MESSAGES", "add_messages",
                          "MessagesState"],
    "trigraph.tools": ["tool", "ToolNode", "tools_condition", "InjectedState",
                       "InjectedToolCallId"],
    "trigraph.agents": ["create_agent"],
}


@pytest.mark.parametrize(("module", "name"),
                         [(m, n) for m, names in AGENT_NAMES.items() for n in names])
def test_agent_names_are_public_and_say_where_they_live(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(module), name)
    if name == "REMOVE_ALL_MESSAGES":
        assert obj == "__remove_all__"
        return
    assert obj.__module__ == module
    assert obj.__name__ == name


def test_chatmodel_calls_tools() -> None:
    import inspect

    from trigraph.llm import ChatModel

    params = inspect.signature(ChatModel.ainvoke).parameters
    assert {"messages", "tools", "tool_choice"} <= set(params)
    assert inspect.iscoroutinefunction(ChatModel.ainvoke)


def test_server_names_say_trigraph_server() -> None:
    pytest.importorskip("hypercorn")
    server = importlib.import_module("trigraph.server")
    for name in ("serve", "run_worker", "create_app", "open_backend", "assistant_id", "Context"):
        assert getattr(server, name).__module__ == "trigraph.server", name
    assert set(server.__all__) >= {"serve", "run_worker", "create_app"}

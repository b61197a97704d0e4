"""Graphs written for LangGraph, ported by changing the imports only.

Nodes reached only through an undeclared ``Command(goto=...)`` are common in
LangGraph code (the plan-and-execute loop, routers on dataclass state); they
compile and run here as they do there.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated

from trigraph import END, START, Command, MemoryCheckpointer, StateGraph


@dataclass
class PlanExecute:
    input: str
    plan: list[str] = field(default_factory=list)
    past_steps: Annotated[list[str], operator.add] = field(default_factory=list)
    response: str | None = None


async def plan_step(state: PlanExecute):  # type: ignore[no-untyped-def]
    return {"plan": [f"{state.input}: step {i}" for i in range(1, 4)]}


async def execute_step(state: PlanExecute):  # type: ignore[no-untyped-def]
    task = state.plan[0]
    return Command(update={"past_steps": [f"done {task}"]}, goto="replan")


async def replan_step(state: PlanExecute):  # type: ignore[no-untyped-def]
    remaining = state.plan[1:]
    if not remaining:
        return Command(update={"response": f"{len(state.past_steps)} steps"}, goto=END)
    return Command(update={"plan": remaining}, goto="agent")


async def test_plan_and_execute_loop() -> None:
    workflow = StateGraph(PlanExecute)
    workflow.add_node("planner", plan_step)
    workflow.add_node("agent", execute_step)
    workflow.add_node("replan", replan_step)  # reached only by agent's goto
    workflow.add_edge(START, "planner")
    workflow.add_edge("planner", "agent")
    app = workflow.compile(checkpointer=MemoryCheckpointer())
    final = await app.ainvoke({"input": "trip"}, thread="t1")
    assert final["response"] == "3 steps"
    assert final["past_steps"] == [f"done trip: step {i}" for i in (1, 2, 3)]
    assert len(await app.get_state_history("t1")) == 8  # input + planner + 3 x (agent, replan)


@dataclass
class RouterState:
    query: str
    route: str = ""
    answer: str = ""


def classify(state: RouterState):  # type: ignore[no-untyped-def]
    route = "math" if any(c.isdigit() for c in state.query) else "chat"
    return Command(update={"route": route}, goto=route)


def math(state: RouterState) -> dict[str, str]:
    a, b = state.query.split("+")
    return {"answer": str(int(a) + int(b))}


def chat(state: RouterState) -> dict[str, str]:
    return {"answer": f"let's talk about {state.query}"}


def test_router_on_dataclass_state() -> None:
    builder = StateGraph(RouterState)
    builder.add_node("classify", classify)
    builder.add_node("math", math)  # reached only by classify's goto
    builder.add_node("chat", chat)  # likewise
    builder.add_edge(START, "classify")
    builder.add_edge("math", END)
    builder.add_edge("chat", END)
    graph = builder.compile()
    assert graph.invoke({"query": "2+3"}) == {"query": "2+3", "route": "math", "answer": "5"}
    assert graph.invoke({"query": "trio"})["answer"] == "let's talk about trio"

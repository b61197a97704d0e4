"""Ask several questions at once and merge the answers (map-reduce with ``Send``).

A router sends each question to its own ``answer`` task; the tasks run in one
superstep, concurrently, over one shared connection pool, and their answers
are merged by the ``operator.add`` reducer in the order of the questions, not
in the order they finished. The caller watches the answers stream live (a
token count, then each question as its answer completes) and then the report.
Run it with::

    python examples/parallel_questions.py "What is a nursery?" "Why cancel scopes?"

Unless ``OPENAI_BASE_URL`` names a real API, the answers come from trigraph's
local token server on 127.0.0.1.
"""

from __future__ import annotations

import operator
import sys
import time
from typing import Annotated, Any, TypedDict

import trio

from trigraph import END, START, Send, StateGraph
from trigraph.events import Token, Update
from trigraph.llm import ChatModel
from trigraph.llm.testing import open_demo_model

QUESTIONS = [
    "What is a Trio nursery?",
    "Why do cancel scopes nest?",
    "How does a memory channel apply backpressure?",
    "What does a checkpoint do?",
]


class Research(TypedDict):
    questions: list[str]
    answers: Annotated[list[str], operator.add]
    report: str


def build(model: ChatModel) -> StateGraph[Research]:
    def fan_out(state: Research) -> list[Send]:
        return [Send("answer", question) for question in state["questions"]]

    async def answer(question: str) -> dict[str, Any]:
        return {"answers": [f"Q: {question}\nA: {await model.complete(question)}"]}

    def report(state: Research) -> dict[str, Any]:
        return {"report": "\n\n".join(state["answers"])}

    builder = StateGraph(Research)
    builder.add_node(answer)
    builder.add_node(report)
    builder.add_conditional_edges(START, fan_out)
    builder.add_edge("answer", "report")
    builder.add_edge("report", END)
    return builder


async def main(questions: list[str]) -> None:
    async with open_demo_model() as model:
        graph = build(model).compile()
        started = time.perf_counter()
        count = 0
        async with graph.stream({"questions": questions, "answers": []},
                                modes=("messages", "updates")) as events:
            async for event in events:
                if isinstance(event, Token):  # tokens of all answers, as they arrive
                    count += 1
                    print(f"\r{count} tokens received", end="", flush=True)
                elif isinstance(event, Update) and event.node == "answer":
                    first_line = event.update["answers"][0].splitlines()[0]
                    print(f"\r{count} tokens received; done: {first_line}")
                elif isinstance(event, Update):  # the report, answers in question order
                    print(f"\n{event.update['report']}")
        print(f"\n{len(questions)} questions answered concurrently in "
              f"{time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:] or QUESTIONS)

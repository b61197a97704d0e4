"""A tools agent with an approval step, streaming its words and its tools' progress.

The agent answers "Which of Paris and Oslo is warmer? Then email ada the
answer." with three tools: ``get_weather`` (async), ``research`` (an async
generator: its progress streams as custom events while it works) and
``send_email``, which a person must approve. The run pauses before the
email goes out; this program plays the person (it approves mail to
colleagues and would reject anything else), and the thread resumes from
SQLite to the end.

Offline by default: the model is the token server of
``trigraph.llm.testing`` playing a scripted conversation, streamed as a
real OpenAI-compatible server streams tool calls. Set ``OPENAI_BASE_URL``
(and ``OPENAI_API_KEY``, ``OPENAI_MODEL``) to use a real model instead.

    python examples/agent.py
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from trigraph import Command, SqliteCheckpointer
from trigraph.agents import create_agent
from trigraph.events import Custom, Interrupted, Token, Update
from trigraph.llm import ChatModel
from trigraph.llm.testing import Script, open_token_server
from trigraph.tools import tool

WEATHER = {"paris": 14, "oslo": -2}
outbox: list[str] = []


@tool
async def get_weather(city: str) -> str:
    """The temperature in a city now.

    Args:
        city: the city's name.
    """
    await trio.sleep(0.05)  # a slow API, simulated
    return f"{WEATHER.get(city.lower(), 20)} C in {city}"


@tool
async def research(topic: str) -> AsyncIterator[Any]:
    """Read up on a topic; reports its progress while it reads.

    Args:
        topic: what to read about.
    """
    for source in ("encyclopedia", "news", "forums"):
        yield f"reading the {source} about {topic}"
        await trio.sleep(0.05)
    yield f"{topic}: Paris has mild winters; Oslo is often below zero."


@tool
def send_email(to: str, body: str) -> str:
    """Send an email (a person approves it first).

    Args:
        to: the recipient.
        body: the text.
    """
    outbox.append(f"to {to}: {body}")
    return f"email to {to} sent"


SCRIPT = [  # what the offline model says, turn by turn
    Script(answer="I will check both cities.",
           tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"}),
                       ("research", {"topic": "winter in Paris and Oslo"})]),
    Script(answer="Paris is warmer; I will tell ada.",
           tool_calls=[("send_email", {"to": "ada@example.org",
                                       "body": "Paris (14 C) is warmer than Oslo (-2 C)."})]),
    Script(answer="Paris is warmer (14 C against -2 C), and ada knows."),
]


def decide(request: dict[str, Any]) -> dict[str, Any]:
    """The person: mail to example.org colleagues is fine, anything else is not."""
    if str(request["args"].get("to", "")).endswith("@example.org"):
        return {"type": "approve"}
    return {"type": "reject", "message": "Only colleagues may be mailed."}


async def stream(agent: Any, data: Any, thread: str) -> list[Interrupted]:
    """Run (or resume) the agent, printing tokens, tool progress and answers."""
    pauses = []
    mid_line = False  # tokens are printed as they come, without a newline

    def line(text: str) -> None:
        nonlocal mid_line
        print(("\n" if mid_line else "") + text, flush=True)
        mid_line = False

    async with agent.stream(data, thread=thread,
                            modes=("messages", "custom", "updates")) as events:
        async for event in events:
            if isinstance(event, Token):
                print(event.text, end="", flush=True)
                mid_line = True
            elif isinstance(event, Custom):
                line(f"  [progress] {event.data}")
            elif isinstance(event, Update) and event.node == "tools" and event.update:
                for message in event.update["messages"]:
                    line(f"  [{message.name}] -> {message.content}")
            elif isinstance(event, Interrupted):
                pauses.append(event)
    line("")
    return pauses


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="trigraph-agent-"))
    async with SqliteCheckpointer(folder / "threads.db") as cp, open_token_server(
        script=SCRIPT, tokens_per_second=200
    ) as server:
        base_url = os.environ.get("OPENAI_BASE_URL") or server.base_url
        async with ChatModel(base_url, os.environ.get("OPENAI_MODEL") or "scripted") as model:
            agent = create_agent(
                model, [get_weather, research, send_email],
                system_prompt="You are a helpful assistant; check facts with the tools.",
                checkpointer=cp, approve={"send_email"}, max_turns=6,
            )
            data: Any = {"messages": ["Which of Paris and Oslo is warmer? Then email ada "
                                      "(ada@example.org) the answer."]}
            while pauses := await stream(agent, data, thread="trip"):
                requests = pauses[0].value["action_requests"]
                decisions = [decide(r) for r in requests]
                for request, decision in zip(requests, decisions, strict=True):
                    print(f"[approval] {request['name']}({request['args']}): {decision['type']}")
                data = Command(resume={"decisions": decisions})
            final = (await agent.get_state("trip")).values["messages"]
    print(f"[outbox] {outbox}")
    print(f"[agent finished: {len(final)} messages, {sum(1 for m in final if m.type == 'tool')} "
          "tool answers]")


if __name__ == "__main__":
    trio.run(main)

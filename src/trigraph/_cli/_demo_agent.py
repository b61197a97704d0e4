"""The graph behind ``trigraph demo agent``: a travel agent that calls tools,
streams its words and its tools' progress, and asks a person before it books.

Three tools: ``get_weather`` (async), ``search_flights`` (an async generator
that streams its progress as custom events) and ``book_flight`` (sync, run
in a worker thread), which needs a person's approval (``create_agent(...,
approve={"book_flight"})``). Offline, the model is the token server of
``trigraph.llm.testing`` playing a scripted conversation (started for the
length of each model call, so ``run``, ``resume`` and ``demo`` all work);
with ``OPENAI_BASE_URL`` set, a real model answers instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import trio

from .._checkpoint_memory import MemoryCheckpointer
from ..agents import create_agent
from ..llm import ChatModel
from ..llm.testing import Script, open_token_server
from ..messages import AIMessage

__all__ = ["QUESTION", "TARGET", "book_flight", "get_weather", "graph", "search_flights"]

TARGET = "trigraph._cli._demo_agent:graph"
QUESTION = "I want to fly from Berlin to Lisbon on Friday if the weather is good. Book it."
TOKENS_PER_SECOND = 60.0

_FLIGHTS = [("TP 559", "08:05", 189), ("LH 1166", "12:40", 214), ("FR 8145", "17:55", 96)]
booked: list[str] = []


async def get_weather(city: str, day: str = "today") -> str:
    """The weather forecast of a city.

    Args:
        city: the city's name.
        day: which day, e.g. "Friday".
    """
    await trio.sleep(0.3)  # a slow API, simulated
    return f"{day} in {city}: sunny, 24 C"


async def search_flights(origin: str, destination: str, day: str) -> AsyncIterator[Any]:
    """Search the flights between two cities on a day.

    Args:
        origin: where from.
        destination: where to.
        day: the day of the flight.
    """
    for airline in ("TAP", "Lufthansa", "Ryanair"):
        yield f"searching {airline} for {origin} -> {destination} on {day}"
        await trio.sleep(0.2)
    yield "; ".join(f"{code} at {time}, {price} EUR" for code, time, price in _FLIGHTS)


def book_flight(flight: str, passenger: str, seat: Literal["aisle", "window"] = "aisle") -> str:
    """Book a seat on a flight (needs a person's approval).

    Args:
        flight: the flight's code, e.g. "TP 559".
        passenger: the passenger's name.
        seat: aisle or window.
    """
    booked.append(flight)
    return f"booked {flight} for {passenger}, {seat} seat, confirmation BK-{len(flight) * 7:04d}"


def _script(chat: Mapping[str, Any]) -> Script:
    """The offline model: turn by turn, with the final words depending on
    whether the booking went through."""
    messages = [m for m in chat.get("messages", ()) if isinstance(m, Mapping)]
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    if turn == 0:
        return Script(answer="Let me check the weather in Lisbon and the flights on Friday.",
                      tool_calls=[("get_weather", {"city": "Lisbon", "day": "Friday"}),
                                  ("search_flights", {"origin": "Berlin",
                                                      "destination": "Lisbon",
                                                      "day": "Friday"})])
    if turn == 1:
        return Script(answer="Friday looks sunny. The cheapest flight is FR 8145 at 17:55; "
                             "I will book it.",
                      tool_calls=[("book_flight", {"flight": "FR 8145", "passenger": "you",
                                                   "seat": "window"})])
    last = messages[-1] if messages else {}
    if last.get("role") == "tool" and str(last.get("content", "")).startswith("booked"):
        return Script(answer="Done: you fly FR 8145 to Lisbon on Friday at 17:55, window "
                             "seat. Enjoy the sun!")
    return Script(answer="All right, I did not book anything. FR 8145 at 17:55 is still the "
                         "cheapest if you change your mind.")


class DemoModel:
    """A ``ChatModel``-like model: ``$OPENAI_BASE_URL`` if set, else the
    scripted token server, started for the length of each call."""

    async def ainvoke(
        self, messages: Sequence[Any], *, tools: Any = None, tool_choice: Any = None
    ) -> AIMessage:
        if os.environ.get("OPENAI_BASE_URL"):
            async with ChatModel() as model:
                return await model.ainvoke(messages, tools=tools, tool_choice=tool_choice)
        async with open_token_server(script=_script, tokens_per_second=TOKENS_PER_SECOND) as s, \
                ChatModel(s.base_url, "trigraph-demo-agent", api_key="") as model:
            return await model.ainvoke(messages, tools=tools, tool_choice=tool_choice)


graph = create_agent(
    DemoModel(),
    [get_weather, search_flights, book_flight],
    system_prompt="You are a travel agent. Check the weather before booking; be brief.",
    approve={"book_flight"},
    checkpointer=MemoryCheckpointer(),  # the command line puts its SQLite file in its place
    name="travel_agent",
)
"""The compiled demo agent."""

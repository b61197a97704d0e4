"""A live dashboard: patient readings streamed from monitoring devices.

The seed chapter's fourth use case. Each ``Send`` starts one ``monitor`` task
per device; a monitor is an async-generator node that yields readings as they
arrive (each one a ``Custom`` event on the stream) and finally yields a
``Command`` that writes its summary to the state. The dashboard consumes the
stream with backpressure: if it falls behind, the monitors wait instead of
piling readings up in memory (the stream holds at most ``buffer`` events).

Run it: ``python examples/live_dashboard.py``
"""

from __future__ import annotations

import operator
import random
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import trio

from trigraph import END, START, Command, Send, StateGraph
from trigraph.events import Custom, Values


class Ward(TypedDict, total=False):
    patients: list[str]
    alerts: Annotated[list[str], operator.add]


async def monitor(patient: str) -> AsyncIterator[Any]:
    rng = random.Random(patient)  # a deterministic "device" per patient
    highest = 0
    for second in range(5):
        await trio.sleep(0.02)  # a reading arrives
        heart_rate = rng.randint(55, 130)
        highest = max(highest, heart_rate)
        yield {"patient": patient, "t": second, "heart_rate": heart_rate}
    alerts = [f"{patient}: peak heart rate {highest}"] if highest > 120 else []
    yield Command(update={"alerts": alerts})


def admit(state: Ward) -> list[Send]:
    return [Send("monitor", patient) for patient in state["patients"]]


def build() -> Any:
    g = StateGraph(Ward)
    g.add_node(monitor)
    g.add_conditional_edges(START, admit)
    g.add_edge("monitor", END)
    return g.compile()


async def main() -> None:
    graph = build()
    ward = {"patients": ["ada", "bo", "cy"], "alerts": []}
    async with graph.stream(ward, modes=("custom", "values"), buffer=8) as events:
        async for event in events:
            if isinstance(event, Custom):
                r = event.data
                bar = "#" * (r["heart_rate"] // 10)
                print(f"{r['patient']:>4} t={r['t']}  {r['heart_rate']:3d} bpm {bar}")
            elif isinstance(event, Values) and event.step > 0:
                print("alerts:", event.state["alerts"] or "none")


if __name__ == "__main__":
    trio.run(main)

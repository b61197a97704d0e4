"""Fetch data asynchronously, then stream a summary of it (the seed chapter's
``async_streaming_pipeline``).

The node is an async generator: it fetches patient readings with httpx from a
local HTTP server, then streams the model's summary, yielding each chunk as it
arrives (a ``"custom"`` event) and finally ``Command(update=...)`` with the
whole summary: the seed's "yield chunks, then return the summary", made legal
Python. Yielding inside ``model.stream(...)`` is safe: the block holds no
nursery or cancel scope, and if the run is cancelled the HTTP stream is
closed as the generator is closed. Run it with::

    python examples/async_streaming_pipeline.py

The readings always come from a small server started here (trigraph's token
server, with a static JSON route); the summary comes from ``OPENAI_BASE_URL``
if set, else from the same kind of local server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypedDict

import httpx
import trio

from trigraph import END, START, Command, StateGraph
from trigraph.events import Custom, Update
from trigraph.llm import ChatModel
from trigraph.llm.testing import open_demo_model, open_token_server

READINGS = {
    "patient": "bed 7",
    "heart_rate_bpm": [72, 75, 88, 97, 91, 84],
    "spo2_percent": [98, 97, 95, 94, 96, 97],
    "note": "brief tachycardia after physiotherapy, recovered",
}


class Pipeline(TypedDict, total=False):
    source: str
    summary: str


def build(model: ChatModel) -> StateGraph[Pipeline]:
    async def fetch_external_data(url: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

    async def async_streaming_pipeline(state: Pipeline) -> AsyncIterator[Any]:
        data = await fetch_external_data(state["source"])  # step 1: async fetch
        response = ""
        async with model.stream(f"Summarize this data: {data}") as tokens:  # step 2
            async for chunk in tokens:
                yield chunk  # streamed to the caller as a Custom event
                response += chunk
        yield Command(update={"summary": response})

    builder = StateGraph(Pipeline)
    builder.add_node(async_streaming_pipeline)
    builder.add_edge(START, "async_streaming_pipeline")
    builder.add_edge("async_streaming_pipeline", END)
    return builder


async def main() -> None:
    async with open_token_server(static={"/data/vitals.json": READINGS}) as data_server, \
            open_demo_model() as model:
        source = data_server.base_url.removesuffix("/v1") + "/data/vitals.json"
        graph = build(model).compile()
        print(f"fetching {source}, then summarising:\n")
        async with graph.stream({"source": source}, modes=("custom", "updates")) as events:
            async for event in events:
                if isinstance(event, Custom):
                    print(event.data, end="", flush=True)
                elif isinstance(event, Update):
                    print(f"\n\n[summary saved: {len(event.update['summary'])} characters]")


if __name__ == "__main__":
    trio.run(main)

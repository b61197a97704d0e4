"""Stream an LLM's answer token by token while a graph runs (the seed chapter's
``stream_chat``).

The node only asks the model for its answer; every token reaches the run's
``"messages"`` stream by itself, as it arrives, so the caller prints the
answer live while the node is still running, and gets the whole text in the
final state. Run it with::

    python examples/stream_chat.py "Explain async & streaming in simple terms."

Nothing needs configuring: unless ``OPENAI_BASE_URL`` (with ``OPENAI_API_KEY``
and ``OPENAI_MODEL``) names a real API, the answer comes from trigraph's local
token server on 127.0.0.1.
"""

from __future__ import annotations

import sys
from typing import TypedDict

import trio

from trigraph import END, START, StateGraph
from trigraph.events import Token, Update
from trigraph.llm import ChatModel
from trigraph.llm.testing import open_demo_model


class Chat(TypedDict, total=False):
    prompt: str
    output: str


def build(model: ChatModel) -> StateGraph[Chat]:
    async def stream_chat(state: Chat) -> Chat:
        prompt = state.get("prompt", "Explain async & streaming in simple terms.")
        return {"output": await model.complete(prompt)}  # tokens stream by themselves

    builder = StateGraph(Chat)
    builder.add_node(stream_chat)
    builder.add_edge(START, "stream_chat")
    builder.add_edge("stream_chat", END)
    return builder


async def main(prompt: str) -> None:
    async with open_demo_model() as model:
        graph = build(model).compile()
        async with graph.stream({"prompt": prompt}, modes=("messages", "updates")) as events:
            async for event in events:
                if isinstance(event, Token):
                    print(event.text, end="", flush=True)  # live, token by token
                elif isinstance(event, Update):
                    output = event.update["output"]
                    print(f"\n\n[{event.node} finished: {len(output)} characters]")


if __name__ == "__main__":
    trio.run(main, " ".join(sys.argv[1:]) or "Explain async & streaming in simple terms.")

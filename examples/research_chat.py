"""A research chatbot: three sources searched in parallel, a join, then an LLM
answer streamed token by token (the seed chapter's example, on trigraph).

The graph itself ships inside the package, so that ``trigraph demo`` works
from any directory after ``pip install 'trigraph[cli]'``; read it in
``src/trigraph/_cli/_demo.py``. This file shows how to consume its stream
from Python. Run it with::

    python examples/research_chat.py "How do nurseries keep tasks safe?"

or through the command line::

    trigraph run examples/research_chat.py:graph --input '{"question": "..."}'
    trigraph demo        # the same graph, durable in ./.trigraph/threads.db

Nothing needs configuring: unless ``OPENAI_BASE_URL`` (and ``OPENAI_API_KEY``,
``OPENAI_MODEL``) say otherwise, the answer comes from trigraph's local token
server on 127.0.0.1.
"""

from __future__ import annotations

import sys

import trio

from trigraph._cli._demo import build
from trigraph.events import Custom, TaskEnd, Token

graph = build().compile(name="research_chat")


async def main(question: str) -> None:
    """Run the graph once, printing progress, tokens as they come, and timings."""
    mid_line = False
    async with graph.stream({"question": question},
                            modes=("custom", "messages", "tasks")) as events:
        async for event in events:
            if isinstance(event, Token):
                print(event.text, end="", flush=True)
                mid_line = True
                continue
            if mid_line:
                print()
                mid_line = False
            if isinstance(event, Custom):
                print(f"[{event.node}] {event.data}")
            elif isinstance(event, TaskEnd):
                print(f"[{event.node}] done in {event.duration:.2f}s")


if __name__ == "__main__":
    trio.run(main, " ".join(sys.argv[1:]) or "How do Trio nurseries make research safe?")

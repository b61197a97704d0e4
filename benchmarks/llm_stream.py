"""Streaming an LLM answer: trigraph.llm against bare httpx, on the same stream.

A token server (``trigraph.llm.testing``) runs in a child process, so its
work does not share the client's CPU time, and answers every request with
the same N tokens at full speed. Four readers take turns on it:

- ``httpx``: bare httpx, ``aiter_lines()`` + ``json.loads``, the least a
  client must do (not a full event-stream parser);
- ``ChatModel.complete``: the whole answer, no per-token checkpoint;
- ``ChatModel.stream``: ``async for text in tokens``, a checkpoint per token;
- ``graph messages``: a one-node graph whose node calls
  ``model.complete()``, read from ``graph.stream(modes="messages")``.

For each: time to first token (from the request to the first token in the
reader's hands) and its difference from bare httpx; tokens/s over the whole
answer and the ratio of wall time to bare httpx (1.00x = same speed); and the
client's CPU time per token (the server's CPU is not counted), which is
steadier than wall time on a busy machine. Best of R runs after a warm-up.
Two reference rows: ``(server: raw bytes)`` only receives the bytes (how fast
the server sends), ``(trio checkpoints)`` is one bare Trio checkpoint per
token (what the rule "every ``receive()`` is a checkpoint" costs at least).

    .venv/bin/python benchmarks/llm_stream.py [--tokens 20000] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import httpx
import trio

from trigraph import END, START, StateGraph
from trigraph.events import Token
from trigraph.llm import ChatModel

Timing = tuple[float, float, float, int]  # first token, wall time, CPU time, tokens


class Clock:
    """Wall and CPU time of this process since it was made; the first token's time."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.first = float("nan")
        self.count = 0

    def token(self) -> None:
        if not self.count:
            self.first = time.perf_counter() - self.wall
        self.count += 1

    def stop(self, count: int | None = None) -> Timing:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return self.first, wall, cpu, self.count if count is None else count


async def serve_child(tokens: int) -> None:
    """The child process: serve *tokens* tokens per answer; print the URL."""
    from trigraph.llm.testing import Script, serve

    answer = [f" w{i % 1000}" for i in range(tokens)]
    async with trio.open_nursery() as nursery:
        server = await nursery.start(lambda task_status: serve(
            script=Script(answer=answer), task_status=task_status))
        print(server.base_url, flush=True)


BODY = {"model": "bench", "messages": [{"role": "user", "content": "go"}], "stream": True}


async def raw_bytes(client: httpx.AsyncClient, url: str, tokens: int) -> Timing:
    """Only receive the bytes: how fast the server sends (a floor, not a reader)."""
    clock = Clock()
    async with client.stream("POST", f"{url}/chat/completions", json=BODY) as response:
        async for _ in response.aiter_raw():
            pass
    return clock.stop(tokens)


async def bare_httpx(client: httpx.AsyncClient, url: str) -> Timing:
    clock = Clock()
    async with client.stream("POST", f"{url}/chat/completions", json=BODY) as response:
        done = False
        async for line in response.aiter_lines():  # to the end: breaking out of httpx's
            if done or not line.startswith("data: "):  # iterators leaves them to the GC
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                continue
            choices = json.loads(data)["choices"]
            if choices and choices[0]["delta"].get("content"):
                clock.token()
    return clock.stop()


async def chat_stream(model: ChatModel) -> Timing:
    clock = Clock()
    async with model.stream("go") as tokens:
        async for _ in tokens:
            clock.token()
    return clock.stop()


async def chat_complete(model: ChatModel) -> Timing:
    clock = Clock()
    text = await model.complete("go")
    return clock.stop(text.count(" "))


def make_graph(model: ChatModel) -> Callable[[], Awaitable[Timing]]:
    async def ask(state: dict[str, str]) -> dict[str, str]:
        return {"answer": await model.complete(state["prompt"])}

    builder = StateGraph(dict)
    builder.add_node(ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile()

    async def run() -> Timing:
        clock = Clock()
        async with graph.stream({"prompt": "go"}, modes="messages") as events:
            async for event in events:
                if isinstance(event, Token):
                    clock.token()
        return clock.stop()

    return run


async def checkpoints(tokens: int) -> Timing:
    """*tokens* bare Trio checkpoints: the floor of one ``receive()`` per token."""
    clock = Clock()
    for _ in range(tokens):
        await trio.lowlevel.checkpoint()
    return clock.stop(tokens)


async def measure(url: str, tokens: int, runs: int) -> dict[str, Timing]:
    results: dict[str, list[Timing]] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        model = ChatModel(url, "bench", client=client)
        readers: dict[str, Callable[[], Awaitable[Timing]]] = {
            "(server: raw bytes)": lambda: raw_bytes(client, url, tokens),
            "httpx": lambda: bare_httpx(client, url),
            "ChatModel.complete": lambda: chat_complete(model),
            "ChatModel.stream": lambda: chat_stream(model),
            "graph messages": make_graph(model),
            "(trio checkpoints)": lambda: checkpoints(tokens),
        }
        for name, reader in readers.items():  # warm-up: connections, imports, caches
            await reader()
            results[name] = []
        for _ in range(runs):  # interleaved, so drift in the machine hits all alike
            for name, reader in readers.items():
                results[name].append(await reader())
    best: dict[str, Timing] = {}
    for name, timings in results.items():  # each figure is its own best
        _, wall, _, count = min(timings, key=lambda t: t[1])
        best[name] = (min(t[0] for t in timings), wall, min(t[2] for t in timings), count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve_child, args.tokens)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--tokens", str(args.tokens)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        best = trio.run(measure, url, args.tokens, args.runs)
    finally:
        child.terminate()
        child.wait()
    base = best["httpx"]
    print(f"{args.tokens} tokens per answer, best of {args.runs} runs; "
          "the server runs in a child process")
    print(f"{'reader':<20} {'1st token':>9} {'vs httpx':>9} {'tokens/s':>9} {'vs httpx':>8} "
          f"{'CPU us/token':>12} {'vs httpx':>8}")
    for name, (ttft, wall, cpu, count) in best.items():
        assert count == args.tokens, (name, count)
        first = (f"{ttft * 1e3:>6.2f} ms {(ttft - base[0]) * 1e3:>+6.2f} ms" if ttft == ttft
                 else f"{'-':>9} {'-':>9}")  # nan: no first token to time
        print(f"{name:<20} {first} "
              f"{count / wall:>9,.0f} {wall / base[1]:>7.2f}x "
              f"{cpu / count * 1e6:>12.2f} {cpu / base[2]:>7.2f}x")


if __name__ == "__main__":
    main()

"""Bare-Trio baselines: the least a Trio program can do for each workload.

- ``chain``: 100 awaits, each a scheduler pass (``trio.lowlevel.checkpoint``).
- ``fanout_*``/``memory``: a nursery of 1,000 / 10,000 trivial tasks.
- ``custom``: 100,000 items through ``open_memory_channel(64)``, one producer,
  one consumer.
- ``cancel``: a nursery of 10,000 ``sleep_forever`` tasks, cancelled.

Workloads 3, 5 and 6 have no bare-Trio counterpart.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from _common import (
    CANCEL_TASKS,
    CHAIN_LEN,
    CHANNEL_BUFFER,
    CUSTOM_CHUNKS,
    FANOUT_LARGE,
    FANOUT_SMALL,
    Sampler,
)

RUN = trio.run
NAME = "trio"


async def chain(sampler: Sampler) -> None:
    async def sample() -> None:
        for _ in range(CHAIN_LEN):
            await trio.lowlevel.checkpoint()

    await sampler.run(sample)


def _fanout(size: int) -> Any:
    async def workload(sampler: Sampler) -> None:
        async def task(i: int, out: list[int]) -> None:
            out.append(i)

        async def sample() -> None:
            out: list[int] = []
            async with trio.open_nursery() as nursery:
                for i in range(size):
                    nursery.start_soon(task, i, out)
            assert len(out) == size

        await sampler.run(sample)

    return workload


async def custom(sampler: Sampler) -> None:
    async def producer(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(CUSTOM_CHUNKS):
                await send.send(i)

    async def sample() -> dict[str, float]:
        count = 0
        first = 0.0
        t0 = time.perf_counter()
        send, receive = trio.open_memory_channel[int](CHANNEL_BUFFER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer, send)
            async with receive:
                async for _item in receive:
                    if count == 0:
                        first = time.perf_counter() - t0
                    count += 1
        total = time.perf_counter() - t0
        assert count == CUSTOM_CHUNKS
        return {"time": total, "first_event": first, "events_per_s": count / total}

    await sampler.run(sample)


async def cancel(sampler: Sampler) -> None:
    async def sample() -> dict[str, float]:
        blocked = 0
        all_blocked = trio.Event()

        async def block() -> None:
            nonlocal blocked
            blocked += 1
            if blocked == CANCEL_TASKS:
                all_blocked.set()
            await trio.sleep_forever()

        returned = 0.0
        scope = trio.CancelScope()

        async def runner() -> None:
            nonlocal returned
            with scope:
                async with trio.open_nursery() as nursery:
                    for _ in range(CANCEL_TASKS):
                        nursery.start_soon(block)
            returned = time.perf_counter()

        async with trio.open_nursery() as outer:
            outer.start_soon(runner)
            await all_blocked.wait()
            t0 = time.perf_counter()
            scope.cancel()
        return {"time": returned - t0}

    await sampler.run(sample)


WORKLOADS = {
    "chain": chain,
    "fanout_1k": _fanout(FANOUT_SMALL),
    "fanout_10k": _fanout(FANOUT_LARGE),
    "custom": custom,
    "memory": _fanout(FANOUT_LARGE),
    "cancel": cancel,
}

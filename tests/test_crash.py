"""Durability across real processes: a run killed with SIGKILL in the middle of a
step resumes in a fresh process to the state an uninterrupted run reaches,
without re-running a finished step; interrupt ids survive a restart.

Each test runs on SQLite and on PostgreSQL (the ``backend`` fixture). On
SQLite the kernel drops a dead process's claim at once; on PostgreSQL the
claim is a lease (1 s here) that lapses by itself.

These tests start Python subprocesses and wait for them in real time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
from _stores import Stores

from trigraph import Command, ThreadBusyError
from trigraph.abc import Checkpointer

pytestmark = pytest.mark.slow

SCRIPT = '''
"""A six-step graph on SQLite; every node notes in a side log that it ran."""

import json
import operator
import os
import sys
from typing import Annotated, TypedDict

import trio

from trigraph import (
    END, START, Command, PostgresCheckpointer, Send, SqliteCheckpointer, StateGraph, interrupt,
    once,
)

LOG = os.environ.get("CRASH_LOG", "")
BLOCK = os.environ.get("CRASH_BLOCK") == "1"


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    n: int


def note(line: str) -> None:
    with open(LOG, "a") as f:
        f.write(line + "\\n")


def plain(name: str):
    async def node(state: S) -> dict:
        note(name)
        await trio.sleep(0)
        return {"log": [name], "n": state["n"] + 1} if name != "s2" else {"log": [name]}

    return node


async def work(arg: dict) -> dict:
    note(f"w{arg['i']}")
    await trio.sleep(0)
    return {"log": [f"w{arg['i']}"]}


async def s4(state: S) -> dict:
    note("s4")
    if BLOCK:
        for _ in range(600):  # "forever": the test kills us long before 30 s
            await trio.sleep(0.05)
    return {"log": ["s4"], "n": state["n"] + 1}


def fan_out(state: S) -> list:
    return [Send("w", {"i": i}) for i in range(3)]


def build(cp):
    # step 1: s1; step 2: s2 + w0..w2 (Sends); step 3: s3 (joins s2 and w);
    # step 4: s4 (blocks when CRASH_BLOCK=1); step 5: s5; step 6: s6.
    g = StateGraph(S)
    for name in ("s1", "s2", "s3", "s5", "s6"):
        g.add_node(name, plain(name))
    g.add_node("w", work).add_node("s4", s4)
    g.add_edge(START, "s1").add_edge("s1", "s2").add_conditional_edges("s1", fan_out)
    g.add_edge(["s2", "w"], "s3").add_edge("s3", "s4").add_edge("s4", "s5")
    g.add_edge("s5", "s6").add_edge("s6", END)
    return g.compile(checkpointer=cp)


def asker(name: str):
    async def node(state: S) -> dict:
        note(name)
        return {"log": [f"{name}:{interrupt(name + '?')}"]}

    return node


def build_ask(cp):
    g = StateGraph(S)
    g.add_node("s1", plain("s1")).add_node("ask1", asker("ask1")).add_node("ask2", asker("ask2"))
    g.add_node("plain", plain("s2"))
    g.add_edge(START, "s1")
    for name in ("ask1", "ask2", "plain"):
        g.add_edge("s1", name).add_edge(name, END)
    return g.compile(checkpointer=cp)


async def mail(to: str) -> str:
    note("mail")
    return "mailed " + to


async def fx(state: S) -> dict:
    note("fx")
    receipt = await once("mail", mail, "ada")
    note("recorded")
    if BLOCK:
        for _ in range(600):
            await trio.sleep(0.05)
    return {"log": [receipt]}


def build_once(cp):
    g = StateGraph(S)
    g.add_node("fx", fx).add_edge(START, "fx").add_edge("fx", END)
    return g.compile(checkpointer=cp)


def open_cp(db: str):
    if db.startswith("host="):
        return PostgresCheckpointer(db, schema=os.environ["CRASH_SCHEMA"], lock_ttl=1)
    return SqliteCheckpointer(db)


async def main(mode: str, db: str) -> None:
    async with open_cp(db) as cp:
        if mode == "run":
            out = await build(cp).ainvoke({"log": [], "n": 0}, thread="job")
        elif mode == "resume":
            out = await build(cp).ainvoke(None, thread="job")
        elif mode == "ask":
            out = await build_ask(cp).ainvoke({"log": [], "n": 0}, thread="job")
            out["__interrupt__"] = [[i.node, i.id] for i in out["__interrupt__"]]
        elif mode == "ids":
            snap = await build_ask(cp).get_state("job")
            out = {"ids": [[i.node, i.id] for i in snap.interrupts]}
        elif mode == "once":
            out = await build_once(cp).ainvoke({"log": [], "n": 0}, thread="job")
        elif mode == "once-resume":
            out = await build_once(cp).ainvoke(None, thread="job")
        elif mode == "answer":
            out = await build_ask(cp).ainvoke(Command(resume=sys.argv[3]), thread="job")
        print(json.dumps(out))


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
'''


@attrs.define
class Backend:
    """Where the script keeps its thread: ``db`` as passed to it, and openers here."""

    stores: Stores
    ref: Stores
    db: str

    def open(self) -> Checkpointer:
        return self.stores.open(**({"lock_ttl": 1} if self.stores.kind == "postgres" else {}))

    async def wait_for_lapse(self, thread: str) -> None:
        """On PostgreSQL, wait until a dead process's claim has lapsed."""
        if self.stores.kind != "postgres":
            return
        cp = self.open()
        for _ in range(100):  # at most 5 s; the lease is 1 s
            try:
                lock = await cp.lock_thread(thread)
            except ThreadBusyError:
                await trio.sleep(0.05)
                continue
            await cp.unlock_thread(lock)
            return
        pytest.fail("the dead process's claim never lapsed")


@pytest.fixture(params=["sqlite", "postgres"])
def backend_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    kind: str = request.param
    stores = Stores(kind, tmp_path / "job.db")
    ref = Stores(kind, tmp_path / "ref.db")
    if kind == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        for s, name in ((stores, "job"), (ref, "ref")):
            s.dsn, s.schema = dsn, f"crash_{name}_{os.getpid()}_{tmp_path.name}"[:60]
    db = stores.dsn if kind == "postgres" else str(stores.path)
    assert db is not None
    return Backend(stores, ref, db)


@pytest.fixture
async def backend(backend_spec: Backend) -> Any:
    try:
        yield backend_spec
    finally:
        await backend_spec.stores.aclose()
        await backend_spec.ref.aclose()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "crash_graph.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def load(script: Path, log: Path) -> ModuleType:
    """Import the script in this process, its side log pointed at *log*."""
    os.environ["CRASH_LOG"] = str(log)
    try:
        spec = importlib.util.spec_from_file_location(f"crash_graph_{log.stem}", script)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        del os.environ["CRASH_LOG"]
    return module


def env(log: Path, *, block: bool = False, schema: str | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "CRASH_LOG": str(log),
        "CRASH_BLOCK": "1" if block else "0",
        "CRASH_SCHEMA": schema or "",
    }


async def run_script(
    script: Path, log: Path, *args: str, schema: str | None = None
) -> dict[str, Any]:
    done = await trio.run_process(
        [sys.executable, str(script), *args], env=env(log, schema=schema), capture_stdout=True,
        capture_stderr=True, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def read(path: Path) -> str:
    return path.read_text()


def lines(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


async def kill_mid_step_4(
    script: Path,
    backend: Backend,
    log: Path,
    err: Path,
    before_kill: Callable[[], Awaitable[None]] | None = None,
    *,
    mode: str = "run",
    mark: str = "s4",
) -> None:
    """Start the run in a subprocess and SIGKILL it once step 4 is under way
    (once *mark* is in the side log; after awaiting *before_kill*, while the
    run still holds its thread)."""
    with err.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(script), mode, backend.db],
            env=env(log, block=True, schema=backend.stores.schema),
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        # Wait, in short and bounded steps, until the mark is reached.
        for _ in range(1200):  # at most 30 s
            if lines(log)[mark]:
                break
            assert proc.poll() is None, read(err)
            await trio.sleep(0.025)
        else:
            pytest.fail(f"the run never reached {mark!r}")
        if before_kill is not None:
            await before_kill()
            assert proc.poll() is None, read(err)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()


async def test_sigkill_mid_step_then_resume_in_a_fresh_process(
    script: Path, tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "side.log"
    await kill_mid_step_4(script, backend, log, tmp_path / "stderr.txt")
    assert lines(log)["s4"] == 1

    module = load(script, tmp_path / "unused.log")
    cp = backend.open()
    graph = module.build(cp)
    snap = await graph.get_state("job")
    assert (snap.step, snap.next) == (3, ("s4",))
    assert snap.values["log"] == ["s1", "s2", "w0", "w1", "w2", "s3"]
    if backend.stores.kind == "postgres":
        # The dead process's lease still holds the thread, for at most its ttl.
        with pytest.raises(ThreadBusyError, match="another process"):
            await graph.ainvoke(None, thread="job")
        await backend.wait_for_lapse("job")

    resumed = await run_script(script, log, "resume", backend.db, schema=backend.stores.schema)

    reference = load(script, tmp_path / "ref.log")
    expected = await reference.build(backend.ref.open()).ainvoke({"log": [], "n": 0}, thread="job")
    assert resumed == expected
    assert expected["log"] == ["s1", "s2", "w0", "w1", "w2", "s3", "s4", "s5", "s6"]
    # Steps 1-3 ran once; step 4 twice (killed, then resumed); 5 and 6 once.
    assert lines(log) == Counter(
        {"s1": 1, "s2": 1, "w0": 1, "w1": 1, "w2": 1, "s3": 1, "s4": 2, "s5": 1, "s6": 1}
    )
    final = await graph.get_state("job")
    history = await cp.history("job", "")
    assert (final.values, final.step, final.next) == (expected, 6, ())
    assert [r.step for r in history] == [6, 5, 4, 3, 2, 1, 0]


async def test_a_thread_another_process_runs_is_busy_until_that_process_dies(
    script: Path, tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "side.log"
    module = load(script, tmp_path / "here.log")
    cp = backend.open()
    graph = module.build(cp)

    async def while_it_runs() -> None:
        with pytest.raises(ThreadBusyError, match="in another process"):
            await graph.ainvoke(None, thread="job")
        with pytest.raises(ThreadBusyError):
            await graph.update_state("job", {"n": 100})
        # Reading is never blocked, and nothing was written by the refused calls.
        assert (await graph.get_state("job")).step == 3
        assert len(await cp.history("job", "")) == 4
        if backend.stores.kind == "postgres":
            # The live process renews its lease (1 s) every third of it.
            await trio.sleep(1.5)
            with pytest.raises(ThreadBusyError, match="in another process"):
                await graph.ainvoke(None, thread="job")

    await kill_mid_step_4(script, backend, log, tmp_path / "stderr.txt", while_it_runs)
    # SQLite: the kernel dropped the dead process's claim, the thread is free at once;
    # PostgreSQL: its lease lapses within the ttl.
    await backend.wait_for_lapse("job")
    out = await graph.ainvoke(None, thread="job")
    assert out["log"] == ["s1", "s2", "w0", "w1", "w2", "s3", "s4", "s5", "s6"]
    assert lines(tmp_path / "here.log") == Counter({"s4": 1, "s5": 1, "s6": 1})


async def test_interrupt_ids_survive_a_restart(
    script: Path, tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "side.log"
    schema = backend.stores.schema
    paused = await run_script(script, log, "ask", backend.db, schema=schema)
    ids = dict(paused["__interrupt__"])
    assert sorted(ids) == ["ask1", "ask2"]
    # Read back by another process, and by this one: the same ids.
    again = await run_script(script, log, "ids", backend.db, schema=schema)
    assert dict(again["ids"]) == ids
    module = load(script, log)
    graph = module.build_ask(backend.open())
    assert {i.node: i.id for i in (await graph.get_state("job")).interrupts} == ids
    # Answer ask1 here; ask2 stays pending under its id.
    partial = await graph.ainvoke(Command(resume={ids["ask1"]: "yes"}), thread="job")
    assert [(i.node, i.id) for i in partial["__interrupt__"]] == [("ask2", ids["ask2"])]
    # A fresh process answers the one left with a bare value.
    final = await run_script(script, log, "answer", backend.db, "no", schema=schema)
    assert final == {"log": ["s1", "ask1:yes", "ask2:no", "s2"], "n": 1}
    assert lines(log) == Counter({"s1": 1, "ask1": 2, "ask2": 3, "s2": 1})


async def test_a_side_effect_in_once_survives_a_sigkill(
    script: Path, tmp_path: Path, backend: Backend
) -> None:
    log = tmp_path / "side.log"
    await kill_mid_step_4(script, backend, log, tmp_path / "stderr.txt", mode="once",
                          mark="recorded")
    await backend.wait_for_lapse("job")
    resumed = await run_script(script, log, "once-resume", backend.db,
                               schema=backend.stores.schema)
    assert resumed == {"log": ["mailed ada"], "n": 0}
    # The node ran twice (killed, then resumed); the mail went out once.
    assert lines(log) == Counter({"fx": 2, "mail": 1, "recorded": 2})

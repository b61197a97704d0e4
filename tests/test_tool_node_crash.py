"""A process killed (SIGKILL) in the middle of a ToolNode step resumes in a
fresh process without running again the call that had finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent('''
    import os, sys, trio
    from trigraph import END, START, SqliteCheckpointer, StateGraph
    from trigraph.messages import AIMessage, MessagesState, ToolCall
    from trigraph.tools import ToolNode

    LOG = os.environ["CRASH_LOG"]

    def note(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")

    async def side(to: str) -> str:
        note("side ran")
        return f"mailed {to}"

    async def block() -> str:
        note("block started")
        if os.environ.get("CRASH_BLOCK") == "1":
            await trio.sleep(30)  # the test kills us long before
        return "unblocked"

    async def main():
        async with SqliteCheckpointer(sys.argv[1]) as cp:
            g = StateGraph(MessagesState)
            g.add_node("tools", ToolNode([side, block])).add_edge(START, "tools")
            graph = g.compile(checkpointer=cp)
            if sys.argv[2] == "start":
                ask = AIMessage(tool_calls=[ToolCall("side", {"to": "ada"}, "c0"),
                                            ToolCall("block", {}, "c1")], id="ai")
                await graph.ainvoke({"messages": [ask]}, thread="t")
            else:
                final = await graph.ainvoke(None, thread="t")
                print([(m.tool_call_id, m.content) for m in final["messages"][1:]])

    trio.run(main)
''')


def test_a_finished_call_is_not_rerun_after_a_crash(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log.txt"
    db = str(tmp_path / "t.db")
    env = {**os.environ, "CRASH_LOG": str(log), "CRASH_BLOCK": "1"}
    with subprocess.Popen([sys.executable, str(script), db, "start"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            deadline = time.monotonic() + 30
            while not (log.exists() and "side ran" in log.read_text()
                       and "block started" in log.read_text()):
                assert proc.poll() is None, "the first run ended early"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(0.5)  # side's result is committed by then (written as it returns)
        finally:
            proc.send_signal(signal.SIGKILL)
    env["CRASH_BLOCK"] = "0"
    done = subprocess.run([sys.executable, str(script), db, "resume"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('c0', 'mailed ada'), ('c1', 'unblocked')]"
    assert sorted(log.read_text().splitlines()) == ["block started", "block started", "side ran"]

"""``trigraph demo agent`` in a real subprocess: a person at the terminal
approves (or refuses) the booking; a closed stdin is one clean line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def demo(tmp_path: Path, stdin: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "trigraph", "demo", "agent", "--db", str(tmp_path / "t.db")],
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )


def test_the_person_approves_the_booking(tmp_path: Path) -> None:
    done = demo(tmp_path, "maybe\ny\n")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "the agent wants to call book_flight(" in done.stderr
    assert "please answer y or n" in done.stderr
    assert "Done: you fly FR 8145" in done.stdout
    assert "searching Ryanair" in done.stdout  # the tool's progress streamed
    assert "cancelled" not in done.stdout  # pausing for approval is not a cancellation


def test_a_closed_stdin_leaves_the_thread_waiting(tmp_path: Path) -> None:
    done = demo(tmp_path, None)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("approve? [y/n] > trigraph: no answer (stdin is closed)")
    assert "trigraph resume trigraph._cli._demo_agent:graph --thread demo-agent-" in last
    # The hint works: resuming with it finishes the booking.
    command = last.split("Answer later with: ", 1)[1]
    thread = command.split("--thread ", 1)[1].split()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    resumed = subprocess.run(
        [sys.executable, "-m", "trigraph", "resume", "trigraph._cli._demo_agent:graph",
         "--thread", thread, "--db", str(tmp_path / "t.db"), "--resume",
         '{"decisions": [{"type": "reject", "message": "no"}]}'],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "I did not book anything" in resumed.stdout

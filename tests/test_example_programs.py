"""Every program in ``examples/`` runs for real, as a user would run it.

Each example is started in a fresh interpreter with ``OPENAI_BASE_URL``
unset, so the LLM examples talk to the shipped token server on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Something each example prints only if it did its job.
EXPECTED = {
    "agent.py": "[agent finished: 8 messages, 4 tool answers]",
    "background_agent.py": "(sources: doc-a, doc-b, doc-c)",
    "live_dashboard.py": "alerts:",
    "stream_chat.py": "[stream_chat finished:",
    "async_streaming_pipeline.py": "[summary saved:",
    "parallel_questions.py": "4 questions answered concurrently",
    "research_chat.py": "[fact_check] done",
}


def _run(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=EXAMPLES.parent,
    )


def test_every_example_is_listed() -> None:
    programs = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("property_")}
    assert programs == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    done = _run(name)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.strip(), "the example printed nothing"
    assert EXPECTED[name] in done.stdout

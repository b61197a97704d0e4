"""``trigraph demo agent``: run the demo agent, and ask the person at the
terminal to approve each tool call it wants to make.

The run is the command line's usual one (``execute``): it streams into the
renderer and pauses at the agent's ``interrupt()``. Then each action request
is put to the person on stderr (``y``: approve, ``n``: reject), and the
thread resumes with the decisions, until the agent is done. The invariant:
a closed stdin (or a person who does not answer) leaves the thread paused
and ends with one line telling how to answer later, never a traceback.
"""

from __future__ import annotations

import json
import secrets
import shlex
import sys
from typing import Any

import trio

from .._types import Command, Interrupt
from ._load import UsageError
from ._run import Job, execute, resolve_db, resume_command

__all__ = ["run_agent_demo"]

_APPROVE = {"type": "approve"}


def _decide(request: dict[str, Any], resume_hint: str) -> dict[str, Any]:
    """One decision from the terminal for one action request."""
    call = f"{request.get('name')}({json.dumps(request.get('args'), ensure_ascii=False)})"
    while True:
        sys.stderr.write(f"\nthe agent wants to call {call}\napprove? [y/n] > ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise UsageError(
                f"no answer (stdin is closed); the agent waits for approval of {call}. "
                f"Answer later with: {resume_hint}"
            )
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return dict(_APPROVE)
        if answer in ("n", "no"):
            return {"type": "reject", "message": "The person did not approve this call."}
        sys.stderr.write("please answer y or n\n")


def _decisions(intr: Interrupt, hint: str) -> dict[str, Any]:
    value = intr.value if isinstance(intr.value, dict) else {}
    if value.get("error"):
        sys.stderr.write(f"(the last answer did not fit: {value['error']})\n")
    requests = value.get("action_requests") or []
    return {"decisions": [_decide(r, hint) for r in requests]}


def run_agent_demo(db_option: str | None, as_json: bool) -> int:
    """Run the demo agent, approving its calls at the terminal; the exit status."""
    from ._commands import _current_state
    from ._demo_agent import QUESTION, TARGET, graph

    thread = f"demo-agent-{secrets.token_hex(3)}"
    db = resolve_db(db_option, None)
    data: Any = {"messages": [QUESTION]}
    while True:
        status = execute(Job(graph, TARGET, data, thread, db, db_option, None, as_json))
        if status != 0:
            return status
        snapshot = trio.run(_current_state, graph, db, thread)
        if not snapshot.interrupts:
            break
        shown = None if db_option is None else str(db)  # a password shows as ***
        hint = resume_command(TARGET, thread, shown, "--resume",
                              '{"decisions": [{"type": "approve"}]}')
        answers = {i.id: _decisions(i, hint) for i in snapshot.interrupts}
        data = Command(resume=answers if len(answers) > 1 else next(iter(answers.values())))
    where = "" if db_option is None else f" --db {shlex.quote(str(db))}"
    print(f"\nthe agent ran on thread {thread!r}, kept in {db}; look at it with:\n"
          f"  trigraph state --thread {thread}{where}", file=sys.stderr, flush=True)
    return 0

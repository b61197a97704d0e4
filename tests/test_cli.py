"""The ``trigraph`` command line, driven as a user would: the real console
script in a subprocess (``python -m trigraph`` and the installed script),
on the graphs of ``tests/cli_graphs.py`` and the shipped demo.

Subprocess tests take real time (each process starts Python, Trio and
rich, about half a second), so they are marked slow; the graphs they run
sleep only where a test needs time to act (Ctrl-C, live tokens).
"""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

GRAPHS = str(Path(__file__).with_name("cli_graphs.py"))
SCRIPT = shutil.which("trigraph", path=str(Path(sys.executable).parent))
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals and ptys")
TIMEOUT = 30


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "TRIGRAPH_DEBUG", "OPENAI_BASE_URL", "COLUMNS",
                        "CLI_FAIL", "CLI_SLOW")}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    script: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the command line to its end and return what it did."""
    if script and SCRIPT is None:
        pytest.skip("the trigraph console script is not installed next to sys.executable")
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "trigraph"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
        env=_env(env), input=stdin if stdin is not None else "",
    )


def target(name: str) -> str:
    return f"{GRAPHS}:{name}"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of *text* parsed as JSON (each must be one object)."""
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def final(out: str) -> dict[str, Any]:
    lines = json_lines(out)
    assert lines[-1]["type"] == "Final"
    return lines[-1]


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The run failed with *code* and one line on stderr, no traceback; return it."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- fast, in-process -----------------------------------------------------------


def test_missing_rich_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trigraph._cli import main

    monkeypatch.setitem(sys.modules, "rich", None)  # makes `import rich` fail
    assert main(["mermaid", target("counter")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'trigraph[cli]'" in err


def test_target_without_attribute_finds_the_graph(capsys: pytest.CaptureFixture[str]) -> None:
    from trigraph._cli import main

    assert main(["mermaid", "trigraph._cli._demo"]) == 0
    assert "search_notes & search_papers & search_web --> answer" in capsys.readouterr().out


# -- run --------------------------------------------------------------------------


@pytest.mark.slow
def test_run_json_prints_one_object_per_event() -> None:
    result = cli("run", target("counter"), "--input", '{"n": 1}', "--json", script=True)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    types = [line["type"] for line in lines]
    assert types[0] == "TaskStart"
    assert {"TaskStart", "TaskEnd", "Update", "Custom"} <= set(types)
    assert "Values" not in types  # not asked for
    update = next(line for line in lines if line["type"] == "Update")
    assert update == {"type": "Update", "step": 1, "ns": [], "node": "inc",
                      "update": {"n": 2, "log": ["inc"]}}
    assert lines[-1] == {"type": "Final", "step": 2, "ns": [], "interrupts": [],
                         "state": {"n": 4, "log": ["inc", "double"]}}


@pytest.mark.slow
def test_run_json_mode_selects_the_events() -> None:
    result = cli("run", target("counter"), "--input", '{"n": 1}', "--json", "--mode", "values")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [(line["type"], line["step"]) for line in lines] == [
        ("Values", 0), ("Values", 1), ("Values", 2), ("Final", 2)]


@pytest.mark.slow
def test_run_renders_plain_lines_when_not_a_terminal() -> None:
    result = cli("run", target("counter"), "--input", '{"n": 1}')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out
    assert re.search(r"^step 1  inc \d+\.\d\ds$", out, re.MULTILINE)
    assert re.search(r"^step 2  double \d+\.\d\ds$", out, re.MULTILINE)
    assert "  inc: {'progress': 'inc'}" in out
    assert out.index("final state:") > out.index("step 2")
    assert "'n': 4" in out


@pytest.mark.slow
def test_node_error_names_node_and_step_and_resume_finishes(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    result = cli("run", target("failing"), "--input", '{"n": 1}', "--thread", "f",
                 "--db", db, env={"CLI_FAIL": "1"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first, second = result.stderr.strip().splitlines()
    assert first == "trigraph: error in node 'flaky', step 2: ValueError: boom"
    assert f"trigraph resume {GRAPHS}:failing --thread f --db {db}" in second
    assert "step 2  flaky failed after" in result.stdout

    result = cli("resume", target("failing"), "--thread", "f", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    assert final(result.stdout)["state"] == {"n": 4, "log": ["inc", "flaky", "double"]}


@pytest.mark.slow
def test_node_error_without_thread(tmp_path: Path) -> None:
    result = cli("run", target("failing"), "--input", '{"n": 1}', env={"CLI_FAIL": "1"})
    line = assert_clean_failure(result, 1)
    assert line == "trigraph: error in node 'flaky', step 2: ValueError: boom"


# -- durable threads: interrupts, Ctrl-C, inspection -----------------------------


@pytest.mark.slow
def test_resume_answers_an_interrupt(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    result = cli("run", target("asking"), "--input", '{"n": 1}', "--thread", "a", "--db", db,
                 "--json")
    assert result.returncode == 0, result.stderr
    end = final(result.stdout)
    assert end["state"] == {"n": 2, "log": ["inc"]}
    [intr] = end["interrupts"]
    assert intr["node"] == "ask"
    assert intr["value"] == {"question": "approve?", "n": 2}
    assert "--resume JSON" in result.stderr

    result = cli("state", "--thread", "a", "--db", db, "--json")
    state = json.loads(result.stdout)
    assert state["next"] == ["ask"]
    assert [i["id"] for i in state["interrupts"]] == [intr["id"]]

    result = cli("resume", target("asking"), "--thread", "a", "--db", db, "--resume", '"yes"',
                 "--json")
    assert result.returncode == 0, result.stderr
    assert final(result.stdout)["state"] == {"n": 2, "log": ["inc", "ask: yes"]}


@pytest.mark.slow
def test_resume_asks_for_each_pending_interrupt(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    result = cli("run", target("asking_twice"), "--input", '{"n": 1}', "--thread", "a",
                 "--db", db)
    assert result.returncode == 0, result.stderr
    assert "node 'ask' asks: {'question': 'approve?', 'n': 2}" in result.stdout

    result = cli("resume", target("asking_twice"), "--thread", "a", "--db", db, "--json",
                 stdin='sure\n{"k": 1}\n')
    assert result.returncode == 0, result.stderr
    assert "node 'ask_too' asks: and you?" in result.stderr
    log = final(result.stdout)["state"]["log"]
    assert sorted(log) == ["ask: sure", "ask_too: {'k': 1}", "inc"]


@pytest.mark.slow
def test_resume_continues_a_pause_then_says_done(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    result = cli("run", target("paused"), "--input", '{"n": 1}', "--thread", "p", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "paused before node 'double'" in result.stdout
    result = cli("resume", target("paused"), "--thread", "p", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "step 2  double" in result.stdout
    assert "'n': 4" in result.stdout
    line = assert_clean_failure(cli("resume", target("paused"), "--thread", "p", "--db", db), 2)
    assert line == "trigraph: thread 'p' is done (step 2); nothing to resume"


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.mark.slow
@POSIX
def test_ctrl_c_cancels_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    command = [sys.executable, "-m", "trigraph", "run", target("sleepy"), "--input",
               '{"n": 1}', "--thread", "s", "--db", db, "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=_env({"CLI_SLOW": "60"})) as proc:
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines))
        reader.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                assert line is not None, "the run ended before its slow step started"
                event = json.loads(line)
                if event["type"] == "TaskStart" and event["node"] == "slow":
                    break
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=TIMEOUT) == 130
            assert time.monotonic() - started < 10  # cancelled, not slept through
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(TIMEOUT)
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert "Traceback" not in err
    assert "trigraph: cancelled; thread 's' keeps step 1 (next: slow)" in err
    assert f"resume it with: trigraph resume {GRAPHS}:sleepy --thread s --db {db}" in err

    result = cli("resume", target("sleepy"), "--thread", "s", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    assert final(result.stdout)["state"] == {"n": 4, "log": ["inc", "slow", "double"]}


@pytest.mark.slow
def test_threads_state_and_history_read_a_run(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    assert cli("run", target("counter_builder"), "--input", '{"n": 1}', "--thread", "c",
               "--db", db).returncode == 0
    assert cli("run", target("shapes"), "--thread", "s", "--db", db).returncode == 0

    threads = cli("threads", "--db", db)
    assert threads.returncode == 0, threads.stderr
    assert re.search(r"^\s*s\s+1\s+\(done\)", threads.stdout, re.MULTILINE)
    assert re.search(r"^\s*c\s+2\s+\(done\)", threads.stdout, re.MULTILINE)
    assert [t["thread"] for t in json_lines(cli("threads", "--db", db, "--json").stdout)] == [
        "s", "c"]

    state = cli("state", "--thread", "c", "--db", db)
    assert state.returncode == 0, state.stderr
    assert "\x1b" not in state.stdout
    assert "(nothing: the thread is done)" in state.stdout
    assert "'n': 4" in state.stdout
    assert "'log': ['inc', 'double']" in state.stdout
    # Without the graph, an attrs value still reads back, by name.
    assert "Point(x=1, y=2)" in cli("state", "--thread", "s", "--db", db).stdout

    history = json_lines(cli("history", "--thread", "c", "--db", db, "--json").stdout)
    assert [(h["step"], h["next"]) for h in history] == [
        (2, []), (1, ["double"]), (0, ["inc"])]
    assert history[0]["parent_checkpoint_id"] == history[1]["checkpoint_id"]
    with_graph = cli("history", target("counter_builder"), "--thread", "c", "--db", db,
                     "--json")
    assert json_lines(with_graph.stdout) == history
    table = cli("history", "--thread", "c", "--db", db).stdout
    for h in history:
        assert h["checkpoint_id"] in table


# -- bad input ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of databases: a text file, a newer schema, foreign tables, one thread."""
    tmp_path = tmp_path_factory.mktemp("dbs")
    (tmp_path / "text.db").write_text("not a database\n")
    conn = sqlite3.connect(tmp_path / "newer.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()
    conn = sqlite3.connect(tmp_path / "foreign.db")
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    subprocess.run([sys.executable, "-m", "trigraph", "run", target("counter"),
                    "--thread", "t", "--db", str(tmp_path / "t.db")], check=True,
                   capture_output=True, env=_env(), timeout=TIMEOUT)
    return tmp_path


BAD_INPUT = [
    (["run", "missing.py:graph"], "no such file: missing.py"),
    (["run", "{graphs}:nothing"], "has no attribute 'nothing'"),
    (["run", "{graphs}:not_a_graph"], "is not a graph but a value of type int"),
    (["run", "no_such_module_xyz:graph"], "no module named 'no_such_module_xyz'"),
    (["run", "{graphs}:counter", "--input", "{n: 1}"], "--input is not valid JSON"),
    (["run", "{graphs}:counter", "--input", "@{tmp}/none.json"], "--input: cannot read"),
    (["run", "{graphs}:counter", "--input", '{"m": 1}'],
     "the input has key 'm', which the input schema does not accept"),
    (["run", "{graphs}:counter", "--input", "[1]"], "the input must be a mapping"),
    (["run", "{graphs}:counter", "--mode", "values,logs"], "--mode: unknown mode(s) logs"),
    (["run"], "the following arguments are required: TARGET"),
    (["state", "--thread", "nope", "--db", "{tmp}/t.db"], "no thread 'nope' in"),
    (["history", "--thread", "nope", "--db", "{tmp}/t.db"], "no thread 'nope' in"),
    (["resume", "{graphs}:counter", "--thread", "nope", "--db", "{tmp}/t.db"],
     "no thread 'nope' in"),
    (["resume", "{graphs}:counter", "--thread", "t", "--db", "{tmp}/t.db", "--resume", "1"],
     "thread 't' has no pending interrupt to answer"),
    (["threads", "--db", "{tmp}/absent.db"], "no trigraph database at"),
    (["threads", "--db", "{tmp}/text.db"], "is not a trigraph database: file is not a database"),
    (["state", "--thread", "t", "--db", "{tmp}/foreign.db"],
     "is not a trigraph database (it has tables invoices)"),
    (["run", "{graphs}:counter", "--thread", "t", "--db", "{tmp}/newer.db"],
     "was written by a newer trigraph (schema v99"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(dbs: Path, args: list[str], message: str) -> None:
    args = [a.replace("{graphs}", GRAPHS).replace("{tmp}", str(dbs)) for a in args]
    line = assert_clean_failure(cli(*args, cwd=dbs), 2)
    assert message in line


# -- mermaid and the demo -------------------------------------------------------------


@pytest.mark.slow
def test_mermaid_prints_the_flowchart() -> None:
    result = cli("mermaid", target("counter"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "flowchart TD"
    assert "    inc --> double" in result.stdout


@pytest.mark.slow
def test_demo_runs_durably_and_streams_tokens(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = cli("demo", "--db", str(db), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    tokens = [line["text"] for line in lines if line["type"] == "Token"]
    assert len(tokens) > 10
    assert "".join(tokens).startswith("Once upon a time")
    assert {line["node"] for line in lines if line["type"] == "Custom"} >= {
        "search_web", "search_papers", "search_notes", "fact_check"}
    step_one = {line["node"] for line in lines if line["type"] == "TaskStart"
                and line["step"] == 1}
    assert step_one == {"search_web", "search_papers", "search_notes"}
    assert final(result.stdout)["state"]["answer"] == "".join(tokens)
    thread = re.search(r"trigraph state --thread (demo-\w+) --db", result.stderr)
    assert thread is not None, result.stderr
    assert not (tmp_path / ".trigraph").exists()
    state = cli("state", "--thread", thread[1], "--db", str(db), "--json")
    assert json.loads(state.stdout)["values"]["checked"] == "consistent with 4 findings"


@pytest.mark.slow
@POSIX
def test_demo_streams_tokens_live_on_a_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trigraph", "demo"], cwd=tmp_path, env=_env(),
        stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
    )
    os.close(slave)
    seen: dict[bytes, float] = {}
    out = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            for mark in (b"Once", b"final state:"):
                if mark in out and mark not in seen:
                    seen[mark] = time.monotonic()
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        os.close(master)
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    # The first token was on the terminal well before the run ended: the
    # answer streamed for a while, then fact_check took another half second.
    assert seen[b"final state:"] - seen[b"Once"] > 0.4
    assert (tmp_path / ".trigraph" / "threads.db").exists()
    assert b"step 1: " in out  # the spinner names the running nodes
    # NO_COLOR: styles such as bold may stay, colours go.
    assert not re.search(rb"\x1b\[[0-9;]*(3[0-9]|9[0-7])m", out)


def test_json_lines_keep_a_message_s_role() -> None:
    from trigraph._cli._render import to_json
    from trigraph.messages import AIMessage, HumanMessage

    rows = json.loads(to_json([HumanMessage("hi", id="1"), AIMessage("yo", id="2")]))
    assert [(r["type"], r["content"]) for r in rows] == [("human", "hi"), ("ai", "yo")]


@pytest.mark.slow
def test_a_thread_another_run_holds_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import trio

    from trigraph import SqliteCheckpointer

    db = tmp_path / "t.db"
    first = cli("run", target("counter"), "--thread", "t1", "--db", str(db), "--input",
                '{"n": 1}', "--json")
    assert first.returncode == 0, first.stderr

    async def hold_and_try() -> subprocess.CompletedProcess[str]:
        async with SqliteCheckpointer(db) as cp:
            lock = await cp.lock_thread("t1")  # as a run in this process would
            try:
                return await trio.to_thread.run_sync(
                    lambda: cli("run", target("counter"), "--thread", "t1", "--db", str(db),
                                "--input", '{"n": 5}')
                )
            finally:
                await cp.unlock_thread(lock)

    line = assert_clean_failure(trio.run(hold_and_try), 1)
    assert line == (
        "trigraph: thread 't1' has a run in progress (a run in another process); one thread "
        "runs one run at a time: wait for it to finish (or cancel it), or use another thread"
    )


# -- PostgreSQL -----------------------------------------------------------------------


def _url(pg_dsn: str, password: str) -> str:
    """The session server's DSN as a ``postgresql://`` URL with a (trusted) password."""
    params = dict(p.split("=", 1) for p in pg_dsn.split())
    host = params.pop("host")
    query = "&".join(f"{k}={v}" for k, v in params.items() if k not in ("user", "dbname"))
    return (f"postgresql://{params.get('user', 'postgres')}:{password}@/"
            f"{params.get('dbname', 'postgres')}?host={host}&{query}")


@pytest.mark.slow
def test_a_postgresql_db_runs_resumes_and_inspects_without_showing_the_password(
    pg_dsn: str,
) -> None:
    db = _url(pg_dsn, "hunter2")
    thread = f"f{os.getpid()}"
    try:
        result = cli("run", target("failing"), "--input", '{"n": 1}', "--thread", thread,
                     "--db", db, env={"CLI_FAIL": "1"})
        assert result.returncode == 1
        first, second = result.stderr.strip().splitlines()
        assert first == "trigraph: error in node 'flaky', step 2: ValueError: boom"
        assert "--db 'postgresql://postgres:***@/" in second
        result = cli("resume", target("failing"), "--thread", thread, "--db", db, "--json")
        assert result.returncode == 0, result.stderr
        assert final(result.stdout)["state"] == {"n": 4, "log": ["inc", "flaky", "double"]}
        threads = cli("threads", "--db", db)
        assert threads.returncode == 0, threads.stderr
        assert thread in threads.stdout
        assert "postgresql://postgres:***@/" in threads.stdout
        state = json.loads(cli("state", "--thread", thread, "--db", db, "--json").stdout)
        assert (state["step"], state["next"]) == (3, [])
        history = json_lines(cli("history", "--thread", thread, "--db", db, "--json").stdout)
        assert [h["step"] for h in history] == [3, 2, 1, 0]
        missing = assert_clean_failure(cli("state", "--thread", "nope", "--db", db), 2)
        assert "no thread 'nope' in postgresql://postgres:***@/" in missing
        for out in (result, threads):
            assert "hunter2" not in out.stdout + out.stderr
        assert "hunter2" not in missing
    finally:
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM trigraph.checkpoints WHERE thread = %s", (thread,))


@pytest.mark.slow
def test_an_unreachable_postgresql_db_is_one_line_naming_the_host() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = f"postgresql://app:hunter2@127.0.0.1:{port}/app"
    for args in (["threads"], ["state", "--thread", "t"],
                 ["run", target("counter"), "--thread", "t"]):
        line = assert_clean_failure(cli(*args, "--db", db), 2)
        assert f"PostgreSQL at 127.0.0.1:{port}/app (cannot connect)" in line
        assert "hunter2" not in line

"""``trigraph serve`` and ``trigraph worker`` on the command line: what they
serve, what they say at start, and one clean line for every bad usage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _server import GRAPHS, Server

pytest.importorskip("hypercorn")
from trigraph._cli._load import UsageError
from trigraph._cli._serve import load_graphs


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trigraph", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_graph_ids_from_targets_and_a_config(tmp_path: Path) -> None:
    (tmp_path / "langgraph.json").write_text(json.dumps(
        {"graphs": {"asker": f"./{GRAPHS.name}:ask_graph"}}))
    (tmp_path / GRAPHS.name).write_text(GRAPHS.read_text())
    graphs = load_graphs([f"{GRAPHS}:chain", f"other={GRAPHS}:ticks"],
                         str(tmp_path / "langgraph.json"))
    assert sorted(graphs) == ["asker", "chain", "other"]
    with pytest.raises(UsageError, match="two graphs are named 'chain'"):
        load_graphs([f"{GRAPHS}:chain", f"chain={GRAPHS}:ticks"], None)
    with pytest.raises(UsageError, match="at least one graph"):
        load_graphs([], None)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_graphs([], str(tmp_path / "bad.json"))
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(UsageError, match="no \"graphs\""):
        load_graphs([], str(tmp_path / "empty.json"))


@pytest.mark.slow
def test_bad_usage_is_one_line(tmp_path: Path) -> None:
    assert "no such file" in one_line_failure(cli("serve", "nope.py:graph"))
    assert "is not a graph" in one_line_failure(cli("serve", f"{GRAPHS}:operator"))
    assert "--db" in cli("worker", f"{GRAPHS}:chain").stderr
    assert "folder" in one_line_failure(cli("serve", f"{GRAPHS}:chain", "--db", str(tmp_path)))
    assert "--workers" in one_line_failure(cli("serve", f"{GRAPHS}:chain", "--workers", "-1"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        line = one_line_failure(cli("serve", f"{GRAPHS}:chain", "--port", port,
                                    "--db", str(tmp_path / "t.db")))
    assert "cannot serve" in line
    assert "serve" in cli("--help").stdout


@pytest.mark.slow
def test_without_a_key_it_says_it_listens_on_this_machine_only(tmp_path: Path) -> None:
    server = Server(tmp_path, "--db", str(tmp_path / "t.db"), targets=[f"{GRAPHS}:chain"])
    try:
        server.wait_for("127.0.0.1 only")
        assert "no API key" in server.text()
    finally:
        assert server.stop() == 0
    assert "stopping" in server.text()


@pytest.mark.slow
def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://app:s3cret@127.0.0.1:{port}/app"
    for command in ("serve", "worker"):
        line = one_line_failure(cli(command, f"{GRAPHS}:chain", "--db", url, cwd=tmp_path))
        assert "s3cret" not in line
        assert f"127.0.0.1:{port}" in line

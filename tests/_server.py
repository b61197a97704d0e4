"""Starting and stopping real ``trigraph serve`` / ``trigraph worker`` processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

HERE = Path(__file__).parent
GRAPHS = HERE / "server_graphs.py"
TARGETS = [f"{GRAPHS}:chain", f"ask={GRAPHS}:ask_graph", f"{GRAPHS}:ticks", f"{GRAPHS}:nested"]
_PORT = re.compile(r"listening on http://[^:]+:(\d+)")


class Proc:
    """A ``trigraph`` subprocess; :meth:`stop` ends it by its pid."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("TRIGRAPH_API_KEY", None)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "trigraph", *args], stdout=self._out,
            stderr=subprocess.STDOUT, env=env, cwd=log.parent,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self.popen.poll() is not None:
                raise RuntimeError(f"trigraph exited ({self.popen.returncode}):\n{self.text()}")
            time.sleep(0.02)
        raise TimeoutError(f"no {pattern!r} from trigraph in {timeout} s:\n{self.text()}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._out.close()

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()
        return self.popen.returncode


class Server(Proc):
    """``trigraph serve`` on a free port."""

    def __init__(self, folder: Path, *extra: str, targets: Sequence[str] = TARGETS,
                 name: str = "serve") -> None:
        super().__init__(["serve", *targets, "--port", "0", *extra], folder / f"{name}.log")
        self.port = int(self.wait_for(_PORT.pattern)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"x-api-key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

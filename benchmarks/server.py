"""``trigraph serve`` against ``langgraph dev``, driven by the same langgraph-sdk client.

Both servers serve the same three-node graph (``server_graphs/``: a -> b -> c,
each appending its name; b writes ``n_custom`` custom events) on a free port
of 127.0.0.1, started by this script as subprocesses and stopped by pid.
Workloads, all stateless runs (``thread_id=None``) as in the reference:

(a) sequential ``runs.wait``: median ms per call;
(b) 200 concurrent ``runs.wait`` (``asyncio.gather`` on one client), 3 batches:
    runs/s of the median batch;
(c) one ``runs.stream`` of a run writing 10,000 custom events, 3 times: time to
    the first SSE event (``metadata``) and to the first ``custom``, and the
    whole stream in events/s;
(d) the server's resident memory (its process tree): idle, after each
    workload, and the peak.

Usage (a separate venv: ``langgraph-cli[inmem]`` must not enter the dev one)::

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install -e '.[bench]'    # langgraph-cli[inmem], langgraph-sdk
    .bench-venv/bin/python benchmarks/server.py [--seq-langgraph 30] [--pg URL]

``--pg DSN`` adds ``trigraph serve --workers 0`` on PostgreSQL with one, then
two ``trigraph worker`` processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client

HERE = Path(__file__).resolve().parent
GRAPHS = HERE / "server_graphs"
BIN = Path(sys.executable).parent
CUSTOM = 10_000
CONCURRENT = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) summed over *pid* and its descendants, in MiB."""
    pids = [pid]
    for p in list(pids):
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    rss = hwm = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
        except OSError:
            pass
    return rss, hwm


class Service:
    def __init__(self, name: str, args: list[str], cwd: Path, env: dict[str, str],
                 url: str | None) -> None:
        self.name = name
        self.log = (cwd / f"{name}.log").open("wb")
        self.popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.url = url

    def wait_ready(self, timeout: float = 60) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                if self.url is None or httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready in {timeout} s")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)  # its own session: it and its children
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.close()


async def drive(url: str, seq: int, pid: int, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    client = get_client(url=url, timeout=httpx.Timeout(10, read=600, write=600, pool=600))
    inp = {"items": [], "n_custom": 0}
    out["rss_idle"] = tree_rss_mb(pid)[0]
    await client.runs.wait(None, "chain", input=inp)  # warm-up
    times = []
    for _ in range(seq):
        start = time.perf_counter()
        result = await client.runs.wait(None, "chain", input=inp)
        times.append(time.perf_counter() - start)
        assert result["items"] == ["a", "b", "c"], result
    out["seq_ms"] = statistics.median(times) * 1000
    out["seq_p90_ms"] = sorted(times)[int(len(times) * 0.9)] * 1000
    out["rss_a"] = tree_rss_mb(pid)[0]
    print(f"  {label}: (a) {seq} sequential waits, median {out['seq_ms']:.1f} ms", flush=True)

    batches = []
    for _ in range(3):
        start = time.perf_counter()
        results = await asyncio.gather(*(client.runs.wait(None, "chain", input=inp)
                                         for _ in range(CONCURRENT)))
        batches.append(time.perf_counter() - start)
        assert all(r["items"] == ["a", "b", "c"] for r in results)
    out["conc_runs_s"] = CONCURRENT / statistics.median(batches)
    out["rss_b"] = tree_rss_mb(pid)[0]
    print(f"  {label}: (b) {CONCURRENT} concurrent waits: {out['conc_runs_s']:.0f} runs/s",
          flush=True)

    firsts, first_custom, rates = [], [], []
    for _ in range(3):
        start = time.perf_counter()
        n = 0
        first = first_c = None
        async for part in client.runs.stream(None, "chain", input={"items": [],
                                                                   "n_custom": CUSTOM},
                                             stream_mode="custom"):
            if first is None:
                first = time.perf_counter() - start
            if part.event == "custom":
                n += 1
                if first_c is None:
                    first_c = time.perf_counter() - start
        total = time.perf_counter() - start
        assert n == CUSTOM, n
        firsts.append(first or 0.0)
        first_custom.append(first_c or 0.0)
        rates.append(n / total)
    out["first_ms"] = statistics.median(firsts) * 1000
    out["first_custom_ms"] = statistics.median(first_custom) * 1000
    out["events_s"] = statistics.median(rates)
    out["rss_c"], out["hwm"] = tree_rss_mb(pid)
    print(f"  {label}: (c) first event {out['first_ms']:.1f} ms, {out['events_s']:.0f} ev/s",
          flush=True)
    await client.http.client.aclose()
    return out


def start_langgraph(work: Path) -> Service:
    (work / "lg").mkdir()
    shutil.copy(GRAPHS / "lg_chain.py", work / "lg" / "lg_chain.py")
    (work / "lg" / "langgraph.json").write_text(
        '{"dependencies": ["."], "graphs": {"chain": "./lg_chain.py:graph"}}')
    port = free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    return Service("langgraph", [str(BIN / "langgraph"), "dev", "--no-browser", "--no-reload",
                                 "--host", "127.0.0.1", "--port", str(port)],
                   work / "lg", env, f"http://127.0.0.1:{port}")


def start_trigraph(work: Path, db: str, name: str, *extra: str) -> Service:
    port = free_port()
    return Service(name, [str(BIN / "trigraph"), "serve", f"chain={GRAPHS / 'tg_chain.py'}:graph",
                          "--port", str(port), "--db", db, *extra],
                   work, dict(os.environ), f"http://127.0.0.1:{port}")


def start_worker(work: Path, db: str, name: str) -> Service:
    return Service(name, [str(BIN / "trigraph"), "worker",
                          f"chain={GRAPHS / 'tg_chain.py'}:graph", "--db", db],
                   work, dict(os.environ), None)


def run_one(label: str, server: Service, seq: int, extra: list[Service] = ()) -> dict[str, Any]:
    try:
        ready = server.wait_ready()
        for s in extra:
            s.wait_ready()
        time.sleep(1.0)
        print(f"{label}: ready after {ready:.1f} s", flush=True)
        result = asyncio.run(drive(server.url or "", seq, server.popen.pid, label))
        if extra:  # the workers' memory counts too
            result["rss_c"] += sum(tree_rss_mb(s.popen.pid)[0] for s in extra)
            result["hwm"] += sum(tree_rss_mb(s.popen.pid)[1] for s in extra)
        return result
    finally:
        for s in extra:
            s.stop()
        server.stop()


def table(results: dict[str, dict[str, Any]]) -> None:
    base = results.get("langgraph dev")
    rows = [("(a) sequential runs.wait, median ms", "seq_ms", "{:.1f}", False),
            ("(b) 200 concurrent runs.wait, runs/s", "conc_runs_s", "{:.0f}", True),
            ("(c) first SSE event, ms", "first_ms", "{:.1f}", False),
            ("(c) first custom event, ms", "first_custom_ms", "{:.1f}", False),
            ("(c) 10,000 custom events, events/s", "events_s", "{:.0f}", True),
            ("(d) RSS after (c), MB", "rss_c", "{:.1f}", False),
            ("(d) peak RSS (VmHWM), MB", "hwm", "{:.1f}", False)]
    names = list(results)
    print()
    print("| workload | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for title, key, fmt, higher in rows:
        cells = []
        for name in names:
            value = results[name][key]
            cell = fmt.format(value)
            if base is not None and name != "langgraph dev" and base[key]:
                ratio = value / base[key] if higher else base[key] / value
                cell += f" ({ratio:.1f}x)" if higher or key in ("seq_ms", "first_ms",
                                                                "first_custom_ms") else (
                    f" ({value / base[key]:.2f} of it)")
            cells.append(cell)
        print(f"| {title} | " + " | ".join(cells) + " |")
    print("\n(ratios: speed-ups over langgraph dev; memory as a fraction of its figure)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq", type=int, default=200, help="sequential waits (trigraph)")
    parser.add_argument("--seq-langgraph", type=int, default=30,
                        help="sequential waits for langgraph dev (each ~1 s)")
    parser.add_argument("--skip-langgraph", action="store_true")
    parser.add_argument("--pg", metavar="DSN", help="also run on this PostgreSQL database")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_langgraph:
            results["langgraph dev"] = run_one("langgraph dev", start_langgraph(work),
                                               args.seq_langgraph)
        results["trigraph serve (SQLite)"] = run_one(
            "trigraph serve (SQLite)", start_trigraph(work, str(work / "t.db"), "trigraph"),
            args.seq)
        if args.pg:
            for n in (1, 2):
                label = f"trigraph serve + {n} worker (PostgreSQL)"
                api = start_trigraph(work, args.pg, f"api{n}", "--workers", "0")
                workers = [start_worker(work, args.pg, f"w{n}{i}") for i in range(n)]
                results[label] = run_one(label, api, args.seq, workers)
    table(results)


if __name__ == "__main__":
    main()

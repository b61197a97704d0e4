"""The page at ``/ui``: first paint, and the main thread under 10,000 streamed events.

Starts ``trigraph serve benchmarks/server_graphs/tg_chain.py:graph`` on a free
port of 127.0.0.1 (a fresh SQLite file, no API key), and headless Debian
Chromium driven by Playwright (the flags this machine's closed network needs),
then measures with the browser's Performance API:

(a) first paint: the page loaded *rounds* times, each in a fresh browser
    context (empty HTTP cache): Paint Timing's ``first-contentful-paint``, and
    the ``trigraph-ready`` mark the page sets once the graph is drawn;
(b) 10,000 custom events: a run of the graph whose node b writes 10,000
    custom events, started from the page and watched to its end, *rounds*
    times: the longest main-thread task (Long Tasks API: every task over
    50 ms is reported; none means none was), the longest gap between two
    animation frames, and the time from the click to the page showing all
    10,000.

Usage (the ``test`` extra has Playwright; Chromium: ``apt-get install -y chromium``)::

    .venv/bin/python benchmarks/ui.py [--rounds 5] [--events 10000] [--json]

Server and browser are stopped, by pid, at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GRAPH = HERE / "server_graphs" / "tg_chain.py"
CHROMIUM = os.environ.get("TRIGRAPH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Installed before the page's own scripts: long tasks and frame gaps from the start.
WATCH = """
window.__bench = { longTasks: [], maxGap: 0, last: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longTasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
const frame = (t) => {
  const b = window.__bench;
  if (b.last && b.watching) b.maxGap = Math.max(b.maxGap, t - b.last);
  b.last = t;
  requestAnimationFrame(frame);
};
requestAnimationFrame(frame);
"""


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = folder / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trigraph", "serve", f"chain={GRAPH}:graph", "--port", "0",
         "--db", str(folder / "ui.db")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=folder,
        env={**{k: v for k, v in os.environ.items() if k != "TRIGRAPH_API_KEY"},
             "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+?):(\d+)", log.read_text())
        if found:
            return proc, f"http://127.0.0.1:{found[2]}"
        if proc.poll() is not None:
            raise SystemExit(f"trigraph serve exited:\n{log.read_text()}")
        time.sleep(0.05)
    raise SystemExit(f"trigraph serve did not listen within 30 s:\n{log.read_text()}")


def first_paint(browser: Any, url: str, rounds: int) -> dict[str, list[float]]:
    fcp, ready = [], []
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/ui/")
        page.wait_for_selector("body[data-ready=true]")
        fcp.append(page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0].startTime"))
        ready.append(page.evaluate("performance.getEntriesByName('trigraph-ready')[0].startTime"))
        context.close()
    return {"fcp_ms": fcp, "ready_ms": ready}


def stream(browser: Any, url: str, events: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/ui/#graph=chain")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#input", json.dumps({"n_custom": events}))
    page.evaluate("window.__bench.longTasks = []; window.__bench.watching = true;"
                  "window.__bench.t0 = performance.now()")
    page.click("#start")
    page.wait_for_selector("#run-status[data-status=done]", timeout=120_000)
    shown = int(page.inner_text('#run-counts [data-count="custom"]'))
    result = page.evaluate("""() => {
      const b = window.__bench;
      b.watching = false;
      return { longTasks: b.longTasks, maxGap: b.maxGap, t0: b.t0,
               elapsed: performance.now() - b.t0,
               domEntries: document.querySelectorAll('#log .entry').length };
    }""")
    context.close()
    if errors:
        raise SystemExit(f"the page reported errors: {errors}")
    if shown != events:
        raise SystemExit(f"the page shows {shown} custom events, not {events}")
    tasks = [d for _, d in result["longTasks"]]
    return {"longest_task_ms": max(tasks, default=0.0), "long_tasks": len(tasks),
            "long_task_list": [(round(s - result["t0"]), round(d)) for s, d in result["longTasks"]],
            "max_frame_gap_ms": result["maxGap"], "click_to_all_shown_ms": result["elapsed"],
            "dom_entries": result["domEntries"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                try:
                    paint = first_paint(browser, url, args.rounds)
                    runs = [stream(browser, url, args.events) for _ in range(args.rounds)]
                finally:
                    browser.close()
        finally:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(15)
    report = {"paint": paint, "stream": runs, "load_average": os.getloadavg()}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    med = statistics.median
    print(f"page at /ui, {args.rounds} rounds, server and browser on this machine "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  first-contentful-paint  median {med(paint['fcp_ms']):6.1f} ms   "
          f"max {max(paint['fcp_ms']):6.1f} ms   (first load {paint['fcp_ms'][0]:.1f} ms)")
    print(f"  graph drawn (ready)     median {med(paint['ready_ms']):6.1f} ms   "
          f"max {max(paint['ready_ms']):6.1f} ms")
    print(f"{args.events:,} custom events streamed to the page, {args.rounds} runs")
    longest = [r["longest_task_ms"] for r in runs]
    print(f"  longest main-thread task  worst {max(longest):6.1f} ms   "
          f"(long tasks over 50 ms per run: {[r['long_tasks'] for r in runs]})")
    gaps = [r["max_frame_gap_ms"] for r in runs]
    print(f"  longest gap between frames median {med(gaps):6.1f} ms   worst {max(gaps):6.1f} ms")
    total = [r["click_to_all_shown_ms"] for r in runs]
    print(f"  click to all shown        median {med(total):6.1f} ms   "
          f"(log entries in the DOM: {runs[0]['dom_entries']})")


if __name__ == "__main__":
    main()

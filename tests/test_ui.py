"""The page at ``/ui`` in a real browser: headless Chromium (Debian's
``/usr/bin/chromium``) driven by Playwright, against a real ``trigraph serve``
subprocess (with an API key) serving ``tests/ui_graphs.py``, whose LLM node
talks to ``trigraph.llm.testing``'s token server in a second subprocess.

One server, one token server and one browser serve the whole module; each
test gets a fresh browser context (a new tab: the API key is seeded in its
sessionStorage, except in the test of the key itself). Any console error,
page error, error banner or request to another origin fails the test (the
browser's own report of a 401, or of a connection a test cuts, is allowed
only in that test). A screenshot of each scenario is kept in
``test-artifacts/ui/``.

Without Chromium (or Playwright) these tests skip, saying why; under CI
(``CI=true``) they fail instead, so a CI machine without a browser cannot pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
GRAPHS = HERE / "ui_graphs.py"
ARTIFACTS = HERE.parent / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("TRIGRAPH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEY = "ui-test-key-41"
SEED_KEY = ("if (!sessionStorage.getItem('trigraph.apiKey')) "
            f"sessionStorage.setItem('trigraph.apiKey', {KEY!r});")


CUSTOM = "Number(document.querySelector('[data-count=custom]').textContent)"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (it is in the test extra)"
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
                "(or point TRIGRAPH_CHROMIUM at one)")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing_browser()
    if missing is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the browser tests cannot run under CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playwright gives the browser a fresh --user-data-dir of its own.
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[str]:
    """The URL of a ``trigraph serve`` of the UI graphs (API key ``KEY``)."""
    from _server import Server

    folder = tmp_path_factory.mktemp("ui")
    log = (folder / "tokens.log").open("wb")
    tokens = subprocess.Popen([sys.executable, str(GRAPHS)], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = None
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"token server on (\S+)", _read(folder / "tokens.log"))):
            assert tokens.poll() is None, _read(folder / "tokens.log")
            assert time.monotonic() < deadline, _read(folder / "tokens.log")
            time.sleep(0.02)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TRIGRAPH_UI_LLM", found[1])
            server = Server(folder, "--api-key", KEY, "--db", str(folder / "ui.db"), targets=[
                f"{GRAPHS}:story", f"ask={GRAPHS}:ask_graph", f"{GRAPHS}:agent", f"{GRAPHS}:ticks"])
        yield server.url
    finally:
        if server is not None:
            assert server.stop() == 0, server.text()
        os.kill(tokens.pid, signal.SIGTERM)
        tokens.wait(10)
        log.close()


class CuttingProxy:
    """A TCP proxy to *port* on 127.0.0.1 whose open connections can be cut at
    once, as a dropped network cuts them (the browser reconnects through it)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *conns: socket.socket) -> None:
        for conn in conns:
            with self.lock:
                self.open.discard(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def cut(self) -> None:
        with self.lock:
            conns = list(self.open)
        self._drop(*conns)

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


class Ui:
    """A page of the site in a fresh browser context, watching for errors."""

    def __init__(self, browser: Any, site: str, name: str, *, seed_key: bool = True) -> None:
        self.site = site
        self.name = name
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        if seed_key:
            self.context.add_init_script(SEED_KEY)
        self.errors: list[str] = []
        self.allowed: list[str] = []
        self.page = self.new_page()

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: None if r.url.startswith(self.site) else
                self.errors.append(f"request to another origin: {r.url}"))
        return page

    def open(self, graph: str) -> Any:
        self.page.goto(f"{self.site}/ui/#graph={graph}")
        self.ready()
        return self.page

    def ready(self, page: Any = None) -> None:
        page = page or self.page
        page.wait_for_selector("body[data-ready=true]")

    def count(self, name: str) -> int:
        return int(self.page.inner_text(f'#run-counts [data-count="{name}"]'))

    def status(self) -> str:
        return str(self.page.get_attribute("#run-status", "data-status"))

    def wait_status(self, *statuses: str, timeout: float = 20_000) -> str:
        selector = ", ".join(f"#run-status[data-status={s}]" for s in statuses)
        self.page.wait_for_selector(selector, timeout=timeout)
        return self.status()

    def start(self, data: Any) -> None:
        self.page.fill("#input", json.dumps(data))
        self.page.click("#start")

    def state(self) -> Any:
        box = self.page.locator("#state-box")
        if box.get_attribute("open") is None:
            self.page.click("#state-box summary")
        self.page.wait_for_function("document.getElementById('state').textContent.startsWith('{')")
        return json.loads(self.page.inner_text("#state"))

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}.png"))

    def close(self) -> None:
        self.shot("end")
        banner = self.page.locator("#banner")
        problems = [e for e in self.errors if e not in self.allowed]
        if banner.is_visible():
            problems.append(f"error banner: {self.page.inner_text('#banner-text')}")
        self.context.close()
        assert problems == [], problems


@pytest.fixture
def ui(browser: Any, site: str, request: pytest.FixtureRequest) -> Iterator[Ui]:
    page = Ui(browser, site, request.node.name.removeprefix("test_"))
    yield page
    page.close()


def test_draws_the_graph_and_lights_a_run_with_its_tokens(ui: Ui) -> None:
    page = ui.open("story")
    # Edges: plain ones solid, a router's and a Command's destinations dashed.
    solid = ".edge:not(.conditional)[data-source=write][data-target=review]"
    assert page.locator(solid).count() == 1
    for source, target in [("plan", "write"), ("plan", "skip"), ("review", "write"),
                           ("review", "__end__")]:
        dashed = f".edge.conditional[data-source={source}][data-target={target}]"
        assert page.locator(dashed).count() == 1
    dash = page.eval_on_selector(".edge.conditional path",
                                 "p => getComputedStyle(p).strokeDasharray")
    assert dash not in ("", "none")

    # Input is checked before anything is sent.
    page.fill("#input", '{"topic": }')
    page.click("#start")
    assert "not JSON" in page.inner_text("#input-error")
    page.fill("#input", '{"topic": 3, "colour": "red"}')
    page.click("#start")
    problems = page.inner_text("#input-error")
    assert "$.topic: expected string, got integer" in problems
    assert 'unknown key "colour"' in problems
    assert ui.status() == "idle"

    ui.start({"topic": "a hedgehog"})
    page.wait_for_selector("[data-node=write].running")
    texts = []
    while ui.status() != "done":
        text = page.locator(".kind-message .data").all_text_contents()
        if text and (not texts or text[0] != texts[-1]):
            texts.append(text[0])
            if len(texts) == 2:
                ui.shot("streaming")
        page.wait_for_timeout(15)
    final = page.locator(".kind-message .data").text_content()
    assert final == "Once upon a time, there was a hedgehog. In the end, the hedgehog was happy."
    # The answer grew on the page as its tokens came: partial texts, then more.
    assert len(texts) >= 2, texts
    assert len(texts[0]) < len(final)
    assert all(final.startswith(t) for t in texts)
    assert ui.count("tokens") == 15
    assert ui.count("updates") == 3
    for node in ("plan", "write", "review"):
        assert page.locator(f"[data-node={node}].done").count() == 1
    assert page.locator("[data-node=skip]").get_attribute("class") == "node"
    assert page.locator(".kind-update .who").all_text_contents() == ["plan", "write", "review"]
    assert ui.state()["story"] == final


def test_answers_an_interrupt_as_text_then_as_json(ui: Ui) -> None:
    page = ui.open("ask")
    ui.start({"question": "Which colour?"})
    assert ui.wait_status("paused") == "paused"
    assert page.locator("[data-node=ask].paused").count() == 1
    value = json.loads(page.inner_text("#interrupt .interrupt-value"))
    assert value == {"question": "Which colour?"}
    # A paused thread shows its question again when the page is opened anew.
    page.reload()
    ui.ready()
    ui.wait_status("paused")
    assert page.locator("[data-node=ask].paused").count() == 1
    page.fill("#interrupt textarea.answer", "blue")
    assert page.inner_text("#interrupt .resume-preview") == 'resume value: "blue"'
    ui.shot("question")
    page.click("#interrupt button.primary")
    assert ui.wait_status("done") == "done"
    assert page.locator("#interrupt").is_hidden()
    assert ui.state()["answer"] == "blue"

    page.click("#new-thread")
    ui.start({"question": "Which shade?"})
    ui.wait_status("paused")
    page.fill("#interrupt textarea.answer", '{"shade": 3}')
    page.select_option("#interrupt select.answer-as", "json")
    page.click("#interrupt button.primary")
    ui.wait_status("done")
    assert ui.state()["answer"] == {"shade": 3}


def _agent_turn(ui: Ui, decide: str, **fields: str) -> list[Any]:
    page = ui.page
    page.click("#new-thread") if page.locator("#new-thread").is_visible() else None
    ui.start({"messages": ["Book me two seats to Oslo"]})
    ui.wait_status("paused")
    box = page.locator("#interrupt fieldset.decision")
    assert box.locator("legend").inner_text() == "book_flight"
    assert json.loads(box.locator(".call-args").inner_text()) == {"to": "Oslo", "seats": 2}
    box.locator(f"input[value={decide}]").check()
    if "message" in fields:
        box.locator(".reject-message").fill(fields["message"])
    if "args" in fields:
        box.locator(".edit-args").fill(fields["args"])
    ui.shot(decide)
    page.click("#interrupt button.primary")
    assert ui.wait_status("done") == "done"
    return list(ui.state()["messages"])


def test_approves_rejects_and_edits_an_agents_tool_call(ui: Ui) -> None:
    ui.open("agent")
    approved = _agent_turn(ui, "approve")
    assert [m["content"] for m in approved if m["type"] == "tool"] == ["booked 2 seat(s) to Oslo"]
    assert approved[-1]["content"] == "Your trip is settled."

    rejected = _agent_turn(ui, "reject", message="Too dear: ask me first.")
    tools = [m for m in rejected if m["type"] == "tool"]
    assert len(tools) == 1
    assert "Too dear: ask me first." in tools[0]["content"]
    assert tools[0]["status"] == "error"

    ui.page.click("#new-thread")
    ui.start({"messages": ["Book me two seats to Oslo"]})
    ui.wait_status("paused")
    box = ui.page.locator("#interrupt fieldset.decision")
    box.locator("input[value=edit]").check()
    box.locator(".edit-args").fill('{"to": "Oslo", "seats": "x"')  # not JSON: refused on the page
    ui.page.click("#interrupt button.primary")
    assert "not JSON" in box.locator(".error").inner_text()
    assert ui.status() == "paused"
    box.locator(".edit-args").fill('{"to": "Bergen", "seats": 1}')
    ui.page.click("#interrupt button.primary")
    ui.wait_status("done")
    edited = ui.state()["messages"]
    assert [m["content"] for m in edited if m["type"] == "tool"] == ["booked 1 seat(s) to Bergen"]


def test_steps_through_a_threads_history_forks_and_edits_it(ui: Ui) -> None:
    page = ui.open("story")
    ui.start({"topic": "an owl"})
    ui.wait_status("done")
    thread = page.get_attribute("#run-thread", "data-thread")
    assert thread

    page.click("[role=tab][data-tab=threads]")
    page.fill("#thread-query", thread)
    page.click("#thread-search button[type=submit]")
    page.click(f"#thread-list [data-thread='{thread}']")
    page.wait_for_selector("#history [data-index]")
    steps = page.locator("#history button").all_inner_texts()
    assert [s.split(" · ")[0] for s in steps] == ["step 3", "step 2", "step 1", "step 0"]
    assert "end" in steps[0]
    assert "next: write" in steps[2]

    page.click("#history [data-index='1']")  # step 2: write's work
    assert page.inner_text("#checkpoint-title").startswith("Step 2")
    changes = page.locator("#checkpoint-diff li").all_inner_texts()
    assert any(c.startswith("story added") for c in changes), changes
    assert any(c.startswith("drafts + ") for c in changes), changes
    page.click("#older")
    assert page.inner_text("#checkpoint-title").startswith("Step 1")
    assert page.locator("[data-node=write].next").count() == 1  # what runs next, drawn
    ui.shot("history")

    # Fork from step 1 (time travel): write and review run again on a new branch.
    page.fill("#fork-input", "null")
    page.click("#fork-form button[type=submit]")
    ui.wait_status("done")
    assert page.locator(".kind-update .who").all_text_contents() == ["write", "review"]
    page.click("[role=tab][data-tab=threads]")
    page.wait_for_function("document.querySelectorAll('#history [data-index]').length === 7")
    assert "⑂ fork" in page.inner_text("#history")

    # Edit the latest state, as a node would.
    page.click("#history [data-index='0']")
    page.fill("#edit-values", '{"topic": "a cat"}')
    page.click("#edit-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#history [data-index]').length === 8")
    assert page.locator("#checkpoint-diff li").all_inner_texts() == ['topic: "an owl" → "a cat"']

    # Search by metadata finds the thread, by a key=value pair.
    page.fill("#thread-query", "graph_id=story")
    page.click("#thread-search button[type=submit]")
    page.wait_for_selector(f"#thread-list [data-thread='{thread}']")


def test_reload_mid_run_shows_every_event_once(ui: Ui) -> None:
    page = ui.open("ticks")
    ui.start({"count": 80, "delay": 0.025})
    page.wait_for_function(f"{CUSTOM} >= 25")
    page.reload()
    ui.ready()
    ui.wait_status("done")
    after = int(page.get_attribute("#run-status", "data-resumed-after") or 0)
    assert after > 25  # picked up after the last event the first page had, not from scratch
    page.wait_for_function("document.querySelectorAll('#log .kind-custom').length >= 80")
    seen = [json.loads(t)["n"] for t in page.locator(".kind-custom .data").all_text_contents()]
    assert seen == list(range(80))
    assert ui.count("custom") == 80
    assert page.locator("[data-node=tick].done").count() == 1


def test_a_cut_connection_resumes_after_the_last_event(browser: Any, site: str) -> None:
    proxy = CuttingProxy(int(site.rsplit(":", 1)[1]))
    try:
        ui = Ui(browser, proxy.url, "cut_connection")
        joins: list[str] = []
        ui.page.on("request", lambda r: joins.append(r.headers.get("last-event-id", ""))
                   if r.method == "GET" and "/stream" in r.url else None)
        page = ui.open("ticks")
        ui.start({"count": 80, "delay": 0.025})
        page.wait_for_function(f"{CUSTOM} >= 25")
        proxy.cut()  # the network drops the run's stream
        ui.wait_status("done")
        page.wait_for_function("document.querySelectorAll('#log .kind-custom').length >= 80")
        seen = [json.loads(t)["n"] for t in page.locator(".kind-custom .data").all_text_contents()]
        assert seen == list(range(80))
        assert ui.count("custom") == 80
        assert joins, "the page did not reconnect"
        assert int(joins[0]) > 25  # after the last event it had
        # The cut itself is reported by the browser; nothing else may be.
        ui.allowed = [e for e in ui.errors if "net::ERR_" in e]
        ui.close()
    finally:
        proxy.close()


def test_cancels_a_run(ui: Ui) -> None:
    page = ui.open("ticks")
    ui.start({"count": 2000, "delay": 0.01})
    page.wait_for_selector("[data-node=tick].running")
    page.wait_for_function(f"{CUSTOM} >= 5")
    page.click("#cancel")
    assert ui.wait_status("cancelled", timeout=10_000) == "cancelled"
    assert ui.count("custom") < 2000
    assert page.locator("[data-node=tick].running").count() == 0


def test_shows_a_failed_run(ui: Ui) -> None:
    page = ui.open("ticks")
    ui.start({"count": 3, "fail": True})
    assert ui.wait_status("error") == "error"
    assert "ValueError: the tick node failed on purpose" in page.inner_text("#run-status")
    assert page.locator("[data-node=tick].error").count() == 1
    assert "failed on purpose" in page.locator(".kind-error .data").last.text_content()
    assert ui.count("custom") == 3


def test_ten_thousand_events_keep_the_page_bounded(ui: Ui) -> None:
    page = ui.open("ticks")
    ui.start({"count": 10_000})
    ui.wait_status("done", timeout=60_000)
    assert ui.count("custom") == 10_000
    # The log drew the newest entries while they flooded in, then filled back up
    # to the 300 rows it keeps.
    page.wait_for_function("document.querySelectorAll('#log .entry').length === 300")
    assert page.locator(".kind-custom .data").last.text_content() == '{"n":9999}'
    assert "earlier entries are not shown" in page.inner_text("#log-hidden")


def test_asks_for_the_api_key_once_per_tab(browser: Any, site: str) -> None:
    ui = Ui(browser, site, "api_key", seed_key=False)
    page = ui.page
    page.goto(f"{site}/ui/#graph=ask")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-dialog input", "wrong")
    page.click("#key-dialog button[type=submit]")
    page.wait_for_selector("#key-dialog[open] .refused:not([hidden])")
    page.fill("#key-dialog input", KEY)
    page.click("#key-dialog button[type=submit]")
    ui.ready()
    assert page.evaluate("sessionStorage.getItem('trigraph.apiKey')") == KEY
    page.reload()  # kept for the tab: not asked again
    ui.ready()
    assert page.locator("#key-dialog[open]").count() == 0
    other = ui.new_page()  # another tab asks again
    other.goto(f"{site}/ui/")
    other.wait_for_selector("#key-dialog[open]")
    refused = [e for e in ui.errors if "status of 401" in e]
    assert len(refused) == 3  # no key, the wrong key, the other tab's first request
    ui.allowed = refused
    ui.close()

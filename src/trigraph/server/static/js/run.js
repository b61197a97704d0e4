// Starting, watching, cancelling and answering runs.
//
// A run is created with POST /threads/{id}/runs/stream (resumable, so its
// events carry ids and it goes on if the page goes away). Its reference is
// kept in sessionStorage; when the page is left (a reload), the events seen so
// far are saved with the id of the last one, and the next page draws them and
// joins the run's stream with that id as Last-Event-ID: every event is shown
// once, none twice.

import { enc, get, post } from "./api.js";
import { InterruptView } from "./interrupt.js";
import { check, parseJson, pretty } from "./json.js";
import { LogView, MODES, RunModel } from "./log.js";
import { RunStream } from "./sse.js";

const SAVED = "trigraph.run";
const $ = (id) => document.getElementById(id);

export class RunView {
  constructor(app) {
    this.app = app;
    this.model = new RunModel();
    this.view = new LogView({ log: $("log"), hidden: $("log-hidden"), counts: $("run-counts") });
    this.interrupts = new InterruptView($("interrupt"), (resume) => this.guard(this.start({ command: { resume } })));
    this.stream = null;
    this.threadId = null;
    this.frame = 0;
    this.schema = null;
    this.shownValues = -1;
    $("run-form").addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    $("input").addEventListener("input", () => {
      sessionStorage.setItem(`trigraph.input.${this.app.graphId}`, $("input").value);
      this.validate();
    });
    $("cancel").addEventListener("click", () => this.guard(this.cancel()));
    $("new-thread").addEventListener("click", () => this.setThread(null));
    $("state-box").addEventListener("toggle", () => this.schedule());
    addEventListener("pagehide", () => this.persist());
    // Back from the back-forward cache with its stream cut: start afresh (it resumes).
    addEventListener("pageshow", (e) => { if (e.persisted && this.unloading) location.reload(); });
  }

  guard(promise) {
    return promise.catch((error) => { if (error.name !== "AbortError") this.app.fail(error); });
  }

  // A graph was picked: check its input against `schema`; bring back the
  // input last written for it in this tab.
  setGraph(graphId, schema) {
    this.schema = schema;
    $("input").value = sessionStorage.getItem(`trigraph.input.${graphId}`) ?? "{}";
    this.validate();
  }

  setThread(threadId) {
    if (this.stream) return;
    this.threadId = threadId;
    $("run-thread").textContent = threadId || "a new thread";
    $("run-thread").dataset.thread = threadId || "";
    $("new-thread").hidden = !threadId;
    this.app.remember();
  }

  // Continue `threadId` here: if it waits for an answer, show the question.
  async openThread(threadId) {
    if (this.stream) return;
    this.setThread(threadId);
    this.model.reset();
    this.view.clear();
    this.interrupts.hide();
    const state = await get(`/threads/${enc(threadId)}/state`);
    const interrupts = (state.tasks || []).flatMap((t) => t.interrupts.map((i) => ({ ...i, node: t.name })));
    this.model.values = state.values;
    this.model.valuesSeq = 1;
    this.model.settle(interrupts.map((i) => i.node));
    if (interrupts.length) {
      this.interrupts.show(interrupts);
      this.status("paused", "waiting for an answer");
    } else {
      this.status("idle", `thread at step ${state.metadata && state.metadata.step !== undefined ? state.metadata.step : "–"}`);
    }
    this.shownValues = -1;
    this.render();
  }

  // The input as a value, or undefined after showing what is wrong with it.
  validate() {
    const out = $("input-error");
    const parsed = parseJson($("input").value);
    let problems = parsed.error ? [parsed.error] : [];
    const v = parsed.value;
    if (!parsed.error && v !== null && (typeof v !== "object" || Array.isArray(v))) {
      problems = ["the input must be a JSON object (or null to continue the thread)"];
    } else if (!parsed.error && v !== null && this.schema) {
      problems = check(v, this.schema).slice(0, 5);
    }
    out.textContent = problems.join("\n");
    out.hidden = problems.length === 0;
    $("input").setAttribute("aria-invalid", String(problems.length > 0));
    return problems.length ? undefined : v;
  }

  submit() {
    const input = this.validate();
    if (input === undefined) { $("input").focus(); return; }
    if (input === null && !this.threadId) {
      $("input-error").textContent = "null continues a thread: open one first, or give an input";
      $("input-error").hidden = false;
      return;
    }
    this.guard(this.start({ input }));
  }

  // Start a run on the current thread (a new one if none): with `input`, a
  // `command` ({resume} or {update}), or from `checkpointId` (a fork).
  async start({ input = null, command, checkpointId, threadId } = {}) {
    if (this.stream) throw new Error("a run is already streaming; cancel it or wait for its end");
    const graphId = this.app.graphId;
    if (threadId) this.setThread(threadId);
    this.begin();
    let failure = null;
    try {
      if (!this.threadId) {
        const thread = await post("/threads", { graph_id: graphId });
        this.setThread(thread.thread_id);
      }
      const body = { assistant_id: graphId, input, stream_mode: MODES, stream_subgraphs: true,
        stream_resumable: true, on_disconnect: "continue", multitask_strategy: "reject" };
      if (command) { body.command = command; delete body.input; }
      if (checkpointId) body.checkpoint_id = checkpointId;
      this.save({ graphId, threadId: this.threadId, runId: null });
      await this.follow((stream) => stream.create(`/threads/${enc(this.threadId)}/runs/stream`, body));
    } catch (error) {
      if (error.name === "AbortError") return;
      failure = error;
    } finally {
      await this.finish(failure);
    }
  }

  begin() {
    this.model.reset();
    this.view.clear();
    this.interrupts.hide();
    this.shownValues = -1;
    this.status("starting", "starting…");
    $("start").disabled = true;
    $("cancel").disabled = false;
    $("graph").disabled = true;
    this.app.paint();
  }

  async follow(open) {
    const stream = this.stream = new RunStream({
      modes: MODES,
      onEvent: (event) => {
        this.model.apply(event);
        if (event.event === "metadata") {
          this.save({ ...this.saved(), runId: this.model.runId });
          this.status("running", `running · run ${this.model.runId}`);
        }
        this.schedule();
      },
      onRetry: (n) => this.status("running", `reconnecting (try ${n})…`),
    });
    try {
      await open(stream);
    } finally {
      this.stream = null;
    }
    return stream;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    if (this.view.render(this.model)) this.schedule();
    const box = $("state-box");
    if (box.open && this.model.valuesSeq !== this.shownValues) {
      this.shownValues = this.model.valuesSeq;
      $("state").textContent = this.model.values === undefined ? "(no state yet)" : pretty(this.model.values);
    }
    this.app.paint();
  }

  nodeStates() { return this.model.nodes; }

  // The stream ended (or could not start: `failure`): say how the run ended,
  // from the server's record of it, and show what it waits for, if anything.
  async finish(failure = null) {
    if (this.unloading) return;
    const ref = this.saved();
    $("start").disabled = false;
    $("cancel").disabled = true;
    $("graph").disabled = false;
    sessionStorage.removeItem(SAVED);
    let paused = [];
    let status = "done";
    let detail = "";
    if (this.threadId) {
      const [run, state] = await Promise.all([
        this.model.runId ? get(`/threads/${enc(this.threadId)}/runs/${enc(this.model.runId)}`) : null,
        get(`/threads/${enc(this.threadId)}/state`),
      ]).catch((error) => { failure ??= error; return [null, {}]; });
      const interrupts = (state.tasks || []).flatMap((t) => t.interrupts.map((i) => ({ ...i, node: t.name })));
      paused = interrupts.map((i) => i.node);
      if (run && run.status === "error") status = "error";
      else if (run && run.status === "interrupted") status = "cancelled";
      else if (interrupts.length) status = "paused";
      if (status === "paused") this.interrupts.show(interrupts);
      const last = this.model.entries.findLast((e) => e.kind === "error");
      if (status === "error" && last) detail = ` · ${last.data}`;
      if (run && !["success", "error", "interrupted"].includes(run.status)) status = run.status;
      if (state.values !== undefined) {
        this.model.values = state.values;
        this.model.valuesSeq = this.model.seq + 1;
      }
    }
    if (failure) {
      status = "error";
      detail = ` · ${failure.message}`;
      if (this.model.runId) detail += " (the run may go on: reload the page to pick its stream up)";
    }
    this.model.settle(paused);
    const words = { done: "done", error: "failed", cancelled: "cancelled", paused: "waiting for an answer" };
    this.status(status, `${words[status] || status}${detail}${ref && ref.runId ? ` · run ${ref.runId}` : ""}`);
    this.render();
    this.app.runEnded(this.threadId);
  }

  status(kind, text) {
    const el = $("run-status");
    el.dataset.status = kind;
    el.textContent = text;
  }

  async cancel() {
    const runId = this.model.runId;
    if (!this.stream || !runId) return;
    $("cancel").disabled = true;
    this.status("running", "cancelling…");
    await post(`/threads/${enc(this.threadId)}/runs/${enc(runId)}/cancel?action=interrupt`);
  }

  // -- surviving a reload ---------------------------------------------------

  saved() {
    try { return JSON.parse(sessionStorage.getItem(SAVED)); } catch { return null; }
  }

  save(ref) { sessionStorage.setItem(SAVED, JSON.stringify(ref)); }

  persist() {
    if (!this.stream) return;
    this.unloading = true;
    this.stream.abort();
    const ref = this.saved() || {};
    const snapshot = this.model.snapshot();
    try {
      this.save({ ...ref, runId: ref.runId || snapshot.runId, snapshot });
    } catch {
      this.save({ ...ref, runId: ref.runId || snapshot.runId }); // too big: replay it all instead
    }
  }

  // Pick up the run this tab was watching before a reload, if any.
  async resume() {
    const ref = this.saved();
    if (!ref || !ref.threadId) return false;
    if (ref.graphId && ref.graphId !== this.app.graphId) await this.app.selectGraph(ref.graphId);
    this.setThread(ref.threadId);
    let runId = ref.runId;
    if (!runId) {
      const runs = await get(`/threads/${enc(ref.threadId)}/runs?limit=1`);
      if (!runs.length) { sessionStorage.removeItem(SAVED); return false; }
      runId = runs[0].run_id;
    }
    this.begin();
    let failure = null;
    if (ref.snapshot && ref.snapshot.runId === runId) this.model.restore(ref.snapshot);
    this.model.runId = runId;
    this.save({ graphId: ref.graphId, threadId: ref.threadId, runId });
    const after = this.model.lastId;
    $("run-status").dataset.resumedAfter = after ?? "0";
    this.status("running", `running · run ${runId} · picked up after event ${after ?? 0}`);
    this.render();
    try {
      await this.follow((stream) => stream.join(ref.threadId, runId, after));
    } catch (error) {
      if (error.name === "AbortError") return true;
      failure = error;
    } finally {
      await this.finish(failure);
    }
    return true;
  }
}

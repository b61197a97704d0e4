// A run's events: the model that takes each event as it arrives (cheap, no DOM),
// and the view that draws what changed at most once per animation frame.
//
// Whatever the rate of events, the DOM gets one batch per frame, holds at most
// DOM_CAP log entries, and a token only changes the text of its message's
// entry. The model keeps the last MODEL_CAP entries (and counts them all), so
// its snapshot fits in sessionStorage for a reload.

import { pretty, preview } from "./json.js";

export const MODES = ["debug", "updates", "custom", "messages-tuple"];
const MODEL_CAP = 2000;
const DOM_CAP = 300;
const ROWS_PER_FRAME = 50;

export class RunModel {
  constructor() { this.reset(); }

  reset() {
    this.seq = 0;
    this.entries = [];
    this.dropped = 0;
    this.counts = { updates: 0, custom: 0, tokens: 0, tasks: 0 };
    this.nodes = new Map(); // top-level node -> running | done | error | paused
    this.messages = new Map(); // message id -> its entry
    this.dirty = new Set(); // entries whose text grew since the last frame
    this.step = null;
    this.values = undefined;
    this.valuesSeq = 0;
    this.lastId = null;
    this.runId = null;
    this.attempt = 1;
  }

  push(kind, fields) {
    const entry = { seq: ++this.seq, kind, step: this.step, node: "", ns: "", data: null, ...fields };
    this.entries.push(entry);
    if (this.entries.length > MODEL_CAP * 1.5) {
      const gone = this.entries.splice(0, this.entries.length - MODEL_CAP);
      this.dropped += gone.length;
      for (const e of gone) if (e.kind === "message") this.messages.delete(e.messageId);
    }
    return entry;
  }

  // Take one SSE event of the run ({event, data, id}).
  apply({ event, data, id }) {
    if (id !== null && id !== undefined) this.lastId = id;
    const bar = event.indexOf("|");
    const mode = bar < 0 ? event : event.slice(0, bar);
    const ns = bar < 0 ? "" : event.slice(bar + 1);
    switch (mode) {
      case "metadata":
        this.runId = data.run_id;
        if (data.attempt > 1) {
          this.attempt = data.attempt;
          this.push("meta", { data: `attempt ${data.attempt}: another worker took the run over from its last checkpoint` });
        }
        break;
      case "debug": this.debug(data, ns); break;
      case "updates":
        for (const [node, update] of Object.entries(data || {})) {
          if (node === "__interrupt__") {
            for (const intr of update) this.push("interrupt", { ns, data: intr.value });
          } else {
            this.counts.updates++;
            this.push("update", { node, ns, data: update });
          }
        }
        break;
      case "custom":
        this.counts.custom++;
        this.push("custom", { ns, data });
        break;
      case "messages": this.token(data, ns); break;
      case "values":
        if (!ns) { this.values = data; this.valuesSeq = this.seq + 1; }
        break;
      case "error":
        this.push("error", { ns, data: data && data.message ? `${data.error}: ${data.message}` : data });
        break;
      default:
        this.push("other", { ns, node: event, data });
    }
  }

  debug(data, ns) {
    const payload = data.payload || {};
    if (!ns && typeof data.step === "number") this.step = data.step;
    if (data.type === "task") {
      this.counts.tasks++;
      if (!ns) this.nodes.set(payload.name, "running");
      this.push("task", { node: payload.name, ns, data: "started" });
    } else if (data.type === "task_result") {
      if (!ns) this.nodes.set(payload.name, payload.error ? "error" : "done");
      if (payload.error) this.push("error", { node: payload.name, ns, data: payload.error });
    } else if (data.type === "checkpoint" && !ns) {
      this.values = payload.values;
      this.valuesSeq = this.seq + 1;
      this.push("step", { node: "checkpoint", data: `step ${data.step} saved` });
    }
  }

  token(data, ns) {
    if (!Array.isArray(data)) return;
    const [chunk, meta] = data;
    const content = chunk && chunk.content;
    const text = typeof content === "string" ? content
      : Array.isArray(content) ? content.map((p) => p.text || "").join("") : "";
    this.counts.tokens++;
    const id = (chunk && chunk.id) || `${ns}:${meta && meta.langgraph_node}`;
    const entry = this.messages.get(id);
    if (entry) {
      entry.data += text;
      this.dirty.add(entry);
    } else {
      const node = (meta && meta.langgraph_node) || "";
      this.messages.set(id, this.push("message", { node, ns, data: text, messageId: id }));
    }
  }

  // The run is over: no node runs any more; `paused` nodes wait for an answer.
  settle(paused = []) {
    for (const [node, state] of this.nodes) if (state === "running") this.nodes.delete(node);
    for (const node of paused) this.nodes.set(node, "paused");
  }

  snapshot() {
    const { seq, dropped, counts, step, lastId, runId, attempt } = this;
    const entries = this.entries.slice(-MODEL_CAP);
    return { seq, dropped: dropped + this.entries.length - entries.length, counts, step, lastId,
      runId, attempt, entries, nodes: [...this.nodes], values: this.values };
  }

  restore(snap) {
    this.reset();
    Object.assign(this, { seq: snap.seq, dropped: snap.dropped, counts: snap.counts, step: snap.step,
      lastId: snap.lastId, runId: snap.runId, attempt: snap.attempt, entries: snap.entries,
      nodes: new Map(snap.nodes), values: snap.values, valuesSeq: snap.seq });
    for (const e of this.entries) if (e.kind === "message") this.messages.set(e.messageId, e);
  }
}

const LABELS = { update: "update", custom: "custom", message: "tokens", task: "task", step: "step",
  interrupt: "interrupt", error: "error", meta: "run", other: "event" };

export class LogView {
  constructor({ log, hidden, counts }) {
    this.log = log;
    this.hiddenNote = hidden;
    this.countsEl = counts;
    this.model = null;
    this.clear();
    log.addEventListener("scroll", () => {
      this.atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    }, { passive: true });
    log.addEventListener("click", (event) => {
      const row = event.target.closest(".entry");
      if (row && !getSelection().toString()) this.toggle(row);
    });
  }

  // Show a row's whole value (pretty JSON), or its one-line preview again.
  toggle(row) {
    const seq = Number(row.dataset.seq);
    const entry = this.model && this.model.entries.find((e) => e.seq === seq);
    if (!entry || entry.kind === "message") return;
    const open = row.classList.toggle("open");
    row.querySelector(".data").textContent = open
      ? (typeof entry.data === "string" ? entry.data : pretty(entry.data)) : this.text(entry);
  }

  text(entry) {
    if (entry.kind === "update" && entry.data === null) return "(no change)";
    return typeof entry.data === "string" && entry.kind !== "custom" && entry.kind !== "update"
      ? entry.data : preview(entry.data);
  }

  clear() {
    this.log.replaceChildren();
    this.lastSeq = 0;
    this.elements = new Map(); // entry seq -> its text element, for the rows in the DOM
    this.hiddenNote.hidden = true;
    this.atBottom = true;
  }

  line(entry) {
    const row = document.createElement("div");
    row.className = `entry kind-${entry.kind}`;
    row.dataset.kind = entry.kind;
    row.dataset.seq = entry.seq;
    const step = document.createElement("span");
    step.className = "step";
    step.textContent = entry.step === null || entry.kind === "step" ? "" : entry.step;
    const who = document.createElement("span");
    who.className = "who";
    const node = entry.node && entry.kind === "message" ? `${entry.node} · tokens` : entry.node;
    who.textContent = (entry.ns ? entry.ns.split(":")[0] + " › " : "") + (node || LABELS[entry.kind]);
    const text = document.createElement("span");
    text.className = "data";
    text.textContent = this.text(entry);
    row.append(step, who, text);
    this.elements.set(entry.seq, text);
    return row;
  }

  // Draw what changed in `model` since the last call; answer whether there is
  // more to draw (older rows to bring back after a flood) in the next frame.
  //
  // A frame adds at most ROWS_PER_FRAME rows: when more entries came, the log
  // restarts from the newest ones, and once the flood is over it fills back
  // up to DOM_CAP rows, ROWS_PER_FRAME older ones per frame.
  render(model) {
    this.model = model;
    const { entries } = model;
    const log = this.log;
    let first = entries.length;
    while (first > 0 && entries[first - 1].seq > this.lastSeq) first--;
    const fresh = entries.length - first;
    let more = false;
    if (fresh > ROWS_PER_FRAME) {
      this.elements = new Map();
      log.replaceChildren(this.rows(entries, entries.length - ROWS_PER_FRAME, entries.length));
    } else if (fresh) {
      log.append(this.rows(entries, first, entries.length));
      for (let extra = log.childElementCount - DOM_CAP; extra > 0; extra--) {
        this.elements.delete(Number(log.firstElementChild.dataset.seq));
        log.firstElementChild.remove();
      }
    } else if (log.childElementCount < DOM_CAP && log.firstElementChild) {
      const oldest = entries.findIndex((e) => e.seq === Number(log.firstElementChild.dataset.seq));
      const from = Math.max(0, oldest - ROWS_PER_FRAME, entries.length - DOM_CAP);
      if (oldest > from) {
        const height = this.atBottom ? 0 : log.scrollHeight;
        log.prepend(this.rows(entries, from, oldest));
        if (!this.atBottom) log.scrollTop += log.scrollHeight - height;
        more = from > Math.max(0, entries.length - DOM_CAP);
      }
    }
    if (fresh) {
      this.lastSeq = entries[entries.length - 1].seq;
      if (this.atBottom) log.scrollTop = log.scrollHeight;
    }
    for (const entry of model.dirty) {
      const text = this.elements.get(entry.seq);
      if (text) text.textContent = entry.data;
    }
    model.dirty.clear();
    const oldest = log.firstElementChild ? Number(log.firstElementChild.dataset.seq) : Infinity;
    let shown = 0;
    for (let i = entries.length - 1; i >= 0 && entries[i].seq >= oldest; i--) shown++;
    const hidden = model.dropped + entries.length - shown;
    this.hiddenNote.hidden = hidden === 0;
    this.hiddenNote.textContent = `${hidden} earlier entries are not shown (the log keeps the last ${DOM_CAP})`;
    for (const [name, value] of Object.entries(model.counts)) {
      const el = this.countsEl.querySelector(`[data-count="${name}"]`);
      if (el && el.textContent !== String(value)) el.textContent = value;
    }
    const step = this.countsEl.querySelector('[data-count="step"]');
    const s = model.step === null ? "–" : String(model.step);
    if (step.textContent !== s) step.textContent = s;
    return more;
  }

  rows(entries, from, to) {
    const batch = document.createDocumentFragment();
    for (let i = from; i < to; i++) batch.append(this.line(entries[i]));
    return batch;
  }
}

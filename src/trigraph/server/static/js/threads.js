// Threads: search them (by id or metadata), open one, step through its
// checkpoints (newest first, forks included) with the state at each and what
// changed from its parent, fork from any of them (a run with checkpoint_id),
// or write to the latest state (update_state, optionally as a node).

import { enc, get, post } from "./api.js";
import { check, diff, parseJson, pretty, preview } from "./json.js";

const $ = (id) => document.getElementById(id);
const short = (id) => (id || "").slice(0, 8);
const when = (iso) => iso ? new Date(iso).toLocaleString() : "";
const show = (value) => preview(JSON.stringify(value) ?? String(value), 160);

// The search box: "" (all), a thread id, key=value pairs, or a JSON object of metadata.
export function parseQuery(text) {
  const q = text.trim();
  if (!q) return {};
  if (q.startsWith("{")) {
    const parsed = parseJson(q);
    if (parsed.error) return { error: parsed.error };
    if (typeof parsed.value !== "object" || Array.isArray(parsed.value)) return { error: "metadata must be a JSON object" };
    return { metadata: parsed.value };
  }
  if (q.includes("=")) {
    const metadata = {};
    for (const part of q.split(/[\s,]+/).filter(Boolean)) {
      const at = part.indexOf("=");
      if (at <= 0) return { error: `"${part}" is not key=value` };
      const raw = part.slice(at + 1);
      const parsed = parseJson(raw);
      metadata[part.slice(0, at)] = parsed.error ? raw : parsed.value;
    }
    return { metadata };
  }
  return { ids: [q] };
}

export class ThreadsView {
  constructor(app) {
    this.app = app;
    this.threadId = null;
    this.history = [];
    this.index = -1;
    $("thread-search").addEventListener("submit", (e) => { e.preventDefault(); this.guard(this.search()); });
    $("thread-list").addEventListener("click", (e) => {
      const button = e.target.closest("[data-thread]");
      if (button) this.guard(this.open(button.dataset.thread));
    });
    $("history").addEventListener("click", (e) => {
      const button = e.target.closest("[data-index]");
      if (button) this.select(Number(button.dataset.index));
    });
    $("older").addEventListener("click", () => this.select(this.index + 1));
    $("newer").addEventListener("click", () => this.select(this.index - 1));
    $("history").addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown") { e.preventDefault(); this.select(this.index + 1, true); }
      if (e.key === "ArrowUp") { e.preventDefault(); this.select(this.index - 1, true); }
    });
    $("fork-form").addEventListener("submit", (e) => { e.preventDefault(); this.guard(this.fork()); });
    $("edit-form").addEventListener("submit", (e) => { e.preventDefault(); this.guard(this.edit()); });
    $("continue-thread").addEventListener("click", () => {
      this.app.setTab("run");
      this.guard(this.app.run.openThread(this.threadId));
    });
  }

  guard(promise) { return promise.catch((error) => this.app.fail(error)); }

  async search() {
    const query = parseQuery($("thread-query").value);
    const error = $("thread-query-error");
    error.textContent = query.error || "";
    error.hidden = !query.error;
    if (query.error) return;
    const body = { limit: 50, offset: 0, sort_by: "updated_at", sort_order: "desc" };
    if (query.ids) body.ids = query.ids;
    const metadata = { ...(query.metadata || {}) };
    if ($("this-graph").checked && this.app.graphId) metadata.graph_id = this.app.graphId;
    if (Object.keys(metadata).length) body.metadata = metadata;
    if ($("thread-status").value) body.status = $("thread-status").value;
    const found = await post("/threads/search", body);
    const list = $("thread-list");
    list.replaceChildren(...found.map((t) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.thread = t.thread_id;
      if (t.thread_id === this.threadId) button.setAttribute("aria-current", "true");
      const meta = { ...t.metadata };
      delete meta.graph_id;
      delete meta.assistant_id;
      button.innerHTML = `<code></code> <span class="badge"></span> <span class="graph"></span> <span class="muted"></span>`;
      button.querySelector("code").textContent = short(t.thread_id);
      button.querySelector("code").title = t.thread_id;
      const badge = button.querySelector(".badge");
      badge.textContent = t.status;
      badge.dataset.status = t.status;
      button.querySelector(".graph").textContent = t.metadata.graph_id || "";
      button.querySelector(".muted").textContent = `${when(t.updated_at)}${Object.keys(meta).length ? " · " + preview(meta, 60) : ""}`;
      li.append(button);
      return li;
    }));
    $("thread-count").textContent = found.length === 50 ? "the 50 most recent" : `${found.length} found`;
  }

  async open(threadId, { keep = false } = {}) {
    const thread = await get(`/threads/${enc(threadId)}`);
    const graphId = thread.metadata && thread.metadata.graph_id;
    if (graphId && graphId !== this.app.graphId) await this.app.selectGraph(graphId);
    const selected = keep && this.threadId === threadId && this.history[this.index]
      ? this.history[this.index].checkpoint_id : null;
    this.threadId = threadId;
    this.history = await post(`/threads/${enc(threadId)}/history`, { limit: 1000 });
    $("thread-view").hidden = false;
    $("thread-title").textContent = threadId;
    const status = $("thread-status-badge");
    status.textContent = thread.status;
    status.dataset.status = thread.status;
    $("thread-meta").textContent = preview(thread.metadata, 300);
    for (const b of $("thread-list").querySelectorAll("[data-thread]")) {
      b.toggleAttribute("aria-current", b.dataset.thread === threadId);
    }
    const children = new Map();
    for (const s of this.history) {
      const p = s.parent_checkpoint_id;
      if (p) children.set(p, (children.get(p) || 0) + 1);
    }
    const list = $("history");
    list.replaceChildren(...this.history.map((s, i) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.index = i;
      button.dataset.checkpoint = s.checkpoint_id;
      const forked = s.parent_checkpoint_id && children.get(s.parent_checkpoint_id) > 1;
      const next = s.next.length ? `next: ${s.next.join(", ")}` : "end";
      button.textContent = `step ${s.metadata.step} · ${s.metadata.source} · ${next}${s.interrupts.length ? " · waits" : ""}${forked ? " · ⑂ fork" : ""}`;
      li.append(button);
      return li;
    }));
    $("history-empty").hidden = this.history.length > 0;
    const again = selected ? this.history.findIndex((s) => s.checkpoint_id === selected) : -1;
    this.select(again >= 0 ? again : 0);
    this.app.remember();
  }

  select(index, focus = false) {
    if (index < 0 || index >= this.history.length) {
      if (!this.history.length) { this.index = -1; $("checkpoint").hidden = true; this.app.paint(); }
      return;
    }
    this.index = index;
    const snap = this.history[index];
    const buttons = $("history").querySelectorAll("button");
    buttons.forEach((b, i) => b.toggleAttribute("aria-current", i === index));
    if (focus) buttons[index].focus();
    buttons[index].scrollIntoView({ block: "nearest" });
    $("checkpoint").hidden = false;
    $("older").disabled = index >= this.history.length - 1;
    $("newer").disabled = index === 0;
    $("checkpoint-title").textContent = `Step ${snap.metadata.step} · checkpoint ${snap.checkpoint_id} · ${when(snap.created_at)}`;
    $("checkpoint-next").textContent = snap.next.length ? `Next: ${snap.next.join(", ")}` : "Next: nothing (the run ended here)";
    $("checkpoint-state").textContent = pretty(snap.values);
    const parent = this.history.find((s) => s.checkpoint_id === snap.parent_checkpoint_id);
    const changes = $("checkpoint-diff");
    if (!snap.parent_checkpoint_id) {
      changes.replaceChildren(Object.assign(document.createElement("li"), { textContent: "the thread's first checkpoint: its input" }));
    } else if (!parent) {
      changes.replaceChildren(Object.assign(document.createElement("li"), { textContent: "its parent checkpoint is no longer stored" }));
    } else {
      const list = diff(parent.values, snap.values);
      changes.replaceChildren(...(list.length ? list : [{ op: "none" }]).map((c) => {
        const li = document.createElement("li");
        li.dataset.op = c.op;
        li.textContent = c.op === "none" ? "no change"
          : c.op === "added" ? `${c.path} added: ${show(c.after)}`
          : c.op === "removed" ? `${c.path} removed (was ${show(c.before)})`
          : c.op === "appended" ? `${c.path} + ${show(c.after)}`
          : `${c.path}: ${show(c.before)} → ${show(c.after)}`;
        return li;
      }));
    }
    const latest = index === 0;
    $("edit-form").hidden = !latest;
    $("edit-latest-only").hidden = latest;
    const asNode = $("edit-as-node");
    asNode.replaceChildren(new Option("(no node)", ""), ...this.app.nodeNames().map((n) => new Option(n, n)));
    this.app.paint();
  }

  // Next nodes of the checkpoint on view, for the drawing.
  nodeStates() {
    const snap = this.history[this.index];
    const states = new Map();
    if (snap) for (const node of snap.next) states.set(node, snap.interrupts.length ? "paused" : "next");
    return states;
  }

  async fork() {
    const snap = this.history[this.index];
    const parsed = parseJson($("fork-input").value);
    const error = $("fork-error");
    let problem = parsed.error;
    if (!problem && parsed.value !== null && (typeof parsed.value !== "object" || Array.isArray(parsed.value))) {
      problem = "the input must be a JSON object, or null to run on from the checkpoint as it is";
    }
    if (!problem && parsed.value !== null && this.app.inputSchema) {
      problem = check(parsed.value, this.app.inputSchema).slice(0, 3).join("\n") || null;
    }
    error.textContent = problem || "";
    error.hidden = !problem;
    if (problem) return;
    this.app.setTab("run");
    await this.app.run.start({ input: parsed.value, checkpointId: snap.checkpoint_id, threadId: this.threadId });
  }

  async edit() {
    const parsed = parseJson($("edit-values").value);
    const error = $("edit-error");
    let problem = parsed.error;
    if (!problem && (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value))) {
      problem = "write a JSON object of the keys to write, e.g. {\"answer\": \"yes\"}";
    }
    if (!problem && this.app.stateSchema) problem = check(parsed.value, this.app.stateSchema).slice(0, 3).join("\n") || null;
    error.textContent = problem || "";
    error.hidden = !problem;
    if (problem) return;
    const body = { values: parsed.value };
    if ($("edit-as-node").value) body.as_node = $("edit-as-node").value;
    await post(`/threads/${enc(this.threadId)}/state`, body);
    $("edit-values").value = "{}";
    await this.open(this.threadId);
  }

  // A run on `threadId` ended: show its new checkpoints if it is open.
  async refresh(threadId) {
    if (!$("threads-pane").hidden) await this.search();
    if (threadId && threadId === this.threadId) await this.open(threadId);
  }
}

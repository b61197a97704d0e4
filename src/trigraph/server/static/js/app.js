// The page: pick a graph (an assistant) and see it drawn; run it and watch;
// browse its threads. Everything goes through the server's public HTTP API,
// the one langgraph-sdk uses. The address keeps the graph, the tab and the
// open thread (#graph=...&tab=...&thread=...), so a reload comes back to them.

import { enc, get, post } from "./api.js";
import { Drawing } from "./graph.js";
import { pretty } from "./json.js";
import { RunView } from "./run.js";
import { ThreadsView } from "./threads.js";

const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.graphId = null;
    this.graph = null;
    this.inputSchema = null;
    this.stateSchema = null;
    this.tab = "run";
    this.drawing = new Drawing($("drawing"));
    this.run = new RunView(this);
    this.threads = new ThreadsView(this);
    $("graph").addEventListener("change", (e) => this.guard(this.selectGraph(e.target.value)));
    for (const tab of document.querySelectorAll("[role=tab]")) {
      tab.addEventListener("click", () => this.setTab(tab.dataset.tab));
    }
    $("banner-close").addEventListener("click", () => { $("banner").hidden = true; });
  }

  guard(promise) { return promise.catch((error) => this.fail(error)); }

  fail(error) {
    $("banner-text").textContent = error && error.message ? error.message : String(error);
    $("banner").hidden = false;
  }

  async boot() {
    // One request first: if the server wants a key, it is asked for once.
    const assistants = await post("/assistants/search", { limit: 100, offset: 0 });
    const select = $("graph");
    select.replaceChildren(...assistants.map((a) => new Option(a.graph_id, a.graph_id)));
    const hash = new URLSearchParams(location.hash.slice(1));
    const want = hash.get("graph");
    const first = assistants.some((a) => a.graph_id === want) ? want : assistants[0] && assistants[0].graph_id;
    if (!first) throw new Error("the server serves no graph");
    const [info] = await Promise.all([get("/info"), this.selectGraph(first)]);
    $("server").textContent = `trigraph ${info.version}`;
    this.setTab(hash.get("tab") === "threads" ? "threads" : "run");
    const thread = hash.get("thread");
    if (this.tab === "threads" && thread) await this.threads.open(thread);
    document.body.dataset.ready = "true";
    performance.mark("trigraph-ready");
    if (!(await this.run.resume()) && thread) await this.run.openThread(thread);
  }

  async selectGraph(graphId) {
    if (graphId === this.graphId) return;
    const [graph, schemas] = await Promise.all([
      get(`/assistants/${enc(graphId)}/graph`), get(`/assistants/${enc(graphId)}/schemas`),
    ]);
    this.graphId = graphId;
    this.graph = graph;
    this.inputSchema = schemas.input_schema || null;
    this.stateSchema = schemas.state_schema || null;
    $("graph").value = graphId;
    this.drawing.draw(graph);
    $("input-schema").textContent = pretty(this.inputSchema);
    this.run.setGraph(graphId, this.inputSchema);
    if (this.run.threadId && !this.run.stream) this.run.setThread(null);
    this.remember();
    this.paint();
  }

  nodeNames() {
    return (this.graph ? this.graph.nodes : []).map((n) => n.id).filter((id) => !id.startsWith("__"));
  }

  setTab(tab) {
    this.tab = tab;
    for (const button of document.querySelectorAll("[role=tab]")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    }
    $("run-pane").hidden = tab !== "run";
    $("threads-pane").hidden = tab !== "threads";
    if (tab === "threads" && !this.threads.searched) {
      this.threads.searched = true;
      this.guard(this.threads.search());
    }
    this.remember();
    this.paint();
  }

  // The drawing shows the run's nodes, or on the Threads tab the next nodes
  // of the checkpoint on view.
  paint() {
    this.drawing.show(this.tab === "threads" && this.threads.index >= 0
      ? this.threads.nodeStates() : this.run.nodeStates());
  }

  remember() {
    const hash = new URLSearchParams();
    if (this.graphId) hash.set("graph", this.graphId);
    if (this.tab !== "run") hash.set("tab", this.tab);
    const thread = this.tab === "threads" ? this.threads.threadId : this.run.threadId;
    if (thread) hash.set("thread", thread);
    history.replaceState(null, "", "#" + hash.toString());
  }

  runEnded(threadId) {
    this.guard(this.threads.refresh(threadId));
  }
}

const app = new App();
window.trigraphApp = app; // for the browser tests and the curious
app.boot().catch((error) => app.fail(error));

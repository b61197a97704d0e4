// The graph drawing: /assistants/{id}/graph laid out with dagre, drawn as SVG.
// Edges marked `conditional` (routers' and Command destinations) are dashed.
// Nodes carry data-node="<name>" and take the classes running, done, error,
// paused and next, which the run and the history views set.

import dagre from "../vendor/dagre/dagre.esm.js";

const NS = "http://www.w3.org/2000/svg";
const FONT = "13px system-ui, sans-serif";
const STATES = ["running", "done", "error", "paused", "next"];
let measure = null;

function textWidth(text) {
  measure ??= document.createElement("canvas").getContext("2d");
  measure.font = FONT;
  return measure.measureText(text).width;
}

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

const labelOf = (id) => id === "__start__" ? "start" : id === "__end__" ? "end" : id;

// A smooth path through dagre's points (a quadratic curve through midpoints).
function pathOf(points) {
  let d = `M${points[0].x},${points[0].y}`;
  if (points.length === 2) return d + ` L${points[1].x},${points[1].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i], q = points[i + 1];
    const mx = i === points.length - 2 ? q.x : (p.x + q.x) / 2;
    const my = i === points.length - 2 ? q.y : (p.y + q.y) / 2;
    d += ` Q${p.x},${p.y} ${mx},${my}`;
  }
  return d;
}

export class Drawing {
  constructor(svg) {
    this.svg = svg;
    this.nodes = new Map();
    this.shown = new Map(); // node -> its state class
  }

  draw({ nodes, edges }) {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 44, edgesep: 14, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const node of nodes) {
      const label = labelOf(node.id);
      g.setNode(node.id, { label, width: Math.max(56, textWidth(label) + 28), height: 32 });
    }
    edges.forEach((edge, i) => {
      const label = typeof edge.data === "string" ? edge.data : "";
      const size = label ? { width: textWidth(label) + 8, height: 16, labelpos: "c" } : {};
      g.setEdge(edge.source, edge.target, { ...size, label, conditional: Boolean(edge.conditional) }, `e${i}`);
    });
    dagre.layout(g);

    const svg = this.svg;
    svg.replaceChildren();
    const { width, height } = g.graph();
    svg.setAttribute("viewBox", `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`);
    svg.style.setProperty("--natural-width", `${Math.ceil(width)}px`);
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }, marker);

    const edgeLayer = el("g", { class: "edges" }, svg);
    for (const e of g.edges()) {
      const data = g.edge(e);
      const group = el("g", { class: data.conditional ? "edge conditional" : "edge",
        "data-source": e.v, "data-target": e.w }, edgeLayer);
      el("path", { d: pathOf(data.points), "marker-end": "url(#arrow)" }, group);
      if (data.label) {
        el("rect", { x: data.x - data.width / 2, y: data.y - 8, width: data.width, height: 16, rx: 3, class: "edge-label-bg" }, group);
        el("text", { x: data.x, y: data.y + 4, class: "edge-label" }, group).textContent = data.label;
      }
    }
    const nodeLayer = el("g", { class: "nodes" }, svg);
    this.nodes.clear();
    this.shown.clear();
    for (const id of g.nodes()) {
      const n = g.node(id);
      const special = id === "__start__" || id === "__end__";
      const group = el("g", { class: special ? "node terminal" : "node", "data-node": id,
        transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})` }, nodeLayer);
      el("title", {}, group).textContent = id;
      el("rect", { width: n.width, height: n.height, rx: special ? n.height / 2 : 6 }, group);
      el("text", { x: n.width / 2, y: n.height / 2 + 4.5 }, group).textContent = n.label;
      this.nodes.set(id, group);
    }
  }

  // Show `states` (node -> "running" | "done" | "error" | "paused" | "next");
  // nodes not named lose their state. Touches only the nodes that change.
  show(states) {
    for (const [node, group] of this.nodes) {
      const want = states.get(node) || null;
      if (this.shown.get(node) === want) continue;
      group.classList.remove(...STATES);
      if (want) group.classList.add(want);
      this.shown.set(node, want);
    }
  }
}

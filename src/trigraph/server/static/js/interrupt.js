// Answering a paused run: the value of each pending interrupt() is shown, and
// the answer is sent as `command.resume` of a new run on the thread.
//
// An agent's approval request ({"action_requests": [{"name", "args", "id"}]})
// gets one decision per call: approve, reject (with a message for the model)
// or edit the arguments; it is answered with {"decisions": [...]}, in order.
// Any other value gets a free answer, sent as JSON or as text.

import { parseJson, pretty } from "./json.js";

const h = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

export const isReview = (value) => Boolean(value) && typeof value === "object"
  && Array.isArray(value.action_requests);

let unique = 0;

function reviewCard(value) {
  const card = h("div", { class: "review" });
  if (value.error) card.append(h("p", { class: "error", role: "alert", text: value.error }));
  const decisions = value.action_requests.map((req) => {
    const name = `decision-${++unique}`;
    const args = h("textarea", { class: "edit-args", rows: "4", spellcheck: "false", "aria-label": `arguments of ${req.name}` });
    args.value = pretty(req.args ?? {});
    const message = h("input", { class: "reject-message", type: "text", placeholder: "why: sent to the model",
      "aria-label": `why ${req.name} is rejected` });
    const error = h("p", { class: "error", role: "alert" });
    const choice = (kind, label) => h("label", {}, h("input", { type: "radio", name, value: kind }), " " + label);
    const box = h("fieldset", { class: "decision", "data-call": req.id ?? "" },
      h("legend", { text: `${req.name}` }),
      h("pre", { class: "call-args", text: pretty(req.args ?? {}) }),
      h("div", { class: "choices" }, choice("approve", "Approve"), choice("reject", "Reject"), choice("edit", "Edit")),
      message, args, error);
    box.querySelector('input[value="approve"]').checked = true;
    const sync = () => {
      const kind = box.querySelector("input[type=radio]:checked").value;
      message.hidden = kind !== "reject";
      args.hidden = kind !== "edit";
      error.textContent = "";
    };
    // Only a choice or typing clears the error: a blur does not (the layout
    // must not shift under a click on Resume).
    for (const radio of box.querySelectorAll("input[type=radio]")) radio.addEventListener("change", sync);
    args.addEventListener("input", () => { error.textContent = ""; });
    sync();
    card.append(box);
    return () => {
      const kind = box.querySelector("input[type=radio]:checked").value;
      if (kind === "approve") return { type: "approve" };
      if (kind === "reject") return { type: "reject", message: message.value.trim() || "Rejected by a person." };
      const parsed = parseJson(args.value);
      const problem = parsed.error ?? (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)
        ? "the arguments must be a JSON object" : null);
      if (problem) { error.textContent = problem; throw new Error(problem); }
      return { type: "edit", args: parsed.value };
    };
  });
  return { card, answer: () => ({ decisions: decisions.map((d) => d()) }) };
}

function freeCard() {
  const text = h("textarea", { class: "answer", rows: "3", spellcheck: "false", "aria-label": "answer" });
  const as = h("select", { class: "answer-as", "aria-label": "send the answer as" },
    h("option", { value: "auto", text: "JSON if it parses, else text" }),
    h("option", { value: "json", text: "JSON" }), h("option", { value: "text", text: "text" }));
  const shown = h("p", { class: "resume-preview" });
  const error = h("p", { class: "error", role: "alert" });
  const value = () => {
    const mode = as.value;
    if (mode === "text") return { value: text.value };
    const parsed = parseJson(text.value);
    if (!parsed.error) return parsed;
    return mode === "json" ? parsed : { value: text.value };
  };
  const sync = () => {
    const v = value();
    error.textContent = v.error || "";
    shown.textContent = v.error ? "" : `resume value: ${JSON.stringify(v.value)}`;
  };
  text.addEventListener("input", sync);
  as.addEventListener("change", sync);
  sync();
  const card = h("div", { class: "free" }, h("label", { text: "Answer" }), text,
    h("div", { class: "row" }, h("span", { text: "send as " }), as), shown, error);
  return { card, answer: () => {
    const v = value();
    if (v.error) throw new Error(v.error);
    return v.value;
  } };
}

export class InterruptView {
  constructor(box, onAnswer) {
    this.box = box;
    this.onAnswer = onAnswer;
  }

  hide() {
    this.box.hidden = true;
    this.box.replaceChildren();
  }

  // Show `interrupts` ([{id, value, node}]) and wait for an answer.
  show(interrupts) {
    this.hide();
    if (!interrupts.length) return;
    const answers = [];
    this.box.append(h("h3", { text: interrupts.length > 1 ? `${interrupts.length} questions wait for an answer` : "The run waits for an answer" }));
    for (const intr of interrupts) {
      const review = isReview(intr.value);
      const part = review ? reviewCard(intr.value) : freeCard();
      const value = h("pre", { class: "interrupt-value", text: pretty(intr.value) });
      const who = intr.node || "interrupt";
      const section = h("section", { class: "interrupt", "data-interrupt": intr.id || "" },
        h("h4", { text: review ? `${who}: approve ${intr.value.action_requests.length} tool call(s)?`
          : `${who}: the value of interrupt()` }),
        review ? h("details", {}, h("summary", { text: "the interrupt's value" }), value) : value, part.card);
      this.box.append(section);
      answers.push([intr.id, part.answer]);
    }
    const send = h("button", { type: "button", class: "primary", text: "Resume" });
    const error = h("p", { class: "error", role: "alert" });
    send.addEventListener("click", () => {
      let resume;
      try {
        const values = answers.map(([id, answer]) => [id, answer()]);
        resume = values.length === 1 ? values[0][1] : Object.fromEntries(values);
      } catch {
        error.textContent = "fix the answer above first";
        return;
      }
      error.textContent = "";
      this.onAnswer(resume);
    });
    this.box.append(h("div", { class: "row" }, send), error);
    this.box.hidden = false;
  }
}

// Server-sent events over fetch (EventSource cannot POST, nor send x-api-key),
// and a run's stream that survives a dropped connection.
//
// The parser follows the WHATWG rules the SDK follows: lines end in CRLF, LF
// or CR; `data:` lines join with "\n"; `:` comments are ignored; a blank line
// dispatches. `id:` sets the last event id, which a reconnect sends back as
// `Last-Event-ID` so the server replays exactly the events after it.

import { request } from "./api.js";

export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(text) {
    let buffer = this.buffer + text;
    let start = 0;
    for (;;) {
      const cr = buffer.indexOf("\r", start);
      const lf = buffer.indexOf("\n", start);
      if (cr < 0 && lf < 0) break;
      let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      let next = end + 1;
      if (buffer[end] === "\r") {
        if (end + 1 === buffer.length) break; // a CR at the end: wait for a possible LF
        if (buffer[end + 1] === "\n") next = end + 2;
      }
      this.line(buffer.slice(start, end));
      start = next;
    }
    this.buffer = buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      if (this.event || this.data.length) {
        const raw = this.data.join("\n");
        let data = raw;
        try { data = raw === "" ? null : JSON.parse(raw); } catch { /* not JSON: keep the text */ }
        this.onEvent({ event: this.event || "message", data, id: this.id });
      }
      this.event = "";
      this.data = [];
      this.id = null;
      return;
    }
    if (line[0] === ":") return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }
}

// A big chunk (the network may hand over hundreds of kilobytes at once) is
// parsed a slice at a time, letting the browser draw and answer in between:
// no slice takes more than a few milliseconds.
const SLICE = 16 * 1024;
const breathe = () => globalThis.scheduler && scheduler.yield ? scheduler.yield()
  : new Promise((resolve) => setTimeout(resolve, 0));

// Read an SSE response to its end, calling onEvent for each event.
export async function readEvents(response, onEvent) {
  const parser = new SseParser(onEvent);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (value.length <= SLICE) {
        parser.push(value);
        continue;
      }
      for (let at = 0; at < value.length; at += SLICE) {
        if (at) await breathe();
        parser.push(value.slice(at, at + SLICE));
      }
    }
  } finally {
    reader.releaseLock();
  }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

// One run's stream: `open` starts it (a POST that creates the run, or a join
// of a run that exists), then reconnects after a drop with `Last-Event-ID`,
// as langgraph-sdk does (up to 5 tries in a row, backing off), until the
// server's `end` event. `onEvent` sees each event once; `lastId` is the id of
// the last one it saw.
export class RunStream {
  constructor({ modes, onEvent, onRetry }) {
    this.modes = modes;
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    this.lastId = null;
    this.location = null;
    this.ended = false;
    this.controller = new AbortController();
  }

  get signal() { return this.controller.signal; }

  abort() { this.controller.abort(); }

  joinPath(threadId, runId) {
    const query = this.modes.map((m) => "stream_mode=" + encodeURIComponent(m)).join("&");
    return `/threads/${encodeURIComponent(threadId)}/runs/${encodeURIComponent(runId)}/stream?${query}`;
  }

  // Create the run with POST `path` and `body`, then stream it to its end.
  async create(path, body) {
    const response = await request("POST", path, { body, signal: this.signal, stream: true });
    this.location = response.headers.get("location");
    await this.follow(response);
  }

  // Stream a run that exists, from the events after `lastId` (null: all of them).
  async join(threadId, runId, lastId) {
    this.lastId = lastId;
    this.location = this.joinPath(threadId, runId);
    await this.follow(null);
  }

  async follow(first) {
    let response = first;
    let failures = 0;
    while (!this.ended && !this.signal.aborted) {
      try {
        if (response === null) {
          const headers = { "last-event-id": this.lastId ?? "0" };
          response = await request("GET", this.location, { headers, signal: this.signal, stream: true });
        }
        await readEvents(response, (event) => {
          if (this.ended || this.signal.aborted) return;
          failures = 0;
          if (event.event === "end") { this.ended = true; return; }
          if (event.id !== null) this.lastId = event.id;
          this.onEvent(event);
        });
        if (!this.ended) failures++; // closed before `end`: the run goes on, so reconnect
      } catch (error) {
        if (this.signal.aborted) return;
        if (error.name === "ApiError" && error.status >= 400 && error.status < 500) throw error;
        if (++failures > 5) throw error;
      }
      if (failures > 5) throw new Error("the run's stream closed 5 times in a row before its end");
      response = null;
      if (!this.ended && !this.signal.aborted) {
        if (!this.location) throw new Error("the stream was cut before the server named the run");
        this.onRetry(failures);
        await sleep(Math.min(5000, 250 * 2 ** failures), this.signal);
      }
    }
  }
}

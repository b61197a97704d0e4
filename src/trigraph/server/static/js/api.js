// The server's HTTP API, as langgraph-sdk uses it: JSON requests, the API key,
// and errors that name the request and carry the server's `detail`.
//
// The key is asked for once, when the server first answers 401, and kept for
// the tab (sessionStorage): a reload keeps it, a new tab asks again. Requests
// that meet the same 401 wait for the same question.

const KEY = "trigraph.apiKey";

export class ApiError extends Error {
  constructor(method, path, status, detail) {
    super(`${method} ${path}: ${status ? status + " " : ""}${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

let asking = null;

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

function askForKey(refused) {
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const form = dialog.querySelector("form");
  const input = dialog.querySelector("input");
  dialog.querySelector(".refused").hidden = !refused;
  input.value = "";
  asking = new Promise((resolve, reject) => {
    const done = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      cleanup();
      dialog.close();
      resolve(key);
    };
    const cancelled = () => {
      cleanup();
      reject(new ApiError("", "", 401, "no API key was given; reload the page to enter one"));
    };
    const cleanup = () => {
      form.removeEventListener("submit", done);
      dialog.removeEventListener("cancel", cancelled);
      asking = null;
    };
    form.addEventListener("submit", done);
    dialog.addEventListener("cancel", cancelled);
    dialog.showModal();
    input.focus();
  });
  return asking;
}

async function detailOf(response) {
  try {
    const body = await response.json();
    const detail = body && (body.detail ?? body.message ?? body.error);
    return typeof detail === "string" ? detail : JSON.stringify(detail ?? body);
  } catch {
    return response.statusText || "no detail";
  }
}

// Send a request; answer the parsed JSON (null for 202/204), or with
// `stream: true` the Response itself (for SSE). Throws ApiError.
export async function request(method, path, { body, headers = {}, signal, stream = false } = {}) {
  for (let round = 0; ; round++) {
    const sent = apiKey();
    const all = { ...headers };
    if (sent) all["x-api-key"] = sent;
    if (body !== undefined) all["content-type"] = "application/json";
    if (stream) all.accept = "text/event-stream";
    let response;
    try {
      response = await fetch(path, {
        method, headers: all, signal, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(method, path, 0, `the server did not answer (${error.message})`);
    }
    if (response.status === 401 && round < 5) {
      if (apiKey() === sent) {
        // Nobody has given a newer key meanwhile: ask (once for every waiting request).
        sessionStorage.setItem(KEY, await askForKey(Boolean(sent)));
      }
      continue;
    }
    if (!response.ok) throw new ApiError(method, path, response.status, await detailOf(response));
    if (stream) return response;
    if (response.status === 202 || response.status === 204) return null;
    const text = await response.text();
    return text.trim() ? JSON.parse(text) : null;
  }
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options) => request("POST", path, { ...options, body });
export const enc = encodeURIComponent;

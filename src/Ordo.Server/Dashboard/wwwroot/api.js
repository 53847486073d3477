// The /v1 API as the dashboard calls it: the key from session storage, sent only as an Authorization header.
const KEY = "ordo.apiKey";

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An answer that is not 2xx: the status and the problem's title and detail (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ? `${problem.title ?? "Error"}: ${problem.detail}` : (problem?.title ?? `HTTP ${status}`));
    this.status = status;
    this.problem = problem;
  }
}

/** Calls the API; resolves to the JSON answer (null for 204), rejects with an ApiError. */
export async function api(method, path, body, signal) {
  const headers = { Authorization: `Bearer ${key.get() ?? ""}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: "no-store", credentials: "omit" });
  const text = await response.text();
  let json = null;
  if (text.length > 0) {
    try { json = JSON.parse(text); } catch { json = { title: text }; }
  }
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("ordo:unauthorized", { detail: json }));
    throw new ApiError(response.status, json);
  }
  return json;
}

/**
 * Follows a job's events as server-sent events. EventSource cannot send a header, so the stream is read with fetch.
 * Calls onEvent for each event; resolves when the server ends the stream (the job has ended) or the signal aborts.
 */
export async function followEvents(jobId, after, onEvent, signal) {
  const headers = {};
  if (after > 0) headers["Last-Event-ID"] = String(after);
  await follow(`/v1/jobs/${encodeURIComponent(jobId)}/events`, headers, (_, data) => onEvent(data), signal);
}

/**
 * Follows a live list (GET /v1/jobs or /v1/approvals as text/event-stream): onChange(name, data) for each entry that
 * is new or changed (name "job" or "approval") and for each that left the list ("removed"). Resolves when the server
 * ends the stream; the caller reconnects.
 */
export async function followList(path, onChange, signal) {
  await follow(path, {}, onChange, signal);
}

async function follow(path, extra, onEvent, signal) {
  const headers = { Authorization: `Bearer ${key.get() ?? ""}`, Accept: "text/event-stream", ...extra };
  const response = await fetch(path, { headers, signal, cache: "no-store", credentials: "omit" });
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, problem);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split("\n");
      const name = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "message";
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data.length > 0) onEvent(name, JSON.parse(data));
    }
  }
}

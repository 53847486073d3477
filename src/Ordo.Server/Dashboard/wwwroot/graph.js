// A job's graph: the server draws it (GET /v1/jobs/{id}/graph, the drawing of `ordo graph --job`) as an SVG image, and
// the page inserts it inline, so its steps, statuses and edges are part of the page (readable, searchable, testable).
import { ApiError, key } from "./api.js";

const NS = "http://www.w3.org/2000/svg";

/** Removes what an inline SVG must never carry, should the server ever send it: scripts, foreign content, handlers, links out. */
function sanitize(root) {
  root.querySelectorAll("script, foreignObject, iframe, image, use").forEach((n) => n.remove());
  for (const node of [root, ...root.querySelectorAll("*")]) {
    for (const attr of [...node.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on") || ((name === "href" || name === "xlink:href") && !attr.value.startsWith("#"))) node.removeAttribute(attr.name);
    }
  }
  return root;
}

/** Fetches the job's graph with the key, as the other API calls do; resolves to an <svg> element of this document. */
export async function loadJobGraph(jobId, signal) {
  const headers = { Authorization: `Bearer ${key.get() ?? ""}`, Accept: "image/svg+xml" };
  const response = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/graph`, { headers, signal, cache: "no-store", credentials: "omit" });
  const text = await response.text();
  if (!response.ok) {
    let problem = null;
    try { problem = JSON.parse(text); } catch { problem = { title: text }; }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("ordo:unauthorized", { detail: problem }));
    throw new ApiError(response.status, problem);
  }
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.namespaceURI !== NS || svg.localName !== "svg" || doc.getElementsByTagName("parsererror").length > 0) {
    throw new Error("the server's graph is not an SVG image");
  }
  return document.importNode(sanitize(svg), true);
}

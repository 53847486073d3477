// The job's steps as an inline SVG: one box per step in the order the job lists them, joined by arrows; the arrows
// into steps that ran are drawn as the path taken. (The API has no endpoint for the workflow's full graph yet.)
const NS = "http://www.w3.org/2000/svg";
const W = 150, H = 54, GAP = 40, PAD = 10;

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const RAN = new Set(["succeeded", "failed", "running", "waiting", "waiting_approval", "completed"]);

/** Draws the steps; each box names the step and its status in words (not only by colour). */
export function drawSteps(steps) {
  const perRow = 5;
  const rows = Math.max(1, Math.ceil(steps.length / perRow));
  const width = PAD * 2 + Math.min(steps.length, perRow) * (W + GAP) - GAP;
  const height = PAD * 2 + rows * (H + GAP) - GAP;
  const svg = el("svg", { width: Math.max(width, 200), height, viewBox: `0 0 ${Math.max(width, 200)} ${height}`, role: "img", "data-testid": "job-graph" });
  svg.appendChild(el("title", {}, `Steps of the job in order: ${steps.map((s) => `${s.id} ${s.status}`).join(", ") || "none yet"}`));
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z" }));
  defs.appendChild(marker);
  svg.appendChild(defs);
  const at = (i) => ({ x: PAD + (i % perRow) * (W + GAP), y: PAD + Math.floor(i / perRow) * (H + GAP) });
  steps.forEach((step, i) => {
    if (i > 0) {
      const a = at(i - 1), b = at(i);
      const taken = RAN.has(step.status) && RAN.has(steps[i - 1].status);
      const d = a.y === b.y
        ? `M ${a.x + W} ${a.y + H / 2} L ${b.x - 2} ${b.y + H / 2}`
        : `M ${a.x + W / 2} ${a.y + H} L ${a.x + W / 2} ${a.y + H + GAP / 2} L ${b.x + W / 2} ${a.y + H + GAP / 2} L ${b.x + W / 2} ${b.y - 2}`;
      svg.appendChild(el("path", { d, class: taken ? "edge taken" : "edge", "marker-end": "url(#arrow)" }));
    }
    const p = at(i);
    const g = el("g", { class: `node s-${step.status}`, transform: `translate(${p.x} ${p.y})` });
    g.appendChild(el("rect", { width: W, height: H, rx: 6 }));
    const label = step.id.length > 20 ? `${step.id.slice(0, 19)}…` : step.id;
    g.appendChild(el("text", { x: 8, y: 20 }, label));
    const attempts = step.attempts > 1 ? ` · ${step.attempts} attempts` : "";
    g.appendChild(el("text", { x: 8, y: 40, class: "sub" }, `${step.status}${attempts}`));
    svg.appendChild(g);
  });
  return svg;
}

// The Ordo dashboard: hash routes, one page at a time; every page reads the /v1 API with the session's key.
import { api, ApiError, followEvents, followList, key } from "./api.js";
import { loadJobGraph } from "./graph.js";

const STATUSES = ["queued", "running", "waiting_approval", "completed", "failed", "cancelled"];
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

/** Builds an element; strings become text (never HTML). */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "testid") node.dataset.testid = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** A status as a word with a symbol and a colour (the word carries the meaning). */
const badge = (status, testid) => h("span", { class: `status s-${status}`, testid }, status ?? "");
const time = (iso) => (iso ? h("time", { datetime: iso }, new Date(iso).toLocaleString()) : "");
const setLive = (text) => { $("live-status").textContent = text; };
const json = (v) => JSON.stringify(v, null, 2);
const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
});

function errorText(e) {
  if (e instanceof ApiError) return `${e.status} ${e.message}`;
  return e?.message ?? String(e);
}

/**
 * Follows a live list until the page changes, reconnecting when the stream ends or fails (after a pause); onOpen runs
 * before each connection (the server sends the whole list again on each).
 */
async function live(signal, path, onOpen, onChange, onError) {
  while (!signal.aborted) {
    try {
      onOpen();
      await followList(path, onChange, signal);
    } catch (e) {
      if (signal.aborted) return;
      onError(e);
      if (e instanceof ApiError && e.status < 500 && e.status !== 429) return;
    }
    await sleep(POLL_MS, signal);
  }
}

/** Runs fn every interval until the page changes; errors are shown, not thrown. */
async function poll(signal, fn, onError) {
  while (!signal.aborted) {
    try { await fn(); } catch (e) {
      if (signal.aborted) return;
      onError(e);
      // A refusal (403, 404, 400) stays one until the page changes: asking again only spends the key's rate limit.
      if (e instanceof ApiError && e.status < 500 && e.status !== 429) return;
    }
    await sleep(POLL_MS, signal);
  }
}

// ---- Jobs ---------------------------------------------------------------------------------------------------------

async function jobsPage(page, signal) {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const status = h("select", { id: "filter-status", testid: "filter-status" },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s)));
  status.value = params.get("status") ?? "";
  const workflow = h("select", { id: "filter-workflow", testid: "filter-workflow" }, h("option", { value: "" }, "any"));
  const error = h("p", { class: "error", role: "alert" });
  const body = h("tbody");
  const empty = h("p", { class: "muted" });
  page.append(
    h("h1", {}, "Jobs"),
    h("div", { class: "filters", role: "group", "aria-label": "Filters" },
      h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
      h("div", {}, h("label", { for: "filter-workflow" }, "Workflow"), workflow)),
    error,
    h("table", {}, h("caption", { class: "visually-hidden" }, "Jobs, newest first; updated live"),
      h("thead", {}, h("tr", {}, ["Job", "Workflow", "Status", "Submitter", "Created", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
      body),
    empty);
  try {
    const { workflows } = await api("GET", "/v1/workflows", undefined, signal);
    for (const w of workflows) workflow.append(h("option", { value: `${w.workflow}@${w.version}` }, `${w.workflow}@${w.version}`));
    for (const name of new Set(workflows.map((w) => w.workflow))) workflow.append(h("option", { value: name }, `${name} (any version)`));
  } catch (e) { error.textContent = errorText(e); }
  workflow.value = params.get("workflow") ?? "";
  const refilter = () => {
    const q = new URLSearchParams();
    if (status.value) q.set("status", status.value);
    if (workflow.value) q.set("workflow", workflow.value);
    location.hash = `#/jobs${q.size ? `?${q}` : ""}`;
  };
  status.addEventListener("change", refilter);
  workflow.addEventListener("change", refilter);

  const rows = new Map();
  const q = new URLSearchParams({ limit: "100" });
  if (status.value) q.set("status", status.value);
  if (workflow.value) q.set("workflow", workflow.value);
  // Newest first: by creation time, then id (ids of one millisecond sort by time too).
  const newer = (a, b) => (a.created_at === b.created_at ? a.job_id > b.job_id : a.created_at > b.created_at);
  const place = (row, job) => {
    let next = body.firstChild;
    while (next && next !== row && !newer(job, next.job)) next = next.nextSibling;
    if (next !== row) body.insertBefore(row, next);
  };
  const showEmpty = () => { empty.textContent = rows.size === 0 ? "No jobs match." : ""; };
  await live(signal, `/v1/jobs?${q}`, () => {
    for (const row of rows.values()) row.remove();
    rows.clear();
  }, (name, data) => {
    error.textContent = "";
    if (name === "removed") {
      rows.get(data.job_id)?.remove();
      rows.delete(data.job_id);
    } else if (name === "job") {
      let row = rows.get(data.job_id);
      if (!row) {
        row = h("tr", { testid: "job-row", "data-job-id": data.job_id },
          h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(data.job_id)}`, class: "mono" }, data.job_id)),
          h("td", {}, data.workflow), h("td", {}, badge(data.status, "job-status")), h("td", {}, data.submitter ?? ""),
          h("td", {}, time(data.created_at)), h("td", {}));
        rows.set(data.job_id, row);
      }
      row.job = data;
      place(row, data);
      const cell = row.querySelector('[data-testid="job-status"]');
      if (cell.textContent !== data.status) { cell.textContent = data.status; cell.className = `status s-${data.status}`; }
      row.cells[5].replaceChildren(time(data.updated_at));
    }
    showEmpty();
    setLive(`Jobs updated ${new Date().toLocaleTimeString()}`);
  }, (e) => { error.textContent = errorText(e); });
}

// ---- A job --------------------------------------------------------------------------------------------------------

const EVENT_GROUPS = [
  ["Tool calls", (e) => /tool/i.test(e.type)],
  ["Policy decisions", (e) => /policy|budget|killswitch|kill_switch/i.test(e.type) || (e.policy !== null && e.policy !== undefined)],
  ["Artifacts and evidence", (e) => /artifact|evidence|verif/i.test(e.type)],
];

function summarize(payload) {
  if (payload === null || typeof payload !== "object") return String(payload ?? "");
  const text = JSON.stringify(payload);
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

function eventRow(e) {
  return h("tr", { testid: "event-row" },
    h("td", {}, String(e.seq)), h("td", {}, time(e.ts)), h("td", { class: "mono" }, e.type),
    h("td", {}, e.step_id ?? ""), h("td", {}, e.attempt ?? ""), h("td", {}, [e.agent, e.model, e.policy].filter(Boolean).join(" · ")),
    h("td", {}, h("details", {}, h("summary", { class: "mono" }, summarize(e.payload)), h("pre", {}, json(e.payload)))));
}

const eventTable = (rows) => h("table", { class: "events" },
  h("thead", {}, h("tr", {}, ["#", "Time", "Event", "Step", "Attempt", "Agent · model · policy", "Payload"].map((c) => h("th", { scope: "col" }, c)))),
  h("tbody", {}, rows));

async function jobPage(page, signal, id) {
  const error = h("p", { class: "error", role: "alert" });
  const head = h("div");
  const graph = h("div", { class: "graph" });
  const steps = h("tbody");
  const artifacts = h("div");
  const approvals = h("div");
  const groups = EVENT_GROUPS.map(([title]) => h("div", { "data-group": title }));
  const timeline = h("tbody");
  page.append(
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("h1", {}, "Job ", h("span", { class: "mono" }, id)), error, head,
    h("h2", {}, "Graph"), h("p", { class: "muted" }, "The workflow's graph, each step with its status and attempts; bold green arrows are the path the job took, dashed ones loops, rejections and denials."), graph,
    h("h2", {}, "Steps"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Duration", "Error"].map((c) => h("th", { scope: "col" }, c)))), steps),
    h("h2", {}, "Artifacts"), artifacts,
    h("h2", {}, "Approvals"), approvals,
    ...EVENT_GROUPS.flatMap(([title], i) => [h("h2", {}, title), groups[i]]),
    h("h2", {}, "Timeline"), eventTable([]));
  page.querySelector("table.events:last-of-type tbody").replaceWith(timeline);

  const events = [];
  const renderGroups = () => EVENT_GROUPS.forEach(([, match], i) => {
    const rows = events.filter(match).map(eventRow);
    groups[i].replaceChildren(rows.length ? eventTable(rows) : h("p", { class: "muted" }, "None."));
  });

  // The graph is drawn by the server; each redraw asks for it again, and only the latest answer is shown.
  let graphRequest = 0;
  const drawGraph = async () => {
    const n = ++graphRequest;
    try {
      const svg = await loadJobGraph(id, signal);
      if (n === graphRequest) graph.replaceChildren(svg);
    } catch (e) {
      if (!signal.aborted && n === graphRequest) graph.replaceChildren(h("p", { class: "error" }, `The graph could not be drawn: ${errorText(e)}`));
    }
  };

  const render = (job) => {
    head.replaceChildren(h("dl", { class: "summary" },
      h("dt", {}, "Status"), h("dd", {}, badge(job.status, "job-status"), job.reason ? ` — ${job.reason}` : ""),
      h("dt", {}, "Workflow"), h("dd", {}, job.workflow),
      h("dt", {}, "Submitter"), h("dd", {}, job.submitter ?? ""),
      h("dt", {}, "Created"), h("dd", {}, time(job.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, time(job.updated_at)),
      h("dt", {}, "Tokens"), h("dd", { testid: "job-tokens" }, String(job.usage?.tokens ?? 0)),
      h("dt", {}, "Cost"), h("dd", { testid: "job-cost" }, String(job.usage?.cost ?? 0)),
      h("dt", {}, "Tool calls"), h("dd", {}, String(job.usage?.tool_calls ?? 0)),
      h("dt", {}, "Events"), h("dd", {}, String(job.audit?.events ?? ""))));
    drawGraph();
    steps.replaceChildren(...(job.steps ?? []).map((s) => h("tr", { testid: "step-row", "data-step-id": s.id },
      h("td", { class: "mono" }, s.scope ? `${s.id} (${s.scope})` : s.id), h("td", {}, badge(s.status, "step-status")),
      h("td", {}, String(s.attempts)), h("td", {}, `${s.duration_ms} ms`), h("td", {}, s.error ?? ""))));
    const arts = Object.entries(job.artifacts ?? {});
    artifacts.replaceChildren(arts.length === 0 ? h("p", { class: "muted" }, "None.") : h("table", {},
      h("thead", {}, h("tr", {}, ["Artifact", "Status", "Version", "Evidence", "Value"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, arts.map(([name, a]) => h("tr", { testid: "artifact-row" }, h("td", { class: "mono" }, name), h("td", {}, badge(a.status)),
        h("td", {}, String(a.version)), h("td", {}, a.reason ?? ""),
        h("td", {}, h("details", {}, h("summary", {}, summarize(a.value)), h("pre", {}, json(a.value)))))))));
    const aps = job.approvals ?? [];
    approvals.replaceChildren(aps.length === 0 ? h("p", { class: "muted" }, "None.") : h("table", {},
      h("thead", {}, h("tr", {}, ["Approval", "Step", "Status", "Role", "Approvers", "Reason"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, aps.map((a) => h("tr", {}, h("td", { class: "mono" }, a.id), h("td", {}, a.step ?? ""), h("td", {}, badge(a.status)),
        h("td", {}, a.role), h("td", {}, `${a.approvers.join(", ") || "none"} (${a.approvers.length} of ${a.count})`), h("td", {}, a.reason ?? ""))))));
  };

  let pending = null;
  const refresh = async () => {
    try { render(await api("GET", `/v1/jobs/${encodeURIComponent(id)}`, undefined, signal)); error.textContent = ""; }
    catch (e) { if (!signal.aborted) error.textContent = errorText(e); }
  };
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 150); };
  await refresh();
  renderGroups();
  let last = 0;
  while (!signal.aborted) {
    try {
      setLive("Following the job's events live");
      await followEvents(id, last, (e) => {
        last = e.seq;
        events.push(e);
        timeline.append(eventRow(e));
        soon();
      }, signal);
      renderGroups();
      await refresh();
      setLive("The job has ended; its events are complete");
      return;
    } catch (e) {
      if (signal.aborted) return;
      error.textContent = errorText(e);
      if (e instanceof ApiError && e.status < 500 && e.status !== 429) return;
      await sleep(2000, signal);
    } finally {
      renderGroups();
    }
  }
}

// ---- Approvals ----------------------------------------------------------------------------------------------------

async function approvalsPage(page, signal) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("tbody");
  const empty = h("p", { class: "muted" });
  page.append(h("h1", {}, "Approvals"),
    h("p", { class: "muted" }, "Pending approvals of your tenant. A decision needs the approval's role; the job's submitter cannot decide, and each approver counts once."),
    error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Job", "Step", "Role", "Decided", "What to check", "Decision"].map((c) => h("th", { scope: "col" }, c)))), body),
    empty);
  const rows = new Map();
  let n = 0;
  const decide = async (a, decision, reason, message, buttons) => {
    buttons.forEach((b) => { b.disabled = true; });
    message.className = "muted";
    message.textContent = "Sending…";
    try {
      const r = await api("POST", `/v1/jobs/${encodeURIComponent(a.job_id)}/approvals/${encodeURIComponent(a.approval_id)}`,
        { decision, reason: reason.value.trim() || null }, signal);
      message.className = "notice";
      message.textContent = `Recorded: ${decision}. Approval ${r.status}; ${r.remaining} more needed; job ${r.job_status}.`;
    } catch (e) {
      message.className = "error";
      message.textContent = e instanceof ApiError && e.status === 409
        ? `Refused (409): ${e.problem?.detail ?? e.message}`
        : `Not recorded: ${errorText(e)}`;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  const pending = new Set();
  const showEmpty = () => { empty.textContent = pending.size === 0 ? "No approvals are pending." : ""; };
  await live(signal, "/v1/approvals?status=pending", () => pending.clear(), (name, a) => {
    error.textContent = "";
    const k = `${a.job_id} ${a.approval_id}`;
    if (name === "removed") {
      // A decided approval stays in view with its message until the page is left.
      pending.delete(k);
      const entry = rows.get(k);
      if (entry) entry.decided.textContent = "no longer pending";
    } else if (name === "approval") {
      pending.add(k);
      let entry = rows.get(k);
      if (!entry) {
        const i = n++;
        const reason = h("input", { type: "text", id: `reason-${i}`, testid: "reason-input", maxlength: 500 });
        const message = h("p", { role: "status", testid: "decision-message" });
        const approve = h("button", { type: "button", testid: "approve-button" }, "Approve");
        const deny = h("button", { type: "button", class: "danger", testid: "deny-button" }, "Deny");
        approve.addEventListener("click", () => decide(a, "approve", reason, message, [approve, deny]));
        deny.addEventListener("click", () => decide(a, "deny", reason, message, [approve, deny]));
        const decided = h("td", {});
        const row = h("tr", { testid: "approval-row", "data-job-id": a.job_id, "data-approval-id": a.approval_id },
          h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(a.job_id)}`, class: "mono" }, a.job_id)),
          h("td", {}, a.step ?? ""), h("td", {}, a.role), decided,
          h("td", {}, a.show === null ? "" : h("pre", {}, json(a.show))),
          h("td", {}, h("label", { for: `reason-${i}` }, "Reason"), reason, " ", approve, " ", deny, message));
        entry = { row, decided };
        rows.set(k, entry);
        body.append(row);
      }
      entry.decided.textContent = `${a.decided} of ${a.count}`;
    }
    if (name === "synced" || name === "removed" || pending.size > 0) showEmpty();
    setLive(`Approvals updated ${new Date().toLocaleTimeString()}`);
  }, (e) => { error.textContent = errorText(e); });
}

// ---- Kill switches ------------------------------------------------------------------------------------------------

async function killSwitchesPage(page, signal) {
  const error = h("p", { class: "error", role: "alert" });
  const message = h("p", { role: "status" });
  const target = h("input", { type: "text", id: "kill-target", testid: "kill-target-input", required: true, placeholder: "tool:NAME", spellcheck: "false" });
  const reason = h("input", { type: "text", id: "kill-reason", testid: "kill-reason-input" });
  const body = h("tbody");
  const empty = h("p", { class: "muted" });
  const form = h("form", {},
    h("div", {}, h("label", { for: "kill-target" }, "Target (tool:NAME, agent:NAME, workflow:NAME or step:KIND)"), target),
    h("div", {}, h("label", { for: "kill-reason" }, "Reason"), reason),
    h("button", { type: "submit", class: "danger", testid: "kill-set-button" }, "Set kill switch"));
  page.append(h("h1", {}, "Kill switches"),
    h("p", { class: "muted" }, "A kill switch stops new work on its target in your tenant's jobs at once. Switches for all tenants are set on the server (ordo kill) and are cleared there."),
    form, message, error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Target", "Applies to", "Reason", "Set by", "Set at", ""].map((c) => h("th", { scope: "col" }, c)))), body), empty);

  const load = async () => {
    const { kill_switches: switches } = await api("GET", "/v1/kill-switches", undefined, signal);
    error.textContent = "";
    body.replaceChildren(...switches.map((s) => h("tr", { testid: "kill-switch-row", "data-target": s.target },
      h("td", { class: "mono" }, s.target), h("td", {}, s.scope === "all_tenants" ? "all tenants" : "this tenant"),
      h("td", {}, s.reason ?? ""), h("td", {}, s.set_by), h("td", {}, time(s.set_at)),
      h("td", {}, s.scope === "all_tenants" ? "" : h("button", { type: "button", class: "secondary", testid: "kill-clear-button", "aria-label": `Remove kill switch ${s.target}`,
        onclick: async () => {
          try {
            await api("DELETE", `/v1/kill-switches/${encodeURIComponent(s.target)}`, undefined, signal);
            message.className = "notice";
            message.textContent = `Removed ${s.target}.`;
          } catch (e) { message.className = "error"; message.textContent = errorText(e); }
          await load().catch((e) => { error.textContent = errorText(e); });
        } }, "Remove")))));
    empty.textContent = switches.length === 0 ? "No kill switch is set." : "";
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = target.value.trim();
    if (!t) return;
    try {
      await api("PUT", `/v1/kill-switches/${encodeURIComponent(t)}`, { reason: reason.value.trim() || null }, signal);
      message.className = "notice";
      message.textContent = `Set ${t}.`;
      target.value = "";
      reason.value = "";
    } catch (e) { message.className = "error"; message.textContent = `Not set: ${errorText(e)}`; }
    await load().catch((e) => { error.textContent = errorText(e); });
  });
  await poll(signal, load, (e) => { error.textContent = errorText(e); });
}

// ---- Stats --------------------------------------------------------------------------------------------------------

async function statsPage(page, signal) {
  const error = h("p", { class: "error", role: "alert" });
  const since = h("select", { "aria-label": "Window", testid: "stats-since" },
    [["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"]].map(([v, t]) => h("option", { value: v }, t)));
  const body = h("tbody");
  const agents = h("tbody");
  const releases = h("tbody");
  const pct = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)}%`);
  const ms = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
  const usd = (v) => (v === null || v === undefined ? "–" : `$${Number(v).toFixed(4)}`);
  page.append(h("h1", {}, "Stats"),
    h("p", {}, "Per workflow version, agent and prompt hash, from the store's summary rows (the figures of ", h("code", {}, "ordo stats"), ")."),
    h("label", {}, "Jobs created in the ", since), error,
    h("table", {}, h("thead", {}, h("tr", {}, ["Workflow", "Jobs", "Completed", "Failed", "Cancelled", "Success", "Cost / success", "Tokens", "p50", "p95", "Retries / job", "Gate rejections", "Escalations"]
      .map((c) => h("th", { scope: "col" }, c)))), body),
    h("h2", {}, "Releases"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Workflow", "Stable", "Canary", "Canary jobs", "Failure rate", "Gate rejections", "Cost / job vs stable", "Shadow"].map((c) => h("th", { scope: "col" }, c)))), releases),
    h("h2", {}, "Agents"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Workflow", "Agent", "Prompt hash", "Calls", "Failures", "Tokens", "Cost"].map((c) => h("th", { scope: "col" }, c)))), agents));
  since.addEventListener("change", () => { load().catch((e) => { error.textContent = errorText(e); }); });
  async function load() {
    const r = await api("GET", `/v1/stats?${new URLSearchParams({ since: since.value })}`, undefined, signal);
    body.replaceChildren(...r.workflows.map((w) => h("tr", { testid: "stats-row" },
      h("th", { scope: "row", class: "mono" }, `${w.workflow}@${w.version}`), h("td", {}, String(w.jobs)), h("td", {}, String(w.completed)),
      h("td", {}, String(w.failed)), h("td", {}, String(w.cancelled)), h("td", {}, pct(w.success_rate)), h("td", {}, usd(w.cost_per_success)),
      h("td", {}, String(w.tokens)), h("td", {}, ms(w.latency_ms.p50)), h("td", {}, ms(w.latency_ms.p95)), h("td", {}, w.retries_per_job.toFixed(2)),
      h("td", {}, pct(w.gate_rejection_rate)), h("td", {}, pct(w.escalation_rate)))));
    agents.replaceChildren(...r.workflows.flatMap((w) => w.agents.map((a) => h("tr", { testid: "stats-agent-row" },
      h("td", { class: "mono" }, `${w.workflow}@${w.version}`), h("th", { scope: "row", class: "mono" }, a.agent),
      h("td", { class: "mono", title: a.prompt_hash ?? "" }, a.prompt_hash ? a.prompt_hash.slice(0, 19) : "–"), h("td", {}, String(a.calls)),
      h("td", {}, String(a.failures)), h("td", {}, String(a.tokens)), h("td", {}, usd(a.cost))))));
    const rel = await api("GET", "/v1/releases", undefined, signal);
    releases.replaceChildren(...rel.releases.map((r) => h("tr", { testid: "release-row" },
      h("th", { scope: "row", class: "mono" }, r.workflow), h("td", {}, String(r.stable)),
      h("td", { testid: "release-canary" }, r.canary
        ? (r.canary.status === "rolled_back" ? `${r.canary.version}: rolled back at ${new Date(r.canary.rolled_back_at).toLocaleString()} (${r.canary.reason})`
          : r.canary.status === "inactive" ? `${r.canary.version}: inactive (share 0)` : `${r.canary.version}: active, share ${r.canary.share}`)
        : "–"),
      h("td", {}, r.canary ? String(r.canary.jobs) : "–"), h("td", {}, r.canary ? pct(r.canary.failure_rate) : "–"),
      h("td", {}, r.canary ? pct(r.canary.gate_rejection_rate) : "–"),
      h("td", {}, r.canary && r.canary.cost_per_job_ratio !== null ? `${r.canary.cost_per_job_ratio.toFixed(2)}×` : "–"),
      h("td", {}, r.shadow ? `${r.shadow.version}: ${r.shadow.compared} compared, ${r.shadow.same_outcome} same outcome, ${r.shadow.same_artifacts} same artifacts` : "–"))));
    error.textContent = "";
  }
  await poll(signal, async () => { await load(); await sleep(4000, signal); }, (e) => { error.textContent = errorText(e); });
}

// ---- Shell --------------------------------------------------------------------------------------------------------

let current = null;

function route() {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const page = $("page");
  page.replaceChildren();
  setLive("");
  const signedIn = Boolean(key.get());
  $("key-section").hidden = signedIn;
  $("nav").hidden = !signedIn;
  $("forget-key").hidden = !signedIn;
  if (!signedIn) { $("api-key").focus(); return; }
  const path = (location.hash.replace(/^#/, "").split("?")[0]) || "/jobs";
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${parts[0]}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  let run;
  if (parts[0] === "jobs" && parts[1]) { document.title = "Job — Ordo"; run = jobPage(page, signal, decodeURIComponent(parts[1])); }
  else if (parts[0] === "approvals") { document.title = "Approvals — Ordo"; run = approvalsPage(page, signal); }
  else if (parts[0] === "kill-switches") { document.title = "Kill switches — Ordo"; run = killSwitchesPage(page, signal); }
  else if (parts[0] === "stats") { document.title = "Stats — Ordo"; run = statsPage(page, signal); }
  else { document.title = "Jobs — Ordo"; run = jobsPage(page, signal); }
  run.catch((e) => { if (!signal.aborted) page.append(h("p", { class: "error", role: "alert" }, errorText(e))); });
}

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("api-key");
  const value = input.value.trim();
  input.value = "";
  if (!value) return;
  key.set(value);
  try {
    await api("GET", "/v1/workflows");
    $("key-error").textContent = "";
    route();
  } catch (e) {
    key.clear();
    $("key-error").textContent = e instanceof ApiError && e.status === 401 ? "The server does not accept this key." : errorText(e);
  }
});

$("forget-key").addEventListener("click", () => { key.clear(); route(); });
window.addEventListener("ordo:unauthorized", () => {
  key.clear();
  $("key-error").textContent = "The key is no longer accepted (revoked or unknown). Enter another one.";
  route();
});
window.addEventListener("hashchange", route);
route();

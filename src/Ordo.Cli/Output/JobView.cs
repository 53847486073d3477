using System.Text.Json;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Output;

/// <summary>The summary of a job that <c>run</c> and <c>show</c> print.</summary>
internal static class JobView
{
    /// <summary>The steps that ran, in workflow order (a coordinating step's branches and items right after it; see <see cref="StepRows"/>).</summary>
    public static IEnumerable<StepState> Steps(JobState state, WorkflowDefinition? workflow) => StepRows(state, workflow).Select(r => r.Step);

    /// <summary>
    /// The steps that ran as a tree: top-level steps in workflow order; after a coordinating step, for each of its visits,
    /// its branches (parallel: in listed order; foreach: by index) with the steps that ran in each branch's scope, one level
    /// deeper (nested patterns nest further). Steps in a scope no pattern explains come last.
    /// </summary>
    public static IReadOnlyList<StepRow> StepRows(JobState state, WorkflowDefinition? workflow)
    {
        Dictionary<string, int>? order = workflow?.Steps.Select((s, i) => (s.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        var byScope = state.Steps.Values
            .GroupBy(s => s.Scope ?? "", StringComparer.Ordinal)
            .ToDictionary(
                g => g.Key,
                g => g.OrderBy(s => order?.GetValueOrDefault(s.Id, int.MaxValue) ?? 0).ThenBy(s => s.Id, StringComparer.Ordinal).ToList(),
                StringComparer.Ordinal);
        var patterns = state.Patterns.Values
            .GroupBy(p => (p.Scope ?? "", p.StepId))
            .ToDictionary(g => g.Key, g => g.OrderBy(p => p.Visit).ToList());
        var rows = new List<StepRow>();
        var seen = new HashSet<StepState>(ReferenceEqualityComparer.Instance);
        var scopes = new HashSet<string>(StringComparer.Ordinal);

        // ended: how the enclosing branch ended when not with success (cancelled, failed): work still open in it was abandoned.
        void Emit(string scope, int depth, string? ended)
        {
            if (!scopes.Add(scope) || !byScope.TryGetValue(scope, out var steps)) return;
            foreach (var s in steps)
            {
                if (!seen.Add(s)) continue;
                var branchOf = BranchOf(state, s);
                var owned = patterns.GetValueOrDefault((scope, s.Id)) ?? [];
                var status = ended is not null && s.Status is "scheduled" or "running" or "waiting" ? "cancelled" : s.Status;
                rows.Add(new StepRow(s, depth, owned, branchOf) { Status = status });
                foreach (var p in owned)
                {
                    foreach (var (_, branch) in Branches(p)) Emit(branch.Scope, depth + 1, ended ?? (branch.Status is "cancelled" or "failed" ? branch.Status : null));
                }
            }
        }

        Emit("", 0, null);
        foreach (var scope in byScope.Keys.Order(ScopeComparer.Instance))
        {
            Emit(scope, 1, null);
        }

        return rows;
    }

    /// <summary>The parallel step whose branch <paramref name="step"/> summarizes (the reducer records each ended branch as <c>steps.BRANCH</c> in the parallel step's scope), or null.</summary>
    private static string? BranchOf(JobState state, StepState step)
    {
        foreach (var p in state.Patterns.Values)
        {
            if (p.Kind == "parallel" && p.Scope == step.Scope && p.Branches.TryGetValue(step.Id, out var b) && b.Status != "running" && p.Labels.Contains(step.Id, StringComparer.Ordinal))
            {
                return p.StepId;
            }
        }

        return null;
    }

    /// <summary>A pattern's branches in their natural order: parallel as listed, foreach by index, then anything else by label.</summary>
    public static IEnumerable<(string Label, BranchState Branch)> Branches(PatternState p)
    {
        var listed = p.Labels.Where(p.Branches.ContainsKey).ToList();
        var rest = p.Branches.Keys.Except(listed, StringComparer.Ordinal).Order(ScopeComparer.Instance);
        return listed.Concat(rest).Select(l => (l, p.Branches[l]));
    }

    /// <summary>The patterns of a job in step-tree order (<see cref="StepRows"/>), then any other.</summary>
    public static IReadOnlyList<PatternState> Patterns(JobState state, WorkflowDefinition? workflow)
    {
        var list = StepRows(state, workflow).SelectMany(r => r.Patterns).Distinct(ReferenceEqualityComparer.Instance).Cast<PatternState>().ToList();
        list.AddRange(state.Patterns.Values.Except(list, ReferenceEqualityComparer.Instance).Cast<PatternState>().OrderBy(p => p.Scope ?? "", ScopeComparer.Instance).ThenBy(p => p.StepId, StringComparer.Ordinal).ThenBy(p => p.Visit));
        return list;
    }

    /// <summary>The work key of a pattern's coordinating step visit (the owner part of its branches' scopes).</summary>
    public static string WorkKey(PatternState p) => Events.WorkKeys.For(p.Scope, p.StepId, p.Visit);

    /// <summary>The child job ids of a job's patterns, with the branch scope and the coordinating step that started each.</summary>
    public static Dictionary<string, (string Scope, string Step)> ChildBranches(JobState state)
    {
        var map = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var p in state.Patterns.Values)
        {
            foreach (var b in p.Branches.Values)
            {
                if (b.ChildJobId is { } child) map[child] = (b.Scope, p.StepId);
            }
        }

        return map;
    }

    /// <summary>
    /// One line about a pattern for people: its kind and size, its branches' statuses (label → status; items grouped
    /// by status), or a multi-phase step's units by phase.
    /// </summary>
    public static string Summary(PatternState p)
    {
        var phases = Phases(p);
        var units = phases.Count == 0 ? "" : $"{p.Progress.Count} unit{(p.Progress.Count == 1 ? "" : "s")} ({string.Join(", ", phases.Select(x => $"{x.Key} ×{x.Value}"))})";
        switch (p.Kind)
        {
            case "parallel":
            {
                var labels = p.Labels.Length > 0 ? p.Labels.ToList() : p.Branches.Keys.Order(StringComparer.Ordinal).ToList();
                var parts = labels.Select(l => p.Branches.TryGetValue(l, out var b) ? $"{l} → {b.Status}{Why(b)}" : $"{l} → not started");
                return $"parallel, join {JoinName(p)}: {string.Join(", ", parts)}";
            }

            case "foreach":
            {
                var head = $"foreach over {p.Count} item{(p.Count == 1 ? "" : "s")}{(p.MaxConcurrency > 0 ? $", {p.MaxConcurrency} at once" : "")}{(p.Do is null ? "" : ", do " + p.Do)}";
                var groups = Branches(p).GroupBy(b => b.Branch.Status, StringComparer.Ordinal).OrderBy(g => StatusRank(g.Key))
                    .Select(g => $"{g.Key} {Ranges(g.Select(b => b.Label))}{(g.Key is "failed" or "cancelled" ? Why(g.First().Branch) : "")}").ToList();
                // Items start in input order: those not started are the last ones.
                if (p.Count > p.Started) groups.Add($"not started {Ranges(Enumerable.Range(p.Started, p.Count - p.Started).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)))}");
                return groups.Count == 0 ? head : $"{head}: {string.Join("; ", groups)}";
            }

            case "workflow":
            {
                var child = p.Branches.Values.FirstOrDefault();
                return $"sub-workflow {p.Do}{(child is null ? "" : $": child {child.ChildJobId} → {child.Status}{Why(child)}")}";
            }

            default:
                return units.Length == 0 ? $"{p.Kind}: no units yet" : $"{p.Kind}: {units}";
        }
    }

    /// <summary>A multi-phase step's units counted by phase, in order of first appearance.</summary>
    public static List<KeyValuePair<string, int>> Phases(PatternState p)
    {
        var counts = new List<KeyValuePair<string, int>>();
        foreach (var u in p.Progress)
        {
            var i = counts.FindIndex(c => c.Key == u.Phase);
            if (i < 0) counts.Add(new(u.Phase, 1));
            else counts[i] = new(u.Phase, counts[i].Value + 1);
        }

        return counts;
    }

    private static string JoinName(PatternState p) => JoinName(p.Join, p.Needed);

    /// <summary>A join policy as it is written: <c>all</c>, <c>any</c>, <c>quorum(N)</c>.</summary>
    public static string JoinName(string join, int needed) => join == "quorum" ? $"quorum({needed})" : join;

    private static string Why(BranchState b) => b.Reason is { } r && b.Status != "succeeded" ? $" ({Shorten(r, 80)})" : "";

    private static int StatusRank(string status) => status switch
    {
        "succeeded" => 0,
        "running" => 1,
        "failed" => 2,
        "cancelled" => 3,
        _ => 4,
    };

    /// <summary>Numeric labels as ranges (<c>0–4, 7, 9–11</c>); other labels listed.</summary>
    private static string Ranges(IEnumerable<string> labels)
    {
        var numbers = new List<int>();
        var others = new List<string>();
        foreach (var l in labels)
        {
            if (int.TryParse(l, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)) numbers.Add(n);
            else others.Add(l);
        }

        numbers.Sort();
        var parts = new List<string>();
        for (var i = 0; i < numbers.Count;)
        {
            var j = i;
            while (j + 1 < numbers.Count && numbers[j + 1] == numbers[j] + 1) j++;
            parts.Add(j == i ? numbers[i].ToString(System.Globalization.CultureInfo.InvariantCulture)
                : j == i + 1 ? $"{numbers[i]}, {numbers[j]}"
                : $"{numbers[i]}–{numbers[j]}");
            i = j + 1;
        }

        parts.AddRange(others);
        return string.Join(", ", parts);
    }

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    /// <summary>Writes a job's patterns (the <c>patterns</c> array of <c>ordo show --json</c>).</summary>
    public static void WritePatterns(Utf8JsonWriter w, JobState state, WorkflowDefinition? workflow)
    {
        w.WriteStartArray("patterns");
        foreach (var p in Patterns(state, workflow))
        {
            w.WriteStartObject();
            w.WriteString("step", p.StepId);
            w.WriteNumber("visit", p.Visit);
            w.WriteNumber("attempt", p.Attempt);
            JsonOut.WriteNullable(w, "scope", p.Scope);
            w.WriteString("work_key", WorkKey(p));
            w.WriteString("kind", p.Kind);
            w.WriteBoolean("ended", p.Ended);
            if (p.Kind is "parallel" or "foreach" or "workflow")
            {
                w.WriteNumber("count", p.Count);
                w.WriteString("join", p.Join);
                w.WriteNumber("needed", p.Needed);
                if (p.MaxConcurrency > 0) w.WriteNumber("max_concurrency", p.MaxConcurrency);
                JsonOut.WriteNullable(w, "do", p.Do);
                w.WriteNumber("started", p.Started);
                w.WriteNumber("running", p.Running);
                w.WriteNumber("succeeded", p.Succeeded);
                w.WriteNumber("failed", p.Failed);
                w.WriteNumber("cancelled", p.Branches.Values.Count(b => b.Status == "cancelled"));
                w.WriteStartArray("branches");
                foreach (var (label, b) in Branches(p))
                {
                    w.WriteStartObject();
                    w.WriteString("label", label);
                    w.WriteString("status", b.Status);
                    w.WriteString("scope", b.Scope);
                    if (b.ChildJobId is { } child) w.WriteString("child_job_id", child);
                    if (b.Reason is { } reason) w.WriteString("reason", reason);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            if (p.Progress.Count > 0 || p.Kind is not ("parallel" or "foreach" or "workflow"))
            {
                w.WriteStartObject("phases");
                foreach (var (phase, n) in Phases(p)) w.WriteNumber(phase, n);
                w.WriteEndObject();
                w.WriteStartArray("units");
                for (var i = 0; i < p.Progress.Count; i++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("unit", i);
                    w.WriteString("phase", p.Progress[i].Phase);
                    w.WritePropertyName("data");
                    p.Progress[i].Data.WriteTo(w);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteString("summary", Summary(p));
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>The <c>ordo run --json</c> object.</summary>
    public static void WriteRunJson(Utf8JsonWriter w, JobState state, WorkflowDefinition? workflow, string databasePath, IReadOnlyList<JobState>? waitingIn = null)
    {
        w.WriteStartObject();
        w.WriteString("job_id", state.JobId.Value);
        w.WriteString("workflow", $"{state.Workflow}@{state.Version}");
        // A job that can go no further while a job under it waits for a human is reported paused, like that job.
        w.WriteString("status", waitingIn is { Count: > 0 } ? JobStatus.WaitingApproval.ToWire() : state.Status.ToWire());
        JsonOut.WriteNullable(w, "reason", state.Reason);
        if (state.DryRun) w.WriteBoolean("dry_run", true);
        // A shadow job (and a job under one) names the production job whose input it runs on.
        JsonOut.WriteNullable(w, "shadow_of", state.ShadowOf);
        w.WriteStartObject("artifacts");
        foreach (var a in state.Artifacts.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            w.WriteStartObject(a.Name);
            w.WriteString("status", a.Latest.Status);
            w.WritePropertyName("value");
            a.Latest.Value.WriteTo(w);
            w.WriteNumber("version", a.Latest.Version);
            if (a.Latest.Reason is { } reason) w.WriteString("reason", reason);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteStartArray("steps");
        foreach (var row in StepRows(state, workflow))
        {
            var s = row.Step;
            w.WriteStartObject();
            w.WriteString("id", s.Id);
            if (s.Scope is { } scope) w.WriteString("scope", scope);
            if (row.BranchOf is { } owner) w.WriteString("branch_of", owner);
            w.WriteString("status", row.Status);
            w.WriteNumber("attempts", s.Attempts);
            w.WriteNumber("duration_ms", Math.Round(s.DurationMs, 3));
            if (s.Visit > 1) w.WriteNumber("visits", s.Visit);
            if (s.Error is { } e && s.Status == "failed") w.WriteString("error", e);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("approvals");
        var approvals = state.Approvals.Values.OrderBy(a => a.RequestedAt).Select(a => (Job: (JobState?)null, Approval: a))
            .Concat((waitingIn ?? []).SelectMany(j => j.Approvals.Values.Where(a => a.IsPending).OrderBy(a => a.RequestedAt).Select(a => (Job: (JobState?)j, Approval: a))));
        foreach (var (job, a) in approvals)
        {
            w.WriteStartObject();
            w.WriteString("id", a.Id);
            if (job is not null) w.WriteString("job_id", job.JobId.Value);
            JsonOut.WriteNullable(w, "step", a.StepId);
            w.WriteString("status", a.Status);
            w.WriteString("kind", a.Kind);
            w.WriteString("role", a.Role);
            w.WriteNumber("count", a.Count);
            w.WriteStartArray("approvers");
            foreach (var who in a.Approvers) w.WriteStringValue(who);
            w.WriteEndArray();
            if (a.ExpiresAt is { } exp) w.WriteString("expires_at", JsonOut.Timestamp(exp));
            if (a.Reason is { } reason) w.WriteString("reason", reason);
            if (a.Subject is { } subject) w.WriteString("subject", subject);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("usage");
        w.WriteNumber("tokens", state.Usage.Tokens);
        w.WriteNumber("cost", state.Usage.Cost);
        w.WriteNumber("tool_calls", state.Usage.ToolCalls);
        w.WriteEndObject();
        w.WriteStartObject("audit");
        w.WriteString("db", databasePath);
        w.WriteNumber("events", state.Seq);
        w.WriteString("head_hash", JsonOut.Hex(state.HeadHash));
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>One line per job for <c>ordo jobs --json</c>.</summary>
    public static void WriteJobRecord(Utf8JsonWriter w, JobRecord j)
    {
        w.WriteStartObject();
        WriteJobRecordFields(w, j);
        w.WriteEndObject();
    }

    /// <summary>The fields of <see cref="WriteJobRecord"/>, for an object that adds its own.</summary>
    public static void WriteJobRecordFields(Utf8JsonWriter w, JobRecord j)
    {
        w.WriteString("job_id", j.JobId.Value);
        w.WriteString("workflow", j.WorkflowRef);
        w.WriteString("tenant", j.Tenant);
        w.WriteString("status", j.Status.ToWire());
        w.WriteString("created_at", JsonOut.Timestamp(j.CreatedAt));
        w.WriteString("updated_at", JsonOut.Timestamp(j.UpdatedAt));
        JsonOut.WriteNullable(w, "parent_job_id", j.ParentJobId?.Value);
        w.WriteBoolean("shadow", j.Shadow);
        if (j.Reason is { } r) w.WriteString("reason", r);
    }

    public static string Value(JsonElement? value, int max = 100)
    {
        if (value is not { } v) return "";
        var text = v.GetRawText();
        return text.Length <= max ? text : text[..(max - 1)] + "…";
    }
}

/// <summary>One step in the tree of <see cref="JobView.StepRows"/>.</summary>
/// <param name="Step">The step (its latest visit in its scope).</param>
/// <param name="Depth">0 at top level; one more per enclosing branch or item.</param>
/// <param name="Patterns">The pattern visits this step coordinates (parallel, foreach, workflow, plan, supervise, board, auction), oldest first.</param>
/// <param name="BranchOf">
/// Set when the row is a parallel branch's result as the join sees it (<c>steps.BRANCH</c>): the parallel step's id.
/// The branch's own steps are listed under the parallel step, in the branch's scope.
/// </param>
internal sealed record StepRow(StepState Step, int Depth, IReadOnlyList<PatternState> Patterns, string? BranchOf)
{
    /// <summary>
    /// The status to show: the step's, except <c>cancelled</c> for a step left scheduled or running in a branch that was
    /// cancelled or failed (the runtime abandoned that work; a late result is discarded).
    /// </summary>
    public required string Status { get; init; }
}

/// <summary>Orders scopes and labels so that numbers compare as numbers (<c>each#1/2</c> before <c>each#1/10</c>).</summary>
internal sealed class ScopeComparer : IComparer<string>
{
    public static ScopeComparer Instance { get; } = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
            {
                var si = i;
                var sj = j;
                while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                var a = x[si..i].TrimStart('0');
                var b = y[sj..j].TrimStart('0');
                var c = a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b);
                if (c != 0) return c;
            }
            else
            {
                if (x[i] != y[j]) return x[i].CompareTo(y[j]);
                i++;
                j++;
            }
        }

        return (x.Length - i).CompareTo(y.Length - j);
    }
}

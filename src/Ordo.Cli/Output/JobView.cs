using System.Text.Json;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Output;

/// <summary>The summary of a job that <c>run</c> and <c>show</c> print.</summary>
internal static class JobView
{
    /// <summary>The steps that ran, in workflow order.</summary>
    public static IEnumerable<StepState> Steps(JobState state, WorkflowDefinition? workflow)
    {
        if (workflow is null)
        {
            return state.Steps.Values.OrderBy(s => s.Id, StringComparer.Ordinal);
        }

        var order = workflow.Steps.Select((s, i) => (s.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        return state.Steps.Values.OrderBy(s => order.GetValueOrDefault(s.Id, int.MaxValue)).ThenBy(s => s.Id, StringComparer.Ordinal);
    }

    /// <summary>The <c>ordo run --json</c> object.</summary>
    public static void WriteRunJson(Utf8JsonWriter w, JobState state, WorkflowDefinition? workflow, string databasePath)
    {
        w.WriteStartObject();
        w.WriteString("job_id", state.JobId.Value);
        w.WriteString("workflow", $"{state.Workflow}@{state.Version}");
        w.WriteString("status", state.Status.ToWire());
        JsonOut.WriteNullable(w, "reason", state.Reason);
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
        foreach (var s in Steps(state, workflow))
        {
            w.WriteStartObject();
            w.WriteString("id", s.Id);
            w.WriteString("status", s.Status);
            w.WriteNumber("attempts", s.Attempts);
            w.WriteNumber("duration_ms", Math.Round(s.DurationMs, 3));
            if (s.Visit > 1) w.WriteNumber("visits", s.Visit);
            if (s.Error is { } e && s.Status == "failed") w.WriteString("error", e);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("approvals");
        foreach (var a in state.Approvals.Values.OrderBy(a => a.RequestedAt))
        {
            w.WriteStartObject();
            w.WriteString("id", a.Id);
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
        w.WriteString("job_id", j.JobId.Value);
        w.WriteString("workflow", j.WorkflowRef);
        w.WriteString("tenant", j.Tenant);
        w.WriteString("status", j.Status.ToWire());
        w.WriteString("created_at", JsonOut.Timestamp(j.CreatedAt));
        w.WriteString("updated_at", JsonOut.Timestamp(j.UpdatedAt));
        JsonOut.WriteNullable(w, "parent_job_id", j.ParentJobId?.Value);
        if (j.Reason is { } r) w.WriteString("reason", r);
        w.WriteEndObject();
    }

    public static string Value(JsonElement? value, int max = 100)
    {
        if (value is not { } v) return "";
        var text = v.GetRawText();
        return text.Length <= max ? text : text[..(max - 1)] + "…";
    }
}

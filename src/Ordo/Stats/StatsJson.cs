using System.Globalization;
using System.Text.Json;

namespace Ordo.Stats;

/// <summary>The JSON of <c>ordo stats --json</c> and <c>GET /v1/stats</c>: one shape for both.</summary>
public static class StatsJson
{
    /// <summary>Writes a report.</summary>
    public static void Write(Utf8JsonWriter w, StatsReport report)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(report);
        w.WriteStartObject();
        // To the millisecond, as the text of ordo stats shows it: a window of "90s" or "500ms" starts within a second.
        w.WriteString("since", report.Since.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        w.WriteStartArray("workflows");
        foreach (var v in report.Workflows)
        {
            w.WriteStartObject();
            w.WriteString("workflow", v.Workflow);
            w.WriteNumber("version", v.Version);
            w.WriteNumber("jobs", v.Jobs);
            w.WriteNumber("completed", v.Completed);
            w.WriteNumber("failed", v.Failed);
            w.WriteNumber("cancelled", v.Cancelled);
            Number(w, "success_rate", v.SuccessRate);
            if (v.CostPerSuccess is { } cps) w.WriteNumber("cost_per_success", Math.Round(cps, 6)); else w.WriteNull("cost_per_success");
            w.WriteNumber("tokens", v.Tokens);
            w.WriteNumber("cost", Math.Round(v.Cost, 6));
            w.WriteStartObject("latency_ms");
            Number(w, "p50", v.LatencyP50Ms);
            Number(w, "p95", v.LatencyP95Ms);
            w.WriteEndObject();
            w.WriteNumber("retries_per_job", Math.Round(v.RetriesPerJob, 4));
            w.WriteNumber("gate_rejection_rate", Math.Round(v.GateRejectionRate, 4));
            w.WriteNumber("escalation_rate", Math.Round(v.EscalationRate, 4));
            w.WriteStartArray("agents");
            foreach (var a in v.Agents)
            {
                w.WriteStartObject();
                w.WriteString("agent", a.Agent);
                if (a.PromptHash.Length == 0) w.WriteNull("prompt_hash"); else w.WriteString("prompt_hash", a.PromptHash);
                w.WriteNumber("calls", a.Calls);
                w.WriteNumber("failures", a.Failures);
                w.WriteNumber("tokens", a.Tokens);
                w.WriteNumber("cost", Math.Round(a.Cost, 6));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v) w.WriteNumber(name, Math.Round(v, 4));
        else w.WriteNull(name);
    }
}

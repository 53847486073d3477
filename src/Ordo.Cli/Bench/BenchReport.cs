using System.Globalization;
using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>Puts the two sides together (ratios, targets) and prints the tables people read.</summary>
internal static class BenchReport
{
    public const string RatioMeaning =
        "every ratio is > 1 when Ordo is better: ordo/peer for throughput (*_per_sec, higher is better); peer/ordo for times (*_ms, *_us), " +
        "for w4_reexecuted_steps and for w5_ratio_1000_vs_10 (lower is better). The formula of each is under ratio_formula.";

    /// <summary>The object <c>ordo bench --peer DIR --json</c> prints: both sides from one run, ratios and targets.</summary>
    public static JsonObject Combine(JsonObject ordo, JsonObject peer)
    {
        var ratios = new JsonObject();
        var formulas = new JsonObject();
        foreach (var m in BenchMetric.All)
        {
            if (m.Ratio(ordo, peer) is { } r)
            {
                ratios[m.Key] = r;
                formulas[m.Key] = m.Formula;
            }
        }

        return new JsonObject
        {
            ["ordo"] = ordo,
            ["peer"] = peer,
            ["ratios"] = ratios,
            ["ratio_meaning"] = RatioMeaning,
            ["ratio_formula"] = formulas,
            ["targets"] = BenchTargets.Evaluate(ordo, peer),
        };
    }

    /// <summary>Writes the human tables: Ordo's figures, or both sides with ratios when <paramref name="peer"/> is given.</summary>
    public static void WriteHuman(TextWriter o, JsonObject ordo, JsonObject? peer)
    {
        var sqlite = ordo["sqlite"] as JsonObject;
        o.WriteLine($"ordo bench: {Text(ordo["engine"])} on {Text(ordo["dotnet"])}, {Text(ordo["cpus"])} cpus, SQLite {Text(sqlite?["sqlite_version"])} ({Text(sqlite?["journal_mode"])}, synchronous={Text(sqlite?["synchronous"])}), {(ordo["quick"]?.GetValue<bool>() == true ? "QUICK run (smoke test, not for comparison)" : "full run")}, {Text(ordo["total_wall_s"])} s");
        if (peer is not null)
        {
            var ps = peer["sqlite"] as JsonObject;
            o.WriteLine($"peer:       {Text(peer["engine"])} with {Text(peer["checkpointer"])} on node {Text(peer["node"])}, SQLite {Text(ps?["sqlite_version"])} ({Text(ps?["journal_mode"])}, synchronous={Text(ps?["synchronous"])}), {Text(peer["total_wall_s"])} s");
        }

        if (ordo["server"] is JsonObject server) WriteServer(o, server);
        var ran = (ordo["workloads"] as JsonArray)?.Select(w => w?.GetValue<string>()).ToList() ?? [];
        if (!ran.Any(w => w is not null && BenchSettings.AllWorkloads.Contains(w)))
        {
            WriteErrors(o, ordo, peer);
            return;
        }

        o.WriteLine();
        var width = BenchMetric.All.Max(m => m.Label.Length);
        if (peer is null)
        {
            o.WriteLine($"  {"figure".PadRight(width)}  {"ordo",12}");
            foreach (var m in BenchMetric.All)
            {
                o.WriteLine($"  {m.Label.PadRight(width)}  {Num(m.Read(ordo), m.Digits),12}");
            }
        }
        else
        {
            o.WriteLine($"  {"figure".PadRight(width)}  {"ordo",12}  {"peer",12}  {"ratio",7}  (ratio > 1: Ordo better)");
            foreach (var m in BenchMetric.All)
            {
                var ratio = m.Ratio(ordo, peer);
                o.WriteLine($"  {m.Label.PadRight(width)}  {Num(m.Read(ordo), m.Digits),12}  {Num(m.Read(peer), m.Digits),12}  {(ratio is { } r ? Num(r, 2) + "x" : "-"),7}  {m.Formula}");
            }
        }

        var detail = ordo["detail"] as JsonObject;
        o.WriteLine();
        o.WriteLine("  extra figures (ordo)");
        Extra(o, "W1 in-memory after JIT warm-up, steps/s", Num(BenchJson.Number(detail, "w1_inmemory_steady_steps_per_sec"), 1));
        Extra(o, "W1 durable after JIT warm-up, steps/s", Num(BenchJson.Number(detail, "w1_durable_steady_steps_per_sec"), 1));
        Extra(o, "W1 durable, synchronous=FULL, steps/s", Num(BenchJson.Number(detail, "w1_durable_full_steps_per_sec"), 1));
        Extra(o, "W3 concurrent, synchronous=FULL, steps/s", Num(BenchJson.Number(detail, "w3_full_steps_per_sec"), 1));
        Extra(o, "W3 workers", Num(BenchJson.Number(detail, "w3", "workers"), 0));
        if (detail?["storage"] is JsonObject storage)
        {
            Extra(o, $"storage of one {Num(BenchJson.Number(storage, "steps"), 0)}-step job",
                $"{Num(BenchJson.Number(storage, "grew_bytes"), 0)} bytes ({Num(BenchJson.Number(storage, "bytes_per_step"), 0)} B/step), {Num(BenchJson.Number(storage, "rows", "events"), 0)} event rows, {Num(BenchJson.Number(storage, "rows", "snapshots"), 0)} snapshot rows");
        }

        if (detail?["w1_durable"]?["per_invocation_rows"] is JsonObject rows)
        {
            Extra(o, "rows per W1 invocation", $"{Num(BenchJson.Number(rows, "events"), 0)} events ({Num(BenchJson.Number(rows, "event_payload_bytes_total"), 0)} payload bytes), {Num(BenchJson.Number(rows, "snapshots"), 0)} snapshots, 1 job row");
        }

        if (peer?["detail"] is JsonObject pd && BenchJson.Number(pd, "w1_no_checkpointer_steps_per_sec") is { } floor)
        {
            o.WriteLine();
            o.WriteLine("  extra figures (peer)");
            Extra(o, "W1 without a checkpointer, steps/s", Num(floor, 1));
        }

        o.WriteLine();
        o.WriteLine("  targets");
        foreach (var t in BenchTargets.Evaluate(ordo, peer).OfType<JsonObject>())
        {
            var met = t["met"] is JsonValue v ? (v.GetValue<bool>() ? "met" : "NOT MET") : "-";
            o.WriteLine($"  {met,-8} {Text(t["target"]),-62} {Text(t["value"])}");
        }

        WriteErrors(o, ordo, peer);
    }

    /// <summary>The table of the server workload (<c>ordo bench --server</c>).</summary>
    private static void WriteServer(TextWriter o, JsonObject s)
    {
        var v = s["verification"] as JsonObject;
        o.WriteLine();
        o.WriteLine($"  server under load: {Text(s["clients"])} clients for {Text(s["duration_s"])} s on {Text(s["url"])}, {Text(s["workers"])} workers, {Text(s["workflow"])}");
        Extra(o, "jobs accepted", $"{Num(BenchJson.Number(s, "accepted"), 0)} ({Num(BenchJson.Number(s, "accepted_per_sec"), 1)}/s)");
        Extra(o, "submit latency p50 / p95 / p99, ms",
            $"{Num(BenchJson.Number(s, "submit_latency_ms", "p50"), 2)} / {Num(BenchJson.Number(s, "submit_latency_ms", "p95"), 2)} / {Num(BenchJson.Number(s, "submit_latency_ms", "p99"), 2)} (max {Num(BenchJson.Number(s, "submit_latency_ms", "max"), 2)})");
        Extra(o, "jobs completed while submitting", $"{Num(BenchJson.Number(s, "completed_during_load"), 0)} ({Num(BenchJson.Number(s, "completed_per_sec_during_load"), 1)}/s)");
        Extra(o, "jobs completed in all", $"{Num(BenchJson.Number(s, "completed"), 0)} ({Num(BenchJson.Number(s, "completed_per_sec"), 1)}/s, {Num(BenchJson.Number(s, "steps_per_sec"), 0)} steps/s; drained {Num(BenchJson.Number(s, "drain_s"), 2)} s after)");
        Extra(o, "lost / duplicated / unacknowledged", $"{Num(BenchJson.Number(s, "lost"), 0)} / {Num(BenchJson.Number(v, "duplicated"), 0)} / {Num(BenchJson.Number(v, "unacknowledged"), 0)} (of {Num(BenchJson.Number(v, "listed"), 0)} listed)");
        Extra(o, "idempotent replays, outputs read back", $"{Num(BenchJson.Number(v, "idempotent_replays_same_job"), 0)}/{Num(BenchJson.Number(v, "idempotent_replays_checked"), 0)} same job, {Num(BenchJson.Number(v, "outputs_right"), 0)}/{Num(BenchJson.Number(v, "outputs_checked"), 0)} right");
        Extra(o, "requests other than accepted", (s["requests"] as JsonObject) is { Count: > 0 } r ? r.ToJsonString() : "none");
        Extra(o, "load average at start, at end", $"{Text(s["loadavg_at_start"])}, {Text(s["loadavg_at_end"])}");
    }

    private static void WriteErrors(TextWriter o, JsonObject ordo, JsonObject? peer)
    {
        foreach (var (side, obj) in new[] { ("ordo", ordo), ("peer", peer) })
        {
            if (obj?["errors"] is JsonObject errors)
            {
                o.WriteLine();
                foreach (var (w, e) in errors)
                {
                    o.WriteLine($"  {side} {w} FAILED: {Text(e).Split('\n')[0]}");
                }
            }
        }
    }

    private static void Extra(TextWriter o, string label, string value) => o.WriteLine($"  {label,-44}  {value}");

    private static string Num(double? v, int digits)
        => v is { } x ? x.ToString(digits == 0 ? "#,0" : "#,0." + new string('0', digits), CultureInfo.InvariantCulture) : "-";

    private static string Text(JsonNode? n) => n switch
    {
        null => "?",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => n.ToJsonString(),
    };

    /// <summary>
    /// The PostgreSQL figures compared: (figure, JSON path, higher is better, the peer's JSON path when another). The
    /// figures "a commit per step" are Ordo's with pure steps not written together, beside the peer's usual figure.
    /// </summary>
    private static readonly (string Label, string Key, bool HigherIsBetter, string PeerKey)[] PostgresFigures =
    [
        ("W1 durable steps/s", "w1_durable_steps_per_sec", true, "w1_durable_steps_per_sec"),
        ("W1 steps/s, a commit per step", "w1_one_commit_per_step_steps_per_sec", true, "w1_durable_steps_per_sec"),
        ("W2 fan-out 8 + join, ms", "w2_fanout8_join_ms", false, "w2_fanout8_join_ms"),
        ("W3 jobs/s (200 at once)", "w3_jobs_per_sec", true, "w3_jobs_per_sec"),
        ("W3 steps/s", "w3_steps_per_sec", true, "w3_steps_per_sec"),
        ("W3 steps/s, a commit per step", "w3_one_commit_per_step_steps_per_sec", true, "w3_steps_per_sec"),
        ("W4 resume ms", "w4_resume_ms", false, "w4_resume_ms"),
        ("W5 us/step, 1000 steps", "w5_per_step_us.1000", false, "w5_per_step_us.1000"),
    ];

    /// <summary>Adds the peer's PostgreSQL figures and the ratios (over 1: Ordo better) to the <c>postgres</c> object.</summary>
    public static void AddPostgresComparison(JsonObject postgres, JsonObject? peer)
    {
        ArgumentNullException.ThrowIfNull(postgres);
        if (peer is null) return;
        postgres["peer"] = peer;
        var ratios = new JsonObject();
        foreach (var (side, figures) in Sides(postgres))
        {
            var r = new JsonObject();
            foreach (var (_, key, higher, peerKey) in PostgresFigures)
            {
                if (Read(figures, key) is { } o && Read(peer, peerKey) is { } p && o > 0 && p > 0)
                {
                    r[key] = Math.Round(higher ? o / p : p / o, 2);
                }
            }

            ratios[side] = r;
        }

        postgres["ratios_vs_peer"] = ratios;
        postgres["ratio_meaning"] = "over 1: Ordo better (throughput: ordo / peer; latency: peer / ordo); the peer is LangGraph.js with PostgresSaver on the same server";
    }

    /// <summary>Writes the PostgreSQL table: in-process, 1-3 worker processes, and the peer when it ran.</summary>
    public static void WritePostgres(TextWriter o, JsonObject postgres)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(postgres);
        o.WriteLine();
        o.WriteLine($"PostgreSQL {Text(postgres["server_version"])} (synchronous_commit={Text(postgres["synchronous_commit"])}, fsync={Text(postgres["fsync"])}), {Text(postgres["store"])}, {Text(postgres["total_wall_s"])} s");
        var sides = Sides(postgres).ToList();
        var peer = postgres["peer"] as JsonObject;
        var width = PostgresFigures.Max(f => f.Label.Length);
        var header = $"  {"figure".PadRight(width)}" + string.Concat(sides.Select(s => $"  {s.Side,14}"));
        if (peer is not null) header += $"  {"peer (pg)",12}  ratio (in-process, 1, 2, 3 processes)";
        o.WriteLine(header);
        foreach (var (label, key, higher, peerKey) in PostgresFigures)
        {
            var line = $"  {label.PadRight(width)}" + string.Concat(sides.Select(s => $"  {Num(Read(s.Figures, key), 1),14}"));
            if (peer is not null)
            {
                var p = Read(peer, peerKey);
                line += $"  {Num(p, 1),12}  " + string.Join(", ", sides.Select(s => Read(s.Figures, key) is { } v && p is { } pv && v > 0 && pv > 0 ? Num(higher ? v / pv : pv / v, 2) + "x" : "-"));
            }

            o.WriteLine(line);
        }

        if (postgres["in_process"]?["storage"] is JsonObject storage)
        {
            o.WriteLine($"  one {Text(storage["steps"])}-step job in PostgreSQL: {Text(storage["grew_bytes"])} bytes ({Text(storage["bytes_per_step"])} per step; budget {Text(storage["budget_bytes"])})");
        }

        if (postgres["in_process"]?["stats"] is JsonObject stats)
        {
            o.WriteLine($"  ordo stats on {Text(stats["jobs"])} jobs in PostgreSQL: at most {Text(stats["slowest_ms"])} ms (bound {Text(stats["bound_ms"])} ms)");
        }
    }

    private static IEnumerable<(string Side, JsonObject Figures)> Sides(JsonObject postgres)
    {
        if (postgres["in_process"] is JsonObject inProcess) yield return ("in-process", inProcess);
        if (postgres["worker_processes"] is JsonObject processes)
        {
            foreach (var (n, figures) in processes)
            {
                if (figures is JsonObject f) yield return ($"{n} worker proc", f);
            }
        }
    }

    private static double? Read(JsonObject o, string path)
    {
        JsonNode? node = o;
        foreach (var part in path.Split('.')) node = node?[part];
        return node is JsonValue v && v.TryGetValue<double>(out var d) ? d : node is JsonValue l && l.TryGetValue<long>(out var n) ? n : null;
    }
}

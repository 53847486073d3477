using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>One requested figure of the benchmark JSON, read the same way from Ordo's and the peer's object.</summary>
/// <param name="Key">The field (<c>w5_per_step_us.1000</c> for a nested one).</param>
/// <param name="Label">What it is, for people.</param>
/// <param name="HigherIsBetter">Throughput (true) or a time or a count of repeated work (false).</param>
/// <param name="Digits">Decimals shown.</param>
internal sealed record BenchMetric(string Key, string Label, bool HigherIsBetter, int Digits)
{
    /// <summary>The requested fields, in the order of the peer's README.</summary>
    public static readonly IReadOnlyList<BenchMetric> All =
    [
        new("w1_inmemory_steps_per_sec", "W1 in-memory, steps/s", true, 1),
        new("w1_durable_steps_per_sec", "W1 durable, steps/s", true, 1),
        new("w2_fanout8_join_ms", "W2 fan-out 8 + join, ms", false, 3),
        new("w3_jobs_per_sec", "W3 concurrent, jobs/s", true, 1),
        new("w3_steps_per_sec", "W3 concurrent, steps/s", true, 1),
        new("w4_reexecuted_steps", "W4 steps re-run on resume", false, 0),
        new("w4_resume_ms", "W4 resume, ms", false, 3),
        new("w5_per_step_us.10", "W5 10 steps, us/step", false, 1),
        new("w5_per_step_us.100", "W5 100 steps, us/step", false, 1),
        new("w5_per_step_us.1000", "W5 1000 steps, us/step", false, 1),
        new("w5_ratio_1000_vs_10", "W5 ratio 1000 vs 10", false, 2),
    ];

    /// <summary>The ratio's formula: the one that is above 1 when Ordo is better.</summary>
    public string Formula => HigherIsBetter ? "ordo/peer" : "peer/ordo";

    public double? Read(JsonObject? o) => BenchJson.Number(o, Key.Split('.', 2));

    /// <summary>The ratio, above 1 when Ordo is better; null when either side is missing or zero.</summary>
    public double? Ratio(JsonObject ordo, JsonObject peer)
    {
        if (Read(ordo) is not { } o || Read(peer) is not { } p || o == 0 || p == 0) return null;
        return BenchStats.Round(HigherIsBetter ? o / p : p / o, 2);
    }
}

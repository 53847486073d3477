using System.Globalization;
using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>The targets Ordo is held to on the benchmark machine, each judged met, not met, or not measured in this run.</summary>
internal static class BenchTargets
{
    /// <summary>Judges every target; those that compare with the peer need <paramref name="peer"/>.</summary>
    public static JsonArray Evaluate(JsonObject ordo, JsonObject? peer)
    {
        var list = new JsonArray();
        Ratio(list, "w1_durable_10x", "durable W1 >= 10x the peer's steps/s", "w1_durable_steps_per_sec", ordo, peer);
        Ratio(list, "w1_inmemory_10x", "in-memory W1 >= 10x the peer's steps/s", "w1_inmemory_steps_per_sec", ordo, peer);
        Add(list, "w2_le_1ms", "W2 <= 1 ms", Read(ordo, "w2_fanout8_join_ms"), v => v <= 1.0, v => Fmt(v, "0.000") + " ms");
        Ratio(list, "w3_10x", "W3 steps/s >= 10x the peer's", "w3_steps_per_sec", ordo, peer);
        Add(list, "w4_exactly_6", "W4 re-runs exactly 6 steps", Read(ordo, "w4_reexecuted_steps"), v => v == 6, v => Fmt(v, "0") + " steps");
        Add(list, "w5_le_1_3", "W5 per-step time at 1,000 steps within 1.3x of that at 10", Read(ordo, "w5_ratio_1000_vs_10"), v => v <= 1.3, v => Fmt(v, "0.00") + "x");
        Add(list, "storage_lt_1mb", "a 1,000-step job writes under 1 MB (1,000,000 bytes)", Read(ordo, "detail", "storage", "grew_bytes"), v => v < OrdoBench.StorageBudgetBytes, v => Fmt(v, "#,0") + " bytes");
        return list;
    }

    private static void Ratio(JsonArray list, string id, string text, string field, JsonObject ordo, JsonObject? peer)
    {
        var metric = BenchMetric.All.Single(m => m.Key == field);
        var ratio = peer is null ? null : metric.Ratio(ordo, peer);
        Add(list, id, text, ratio, v => v >= 10, v => Fmt(v, "0.00") + "x the peer", peer is null ? "needs --peer" : null);
    }

    private static void Add(JsonArray list, string id, string text, double? value, Func<double, bool> met, Func<double, string> show, string? missing = null)
    {
        list.Add(new JsonObject
        {
            ["id"] = id,
            ["target"] = text,
            ["value"] = value is { } v ? show(v) : missing ?? "not measured",
            ["met"] = value is { } x ? met(x) : null,
        });
    }

    private static double? Read(JsonObject o, params string[] path) => BenchJson.Number(o, path);

    private static string Fmt(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}

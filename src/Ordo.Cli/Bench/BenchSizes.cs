using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

/// <summary>
/// How much each workload does: the same numbers as the LangGraph.js peer harness (<c>bench.mjs</c>, object <c>P</c>),
/// so that the two sides measure the same thing. <c>--quick</c> divides them by about five, like the peer.
/// </summary>
internal sealed record BenchSizes
{
    /// <summary>Nodes in the W1/W3/W4 chain.</summary>
    public const int Chain = 10;

    /// <summary>Branches of the W2 fan-out.</summary>
    public const int Fan = 8;

    public required int W1MemN { get; init; }
    public required int W1DurN { get; init; }
    public required int W1Reps { get; init; }

    /// <summary>
    /// Pairs of timed W1 durable passes, one with the audit log off and one with it on (the audit workload): many short
    /// pairs, so that the median of their ratios is not moved by the few passes another process or a WAL checkpoint slows.
    /// </summary>
    public int AuditPairs { get; init; } = 48;

    /// <summary>Invocations of one timed pass of the audit workload.</summary>
    public int AuditPassN { get; init; } = 50;

    /// <summary>Jobs in the store <c>ordo audit verify --checkpoint</c> checks (the audit workload).</summary>
    public int AuditJobs { get; init; } = 100_000;

    public required int W2N { get; init; }
    public required int W2Warm { get; init; }
    public required int W3Jobs { get; init; }
    public required IReadOnlyList<int> W5Lengths { get; init; }
    public required int W5Reps { get; init; }

    /// <summary>Continuous invocations before the steady-state W1 passes (an extra figure, not the peer's rule).</summary>
    public TimeSpan SteadyWarmup { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The length of the chain whose storage cost is measured.</summary>
    public int StorageChain { get; init; } = 1000;

    public static BenchSizes For(bool quick) => quick
        ? new BenchSizes { W1MemN = 40, W1DurN = 40, W1Reps = 1, AuditPairs = 4, AuditPassN = 20, AuditJobs = 10_000, W2N = 6, W2Warm = 2, W3Jobs = 40, W5Lengths = [10, 100, 1000], W5Reps = 1, SteadyWarmup = TimeSpan.FromSeconds(1) }
        : new BenchSizes { W1MemN = 200, W1DurN = 200, W1Reps = 3, W2N = 30, W2Warm = 5, W3Jobs = 200, W5Lengths = [10, 100, 1000], W5Reps = 3 };

    /// <summary>The sizes as the peer writes them under <c>detail.params</c>.</summary>
    public JsonObject ToJson() => new()
    {
        ["w1MemN"] = W1MemN,
        ["w1DurN"] = W1DurN,
        ["w1Reps"] = W1Reps,
        ["w2N"] = W2N,
        ["w2Warm"] = W2Warm,
        ["w3Jobs"] = W3Jobs,
        ["w5Lengths"] = new JsonArray(W5Lengths.Select(n => (JsonNode)n).ToArray()),
        ["w5Reps"] = W5Reps,
        ["storageChain"] = StorageChain,
        ["steadyWarmupSeconds"] = SteadyWarmup.TotalSeconds,
    };
}

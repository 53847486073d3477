namespace Ordo.Cli.Bench;

/// <summary>What <c>ordo bench</c> was asked to do.</summary>
internal sealed record BenchSettings
{
    /// <summary>The workloads, in the order they run: the peer's W1–W5, then Ordo's own: coordination patterns and the overhead per model call.</summary>
    public static readonly IReadOnlyList<string> AllWorkloads = ["w1", "w2", "w3", "w4", "w5", "patterns", "models"];

    /// <summary>
    /// Workloads that run only when named (<c>--server</c> or <c>--workload server</c>): a load test of <c>ordo serve</c> over
    /// HTTP, which lasts a set time rather than a set amount of work and has no peer counterpart; <c>audit</c>, the cost
    /// of the store's audit log (W1 with it off and on, and verifying a checkpoint over 100,000 jobs); and <c>stats</c>,
    /// <c>ordo stats</c> on a store of 100,000 jobs (which takes a while to fill).
    /// </summary>
    public static readonly IReadOnlyList<string> OnDemandWorkloads = ["server", "audit", "stats"];

    /// <summary>How long the server workload submits jobs: 60 s, or 10 s with <c>--quick</c>.</summary>
    public static readonly TimeSpan DefaultServerDuration = TimeSpan.FromSeconds(60);

    /// <summary>How long the server workload submits jobs with <c>--quick</c>.</summary>
    public static readonly TimeSpan QuickServerDuration = TimeSpan.FromSeconds(10);

    /// <summary>Concurrent HTTP clients of the server workload.</summary>
    public const int DefaultServerClients = 16;

    /// <summary>The workloads the LangGraph.js peer harness also runs.</summary>
    public static readonly IReadOnlyList<string> PeerWorkloads = ["w1", "w2", "w3", "w4", "w5"];

    /// <summary>
    /// Workers of the W3 runtime. Default: 128, the best median of 2, 8, 32, 64, 128 and 200 on the 2-core machine of
    /// docs/benchmarks.md: workers are jobs in flight, not threads, and more of them in flight means more step commits share
    /// one SQLite transaction.
    /// </summary>
    public const int DefaultW3Workers = 128;

    /// <summary>Smaller sizes: a smoke run whose figures are not for comparison.</summary>
    public bool Quick { get; init; }

    /// <summary>The selected workloads (a subset of <see cref="AllWorkloads"/>, in that order).</summary>
    public IReadOnlyList<string> Workloads { get; init; } = AllWorkloads;

    /// <summary>Workers of the W3 runtime; null uses <see cref="DefaultW3Workers"/>.</summary>
    public int? W3Workers { get; init; }

    /// <summary>How long the server workload submits jobs; null: <see cref="DefaultServerDuration"/> (<see cref="QuickServerDuration"/> when quick).</summary>
    public TimeSpan? ServerDuration { get; init; }

    /// <summary>Concurrent HTTP clients of the server workload; null: <see cref="DefaultServerClients"/>.</summary>
    public int? ServerClients { get; init; }

    /// <summary>The server's workers; null: the default of <c>ordo serve</c> (the number of cores).</summary>
    public int? ServerWorkers { get; init; }

    /// <summary>Parses <c>--workload w1,w3</c>; null or empty selects all.</summary>
    /// <exception cref="CliInputException">A name is unknown.</exception>
    public static IReadOnlyList<string> ParseWorkloads(IEnumerable<string>? values)
    {
        var names = (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(v => v.ToLowerInvariant()).ToList();
        if (names.Count == 0) return AllWorkloads;
        var known = AllWorkloads.Concat(OnDemandWorkloads).ToList();
        foreach (var n in names)
        {
            if (!known.Contains(n))
            {
                throw new CliInputException($"--workload: unknown workload '{n}' (known: {string.Join(",", known)})");
            }
        }

        return [.. known.Where(names.Contains)];
    }
}

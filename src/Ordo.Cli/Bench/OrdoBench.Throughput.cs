using System.Diagnostics;
using System.Text.Json.Nodes;
using Ordo.Sqlite;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>
    /// W1: the 10-step chain, N invocations one after another. One untimed warm-up pass of N, then timed repetitions;
    /// steps/s = N*10 / elapsed, median reported. (a) in-memory store, (b) SQLite store; and, in detail only, (c) SQLite
    /// with <see cref="SqliteDurability.Full"/> (an fsync per commit).
    /// </summary>
    private async Task W1Async(JsonObject output, JsonObject detail, CancellationToken stop)
    {
        await using (var host = await BenchHost.StartAsync(new InMemoryOrdoStore(), DefaultWorkers, stop).ConfigureAwait(false))
        {
            var (samples, _) = await ChainSeriesAsync(host, "w1 in-memory", _p.W1MemN, _p.W1Reps).ConfigureAwait(false);
            output["w1_inmemory_steps_per_sec"] = BenchStats.Round(BenchStats.Median(samples), 1);
            detail["w1_inmemory"] = new JsonObject
            {
                ["store"] = "InMemoryOrdoStore",
                ["workers"] = host.Workers,
                ["invocations_per_rep"] = _p.W1MemN,
                ["steps_per_rep"] = _p.W1MemN * BenchSizes.Chain,
                ["samples_steps_per_sec"] = Array(samples, 1),
            };
            await SteadyAsync(host, "w1 in-memory", _p.W1MemN, detail, "w1_inmemory").ConfigureAwait(false);
        }

        foreach (var durability in new[] { SqliteDurability.Normal, SqliteDurability.Full })
        {
            var full = durability == SqliteDurability.Full;
            using var db = BenchDatabase.Create(full ? "w1-full" : "w1");
            await using var host = await BenchHost.StartAsync(db.OpenStore(durability), DefaultWorkers, stop).ConfigureAwait(false);
            var (samples, first) = await ChainSeriesAsync(host, full ? "w1 durable (full)" : "w1 durable", _p.W1DurN, _p.W1Reps).ConfigureAwait(false);
            var median = BenchStats.Round(BenchStats.Median(samples), 1);
            using var c = db.OpenInspector();
            var d = new JsonObject
            {
                ["store"] = $"SqliteOrdoStore, durability {durability}",
                ["workers"] = host.Workers,
                ["invocations_per_rep"] = _p.W1DurN,
                ["steps_per_rep"] = _p.W1DurN * BenchSizes.Chain,
                ["samples_steps_per_sec"] = Array(samples, 1),
                ["per_invocation_rows"] = SqliteFacts.JobRows(c, first),
                ["sqlite"] = SqliteFacts.Info(db, Sqlite(host)),
            };
            if (full)
            {
                detail["w1_durable_full_steps_per_sec"] = median;
                detail["w1_durable_full"] = d;
            }
            else
            {
                output["w1_durable_steps_per_sec"] = median;
                detail["w1_durable"] = d;
                await SteadyAsync(host, "w1 durable", _p.W1DurN, detail, "w1_durable").ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Not a requested figure: W1 again after a time-based warm-up (<see cref="BenchSizes.SteadyWarmup"/> of continuous
    /// invocations on the same runtime), so that .NET's tiered JIT has reached its steady state. The requested figures
    /// follow the peer's rule (a warm-up pass of N invocations), which on this runtime ends while methods are still being
    /// recompiled; this one shows how far that moves the result.
    /// </summary>
    private async Task SteadyAsync(BenchHost host, string label, int n, JsonObject detail, string key)
    {
        var probe = new StepProbe();
        var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
        var workflow = BenchWorkflows.Chain("bench-w1", ids, probe);
        Log($"{label}: {_p.SteadyWarmup.TotalSeconds:0} s of continuous invocations (JIT steady state), then {_p.W1Reps} timed passes");
        var warm = Stopwatch.StartNew();
        var invocations = 0;
        while (warm.Elapsed < _p.SteadyWarmup)
        {
            BenchWorkflows.Expect(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), ids, label);
            invocations++;
        }

        var samples = new List<double>();
        for (var r = 0; r < _p.W1Reps; r++)
        {
            var (seconds, _) = await SequentialAsync(host, workflow, ids, probe, n, label).ConfigureAwait(false);
            samples.Add(n * ids.Count / seconds);
        }

        var median = BenchStats.Round(BenchStats.Median(samples), 1);
        detail[$"{key}_steady_steps_per_sec"] = median;
        detail[$"{key}_steady"] = new JsonObject
        {
            ["note"] = "not a requested figure: the same passes after a time-based warm-up, once the JIT has reached its steady state",
            ["warmup_s"] = BenchStats.Round(warm.Elapsed.TotalSeconds, 1),
            ["warmup_invocations"] = invocations,
            ["invocations_per_rep"] = n,
            ["samples_steps_per_sec"] = Array(samples, 1),
        };
        Log($"{label} after warm-up: median {F0(median)} steps/s");
    }

    /// <summary>
    /// W2: fan, p1..p8 as the branches of a parallel step, join (10 user steps), durable. Untimed warm-up invocations,
    /// then each invocation timed on its own; the median in ms.
    /// </summary>
    private async Task W2Async(JsonObject output, JsonObject detail, CancellationToken stop)
    {
        using var db = BenchDatabase.Create("w2");
        await using var host = await BenchHost.StartAsync(db.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
        var probe = new StepProbe();
        var ids = BenchWorkflows.FanIds();
        var workflow = BenchWorkflows.FanOut("bench-w2", probe);
        Log($"w2: warm-up {_p.W2Warm} invocations");
        for (var k = 0; k < _p.W2Warm; k++)
        {
            BenchWorkflows.ExpectFanOut(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), "w2");
        }

        probe.Reset();
        var ms = new List<double>();
        JobId first = default;
        var transactions = Sqlite(host).TransactionsCommitted;
        for (var k = 0; k < _p.W2N; k++)
        {
            var t0 = Stopwatch.GetTimestamp();
            var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
            ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            BenchWorkflows.ExpectFanOut(state, "w2");
            if (k == 0) first = state.JobId;
        }

        if (probe.Executions != _p.W2N * ids.Count || probe.JoinRuns != _p.W2N)
        {
            throw new BenchFailedException($"w2: {probe.Executions} step runs / {probe.JoinRuns} joins, expected {_p.W2N * ids.Count} / {_p.W2N}");
        }

        transactions = Sqlite(host).TransactionsCommitted - transactions;
        var median = BenchStats.Median(ms);
        output["w2_fanout8_join_ms"] = BenchStats.Round(median, 3);
        using var c = db.OpenInspector();
        detail["w2"] = new JsonObject
        {
            ["shape"] = "fan -> fanout (parallel: p1..p8, join_policy all) -> join; the branches run concurrently on the runtime's workers",
            ["workers"] = host.Workers,
            ["invocations"] = _p.W2N,
            ["nodes_per_invocation"] = ids.Count,
            ["min_ms"] = BenchStats.Round(ms.Min(), 3),
            ["max_ms"] = BenchStats.Round(ms.Max(), 3),
            ["samples_ms"] = Array(ms, 3),
            ["join_runs_per_invocation"] = (double)probe.JoinRuns / _p.W2N,
            ["write_transactions_per_invocation"] = BenchStats.Round((double)transactions / _p.W2N, 2),
            ["per_invocation_rows"] = SqliteFacts.JobRows(c, first),
            ["sqlite"] = SqliteFacts.Info(db, Sqlite(host)),
        };
        Log($"w2: median {F2(median)} ms over {_p.W2N}");
    }

    /// <summary>
    /// W3: J invocations of the W1 chain at once (submitted together, then waited for together) on one durable store,
    /// with a runtime whose workers are running. One untimed warm-up batch, then one timed batch. In detail only: the
    /// same with <see cref="SqliteDurability.Full"/>.
    /// </summary>
    private async Task W3Async(JsonObject output, JsonObject detail, CancellationToken stop)
    {
        foreach (var durability in new[] { SqliteDurability.Normal, SqliteDurability.Full })
        {
            var full = durability == SqliteDurability.Full;
            var tag = full ? "w3 (full)" : "w3";
            using var db = BenchDatabase.Create(full ? "w3-full" : "w3");
            await using var host = await BenchHost.StartAsync(db.OpenStore(durability), W3Workers, stop).ConfigureAwait(false);
            var probe = new StepProbe();
            var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
            var workflow = BenchWorkflows.Chain("bench-w3", ids, probe);
            var jobs = _p.W3Jobs;
            Log($"{tag}: warm-up batch of {jobs} concurrent, {host.Workers} workers");
            await BatchAsync(host, workflow, ids, jobs, tag).ConfigureAwait(false);
            probe.Reset();
            var seconds = await BatchAsync(host, workflow, ids, jobs, tag).ConfigureAwait(false);
            if (probe.Executions != jobs * ids.Count)
            {
                throw new BenchFailedException($"{tag}: {probe.Executions} step runs, expected {jobs * ids.Count}");
            }

            var jobsPerSec = BenchStats.Round(jobs / seconds, 1);
            var stepsPerSec = BenchStats.Round(jobs * ids.Count / seconds, 1);
            var d = new JsonObject
            {
                ["store"] = $"SqliteOrdoStore, durability {durability}",
                ["concurrent_jobs"] = jobs,
                ["workers"] = host.Workers,
                ["elapsed_s"] = BenchStats.Round(seconds, 3),
                ["jobs_per_sec"] = jobsPerSec,
                ["steps_per_sec"] = stepsPerSec,
                ["sqlite"] = SqliteFacts.Info(db, Sqlite(host)),
            };
            if (full)
            {
                detail["w3_full_steps_per_sec"] = stepsPerSec;
                detail["w3_full"] = d;
            }
            else
            {
                output["w3_jobs_per_sec"] = jobsPerSec;
                output["w3_steps_per_sec"] = stepsPerSec;
                detail["w3"] = d;
            }

            Log($"{tag}: {jobs} concurrent in {F2(seconds)} s, {F0(stepsPerSec)} steps/s");
        }
    }

    /// <summary>A warm-up pass of <paramref name="n"/> chain invocations, then <paramref name="reps"/> timed passes; returns steps/s per pass and the first timed job.</summary>
    private async Task<(List<double> Samples, JobId FirstTimed)> ChainSeriesAsync(BenchHost host, string label, int n, int reps)
    {
        var probe = new StepProbe();
        var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
        var workflow = BenchWorkflows.Chain("bench-w1", ids, probe);
        Log($"{label}: warm-up {n} invocations");
        await SequentialAsync(host, workflow, ids, probe, n, label).ConfigureAwait(false);
        var samples = new List<double>();
        JobId first = default;
        for (var r = 0; r < reps; r++)
        {
            var (seconds, firstJob) = await SequentialAsync(host, workflow, ids, probe, n, label).ConfigureAwait(false);
            if (r == 0) first = firstJob;
            samples.Add(n * ids.Count / seconds);
            Log($"{label} rep {r + 1}/{reps}: {F2(seconds)} s, {F0(samples[^1])} steps/s");
        }

        return (samples, first);
    }

    /// <summary>Runs <paramref name="count"/> invocations one after another, each awaited; returns the elapsed seconds and the first job.</summary>
    private static async Task<(double Seconds, JobId First)> SequentialAsync(BenchHost host, WorkflowDefinition workflow, IReadOnlyList<string> ids, StepProbe probe, int count, string label)
    {
        probe.Reset();
        JobId first = default;
        var t0 = Stopwatch.GetTimestamp();
        for (var k = 0; k < count; k++)
        {
            var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
            BenchWorkflows.Expect(state, ids, label);
            if (k == 0) first = state.JobId;
        }

        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        if (probe.Executions != (long)count * ids.Count)
        {
            throw new BenchFailedException($"{label}: {probe.Executions} step runs, expected {count * ids.Count}");
        }

        return (seconds, first);
    }

    /// <summary>Submits <paramref name="jobs"/> invocations at once and waits for all of them; returns the elapsed seconds.</summary>
    private static async Task<double> BatchAsync(BenchHost host, WorkflowDefinition workflow, IReadOnlyList<string> ids, int jobs, string label)
    {
        var t0 = Stopwatch.GetTimestamp();
        var all = new Task[jobs];
        for (var k = 0; k < jobs; k++)
        {
            all[k] = OneAsync();
        }

        await Task.WhenAll(all).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;

        async Task OneAsync() => BenchWorkflows.Expect(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), ids, label);
    }
}

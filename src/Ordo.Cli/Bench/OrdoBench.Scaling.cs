using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>The most a 1,000-step job may add to the database.</summary>
    public const long StorageBudgetBytes = 1_000_000;

    /// <summary>
    /// W5: durable chains of 10, 100 and 1000 distinct steps. Per length: a fresh database, the workflow built once (not
    /// timed), one untimed warm-up invocation, then timed invocations, one per repetition; µs/step = elapsed / n, median.
    /// Then the storage cost of one 1,000-step job (under <c>detail.storage</c>).
    /// </summary>
    private async Task W5Async(JsonObject output, JsonObject detail, CancellationToken stop)
    {
        var perStep = new JsonObject();
        var d = new JsonObject();
        output["w5_per_step_us"] = perStep;
        detail["w5"] = d;
        foreach (var n in _p.W5Lengths)
        {
            var key = n.ToString(CultureInfo.InvariantCulture);
            using var db = BenchDatabase.Create($"w5-{key}");
            await using var host = await BenchHost.StartAsync(db.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
            var probe = new StepProbe();
            var ids = BenchWorkflows.ChainIds(n);
            var tb = Stopwatch.GetTimestamp();
            var workflow = BenchWorkflows.Chain($"bench-w5-{key}", ids, probe);
            var buildMs = Stopwatch.GetElapsedTime(tb).TotalMilliseconds;
            Log($"w5 n={n}: warm-up");
            BenchWorkflows.Expect(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), ids, $"w5-{n}");
            var samples = new List<double>();
            JobId first = default;
            for (var r = 0; r < _p.W5Reps; r++)
            {
                var t0 = Stopwatch.GetTimestamp();
                var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                BenchWorkflows.Expect(state, ids, $"w5-{n}");
                if (r == 0) first = state.JobId;
                samples.Add(ms * 1000 / n);
                Log($"w5 n={n} rep {r + 1}/{_p.W5Reps}: {ms.ToString("0.0", CultureInfo.InvariantCulture)} ms, {samples[^1].ToString("0.0", CultureInfo.InvariantCulture)} us/step");
            }

            perStep[key] = BenchStats.Round(BenchStats.Median(samples), 1);
            using var c = db.OpenInspector();
            d[key] = new JsonObject
            {
                ["build_ms"] = BenchStats.Round(buildMs, 1),
                ["samples_us_per_step"] = Array(samples, 1),
                ["per_invocation_rows"] = SqliteFacts.JobRows(c, first),
                ["sqlite"] = SqliteFacts.Info(db, Sqlite(host)),
            };
        }

        if (perStep["10"] is { } ten && perStep["1000"] is { } thousand)
        {
            output["w5_ratio_1000_vs_10"] = BenchStats.Round(thousand.GetValue<double>() / ten.GetValue<double>(), 2);
        }

        detail["storage"] = await StorageAsync(stop).ConfigureAwait(false);
    }

    /// <summary>
    /// What one 1,000-step job costs on disk: a fresh database, the WAL checkpointed (TRUNCATE) before and after the job
    /// (and the sealing of its audit leaves), so the growth of the main file is everything the job left behind, including
    /// its definition.
    /// </summary>
    private async Task<JsonObject> StorageAsync(CancellationToken stop)
    {
        var n = _p.StorageChain;
        using var db = BenchDatabase.Create("storage");
        await using var host = await BenchHost.StartAsync(db.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
        var ids = BenchWorkflows.ChainIds(n);
        var workflow = BenchWorkflows.Chain("bench-storage", ids, new StepProbe());
        long before, walAfterJob, after;
        JsonObject rows;
        using (var c = db.OpenInspector())
        {
            await SqliteFacts.CheckpointTruncateAsync(c).ConfigureAwait(false);
            before = db.FileBytes;
        }

        var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
        BenchWorkflows.Expect(state, ids, "storage");
        // The job's audit leaves are sealed after its commits: sealed now, so that what is measured includes them.
        await host.Store.GetAuditLogSizeAsync(stop).ConfigureAwait(false);
        walAfterJob = db.WalBytes;
        using (var c = db.OpenInspector())
        {
            await SqliteFacts.CheckpointTruncateAsync(c).ConfigureAwait(false);
            after = db.FileBytes;
            rows = SqliteFacts.JobRows(c, state.JobId);
            rows["page_size"] = SqliteFacts.Scalar(c, "PRAGMA page_size");
            rows["freelist_pages"] = SqliteFacts.Scalar(c, "PRAGMA freelist_count");
        }

        var grew = after - before;
        Log($"storage: one {n}-step job grew the database by {grew:N0} bytes ({(double)grew / n:0} bytes/step)");
        return new JsonObject
        {
            ["steps"] = n,
            ["db_bytes_before"] = before,
            ["db_bytes_after"] = after,
            ["grew_bytes"] = grew,
            ["bytes_per_step"] = BenchStats.Round((double)grew / n, 1),
            ["budget_bytes"] = StorageBudgetBytes,
            ["under_budget"] = grew < StorageBudgetBytes,
            ["wal_bytes_before_checkpoint"] = walAfterJob,
            ["rows"] = rows,
            ["method"] = "fresh database; PRAGMA wal_checkpoint(TRUNCATE) before and after one job; growth of the main file (the WAL is empty at both points)",
        };
    }
}

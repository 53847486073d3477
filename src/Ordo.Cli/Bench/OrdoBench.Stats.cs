using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>Jobs in the store the stats workload queries: 100,000 (10,000 with --quick).</summary>
    private int StatsJobs => settings.Quick ? 10_000 : 100_000;

    /// <summary>The bound <c>ordo stats</c> must answer within, on the full store.</summary>
    private static readonly TimeSpan StatsBound = TimeSpan.FromSeconds(1);

    /// <summary>
    /// <c>ordo stats</c> on a store of 100,000 jobs: 5 workflows of 2 versions each, 3 tenants, created over the last 7 days,
    /// each submitted and ended through the store's own commits (a model call of an agent with one of two prompts, a
    /// retried failure in one job of 7, a rejection in one of 11, an end in completed, failed or cancelled), so the summary
    /// rows are those commits kept. Then the command itself (in this process: open the store, sum, print JSON) runs 5 times
    /// over the last 24 hours and 5 times over all 7 days; the workload fails when a run takes longer than 1 s. With
    /// <c>--postgres</c>, the same again on PostgreSQL.
    /// </summary>
    private async Task StatsAsync(JsonObject output, CancellationToken stop)
    {
        using var db = BenchDatabase.Create("stats");
        var result = await StatsOnAsync(() => db.OpenStore(), ["--db", db.Path], "stats", stop).ConfigureAwait(false);
        result["db_mb"] = BenchStats.Round(new FileInfo(db.Path).Length / (1024.0 * 1024.0), 1);
        output["stats"] = result;
        ThrowIfOverStatsBound(result);
    }

    /// <summary>The stats workload on PostgreSQL (<c>--postgres</c>): the same store, filled the same way, in a fresh schema.</summary>
    private async Task PgStatsAsync(string cs, JsonObject o, CancellationToken stop)
    {
        await using var schema = await BenchSchema.CreateAsync(cs, "stats", stop).ConfigureAwait(false);
        var result = await StatsOnAsync(() => schema.OpenStore(), ["--postgres", schema.ConnectionString], "postgres stats", stop).ConfigureAwait(false);
        result["db_mb"] = BenchStats.Round(await schema.BytesAsync(stop).ConfigureAwait(false) / (1024.0 * 1024.0), 1);
        o["stats"] = result;
        ThrowIfOverStatsBound(result);
    }

    /// <summary>Fills the store <paramref name="open"/> gives with the stats jobs, then times <c>ordo stats</c> on it (the store named by <paramref name="storeArgs"/>).</summary>
    private async Task<JsonObject> StatsOnAsync(Func<IOrdoStore> open, string[] storeArgs, string label, CancellationToken stop)
    {
        var now = TimeProvider.System.GetUtcNow();
        var fill = Stopwatch.StartNew();
        var store = open();
        try
        {
            await store.InitializeAsync(stop).ConfigureAwait(false);
            const int Batch = 500;
            for (var start = 0; start < StatsJobs; start += Batch)
            {
                var count = Math.Min(Batch, StatsJobs - start);
                var jobs = Enumerable.Range(start, count).Select(i => StatsJob(i, now)).ToList();
                await Task.WhenAll(jobs.Select(j => store.SubmitAsync(j.Job, stop).AsTask())).ConfigureAwait(false);
                var results = await Task.WhenAll(store.CommitInOrder([.. jobs.Select(j => j.End)], stop)).ConfigureAwait(false);
                if (results.Any(r => r.Outcome != CommitOutcome.Committed)) throw new BenchFailedException($"{label}: a commit of the filling was refused");
                if ((start / Batch) % 40 == 0) Log($"{label}: {start + count} of {StatsJobs} jobs stored");
            }
        }
        finally
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }

        fill.Stop();
        var runs = new JsonObject();
        var slowest = 0.0;
        foreach (var since in new[] { "24h", "7d" })
        {
            var times = new JsonArray();
            for (var i = 0; i < 5; i++)
            {
                using var outWriter = new StringWriter(CultureInfo.InvariantCulture);
                using var errWriter = new StringWriter(CultureInfo.InvariantCulture);
                var t = Stopwatch.GetTimestamp();
                var code = await OrdoCli.RunAsync(["stats", .. storeArgs, "--since", since, "--json"], outWriter, errWriter, terminal: false, stop).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                if (code != 0) throw new BenchFailedException($"{label}: ordo stats exited {code}: {errWriter}");
                slowest = Math.Max(slowest, ms);
                times.Add(BenchStats.Round(ms, 1));
            }

            runs[since] = times;
        }

        Log($"{label}: {StatsJobs} jobs stored in {fill.Elapsed.TotalSeconds:0.0} s; ordo stats took at most {slowest:0.0} ms");
        return new JsonObject
        {
            ["jobs"] = StatsJobs,
            ["fill_s"] = BenchStats.Round(fill.Elapsed.TotalSeconds, 1),
            ["command_ms"] = runs,
            ["slowest_ms"] = BenchStats.Round(slowest, 1),
            ["bound_ms"] = StatsBound.TotalMilliseconds,
        };
    }

    private void ThrowIfOverStatsBound(JsonObject result)
    {
        var slowest = (double)result["slowest_ms"]!;
        if (slowest > StatsBound.TotalMilliseconds)
        {
            throw new BenchFailedException($"stats: ordo stats took {slowest:0.0} ms on {StatsJobs} jobs, over the bound of {StatsBound.TotalMilliseconds:0} ms");
        }
    }

    /// <summary>Job <paramref name="i"/> of the stats store: its submission and the commit that ends it.</summary>
    private static (NewJob Job, JobCommit End) StatsJob(int i, DateTimeOffset now)
    {
        var workflow = "flow-" + (i % 5).ToString(CultureInfo.InvariantCulture);
        var version = 1 + (i / 5 % 2);
        var tenant = "tenant-" + (i % 3).ToString(CultureInfo.InvariantCulture);
        var created = now - TimeSpan.FromSeconds(i * 604_800.0 / 100_000);
        var ended = created + TimeSpan.FromMilliseconds(200 + (i * 37 % 2000));
        var id = JobId.New(created);
        var hash = $"sha256:bench-{workflow}-{version}";
        var first = EventChain.Seal(id, 0, EventChain.GenesisHash,
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload(workflow, version, hash, tenant, "bench", null, null, null, null, "trace", 0), created),
            EventFactory.Step(EventTypes.StepScheduled, new StepRef("ask", 1, 1), new StepScheduledPayload("agent", "entry", null, null), created),
        ]);
        var job = new NewJob
        {
            JobId = id, Workflow = workflow, Version = version, Tenant = tenant, Submitter = "bench",
            Definition = new DefinitionRecord(hash, workflow, version, "{}"u8.ToArray()), TraceId = "trace", CreatedAt = created,
            Events = first, WorkItems = [],
        };
        var step = new StepRef("ask", 1, 1);
        var agent = "asker@" + version.ToString(CultureInfo.InvariantCulture);
        var prompt = i % 4 == 0 ? "sha256:prompt-b" : "sha256:prompt-a";
        var (status, end) = (i % 10) switch
        {
            0 => (JobStatus.Failed, EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload("bench failure", "ask", "malformed_output"), ended)),
            1 when i % 20 == 1 => (JobStatus.Cancelled, EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload("bench", "bench"), ended)),
            _ => (JobStatus.Completed, EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(200), ended)),
        };
        List<NewEvent> events =
        [
            EventFactory.Step(EventTypes.ModelCallSucceeded, step, new ModelCallSucceededPayload("ask#1.1.m0", "fast", "scripted", "m", "{}", 400, 60, 0.0012m, 150), ended, agent: agent, promptHash: prompt),
        ];
        if (i % 7 == 0) events.Add(EventFactory.Step(EventTypes.StepFailed, step, new StepFailedPayload("malformed_output", "bench", true, true, 10, 1, null), ended, agent: agent, promptHash: prompt));
        if (i % 11 == 0) events.Add(EventFactory.Step(EventTypes.ArtifactRejected, step, new ArtifactVerdictPayload("answer", 1, "rejected", "bench", null), ended));
        events.Add(status == JobStatus.Completed
            ? EventFactory.Step(EventTypes.StepSucceeded, step, new StepSucceededPayload(null, 150, null, null), ended, agent: agent, promptHash: prompt)
            : EventFactory.Step(EventTypes.StepFailed, step, new StepFailedPayload("malformed_output", "bench", false, false, null, 1, null), ended, agent: agent, promptHash: prompt));
        events.Add(end);
        var sealedEvents = EventChain.Seal(id, first.Length, first[^1].Hash, events);
        return (job, new JobCommit { JobId = id, ExpectedSeq = first.Length, ExpectedHeadHash = first[^1].Hash, Events = sealedEvents, Status = status });
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.Sqlite;
using Ordo.Storage;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>
    /// The cost of the audit log (<c>--workload audit</c>, not part of the default run). (a) W1 durable with the store's
    /// audit log turned off and on, in alternating rounds on fresh databases (so that the machine's load falls on both),
    /// each round W1's own warm-up and repetitions; the medians and their ratio. (b) <c>ordo audit verify --all
    /// --checkpoint</c>, run as its own process, over a store of <see cref="BenchSizes.AuditJobs"/> jobs of 12 events
    /// each (written through the store in two appends per job), after <c>ordo audit checkpoint</c> took the checkpoint.
    /// </summary>
    private async Task AuditAsync(JsonObject output, CancellationToken stop)
    {
        var samples = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
        for (var round = 0; round < _p.AuditRounds; round++)
        {
            foreach (var on in new[] { false, true })
            {
                using var db = BenchDatabase.Create(on ? "audit-on" : "audit-off");
                await using var host = await BenchHost.StartAsync(new SqliteOrdoStore(new SqliteStoreOptions { Path = db.Path, AuditLog = on }), DefaultWorkers, stop).ConfigureAwait(false);
                var (s, _) = await ChainSeriesAsync(host, $"w1 durable, audit log {(on ? "on" : "off")}, round {round + 1}/{_p.AuditRounds}", _p.W1DurN, _p.W1Reps).ConfigureAwait(false);
                samples[on].AddRange(s);
            }
        }

        var off = BenchStats.Median(samples[false]);
        var onMedian = BenchStats.Median(samples[true]);
        var result = new JsonObject
        {
            ["w1_durable_log_off_steps_per_sec"] = BenchStats.Round(off, 1),
            ["w1_durable_log_on_steps_per_sec"] = BenchStats.Round(onMedian, 1),
            ["w1_log_on_vs_off"] = BenchStats.Round(onMedian / off, 3),
            ["w1_samples_off"] = Array(samples[false], 1),
            ["w1_samples_on"] = Array(samples[true], 1),
            ["w1_invocations_per_rep"] = _p.W1DurN,
        };
        Log($"audit: w1 durable median {F0(off)} steps/s with the log off, {F0(onMedian)} with it on ({(onMedian / off - 1) * 100:+0.0;-0.0}%)");

        using (var db = BenchDatabase.Create("audit-verify"))
        {
            var write = Stopwatch.StartNew();
            await WriteJobsAsync(db.Path, _p.AuditJobs, stop).ConfigureAwait(false);
            result["verify_jobs"] = _p.AuditJobs;
            result["verify_events"] = _p.AuditJobs * 12L;
            result["verify_store_written_s"] = BenchStats.Round(write.Elapsed.TotalSeconds, 1);
            result["verify_db_mb"] = BenchStats.Round(db.FileBytes / 1e6, 1);
            var key = Path.Combine(db.Directory, "audit-key.pem");
            var checkpoint = Path.Combine(db.Directory, "checkpoint.json");
            var (_, taken) = await RunOrdoAsync(key, stop, "audit", "checkpoint", "--db", db.Path, "--out", checkpoint, "--quiet").ConfigureAwait(false);
            result["checkpoint_s"] = BenchStats.Round(taken, 2);
            result["checkpoint_file_mb"] = BenchStats.Round(new FileInfo(checkpoint).Length / 1e6, 1);
            Log($"audit: ordo audit verify --all --checkpoint over {_p.AuditJobs} jobs");
            var (code, seconds) = await RunOrdoAsync(key, stop, "audit", "verify", "--all", "--db", db.Path, "--checkpoint", checkpoint, "--quiet").ConfigureAwait(false);
            if (code != 0) throw new BenchFailedException($"audit verify over {_p.AuditJobs} untouched jobs exited {code}");
            result["verify_checkpoint_s"] = BenchStats.Round(seconds, 2);
            Log($"audit: verify --checkpoint over {_p.AuditJobs} jobs: {seconds:0.0} s (checkpoint {taken:0.0} s)");
        }

        output["audit"] = result;
    }

    /// <summary>
    /// Writes <paramref name="jobs"/> jobs of the W1 chain's definition through the store: each a submission
    /// (JobSubmitted, StepScheduled) and one commit of 10 events that completes it; many at once, so the writer groups them.
    /// </summary>
    private static async Task WriteJobsAsync(string path, int jobs, CancellationToken stop)
    {
        var workflow = BenchWorkflows.Chain("bench-audit", BenchWorkflows.ChainIds(BenchSizes.Chain), new StepProbe());
        var definition = new DefinitionRecord(workflow.Hash, workflow.Name, workflow.Version, workflow.Bundle!.ToBytes());
        await using var store = new SqliteOrdoStore(new SqliteStoreOptions { Path = path });
        await store.InitializeAsync(stop).ConfigureAwait(false);
        var next = -1;
        var now = TimeProvider.System.GetUtcNow();
        var writers = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) is var k && k < jobs)
            {
                var id = JobId.New(now);
                var first = EventChain.Seal(id, 0, EventChain.GenesisHash,
                [
                    EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload(workflow.Name, workflow.Version, workflow.Hash, "default", "bench", BenchWorkflows.Input, null, null, null, "trace", 0), now),
                    EventFactory.Step(EventTypes.StepScheduled, new StepRef("n1", 1, 1), new StepScheduledPayload("code", "entry", null, null), now),
                ]);
                await store.SubmitAsync(new NewJob
                {
                    JobId = id, Workflow = workflow.Name, Version = workflow.Version, Tenant = "default", Submitter = "bench",
                    Definition = definition, TraceId = "trace", CreatedAt = now, Events = first, WorkItems = [],
                }, stop).ConfigureAwait(false);
                var rest = EventChain.Seal(id, 2, first[^1].Hash, [.. Enumerable.Range(1, 10).Select(i =>
                    EventFactory.Step(EventTypes.StepSucceeded, new StepRef($"n{i}", 1, 1), new StepSucceededPayload(Json.Of(new { i }), 1, null, null), now))]);
                var result = await store.CommitAsync(new JobCommit { JobId = id, ExpectedSeq = 2, ExpectedHeadHash = first[^1].Hash, Events = rest, Status = State.JobStatus.Completed }, stop).ConfigureAwait(false);
                if (result.Outcome != CommitOutcome.Committed) throw new BenchFailedException($"writing job {k}: {result.Outcome}");
            }
        }, stop));
        await Task.WhenAll(writers).ConfigureAwait(false);
    }

    /// <summary>Runs this <c>ordo</c> as its own process with the audit key at <paramref name="key"/>; its exit code and wall time.</summary>
    private static async Task<(int Code, double Seconds)> RunOrdoAsync(string key, CancellationToken stop, params string[] args)
    {
        var self = Environment.ProcessPath ?? throw new BenchFailedException("the path of this ordo is not known");
        var info = new ProcessStartInfo(self) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(OrdoBench).Assembly.Location);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment[Audit.AuditKey.EnvironmentVariable] = key;
        var t0 = Stopwatch.GetTimestamp();
        using var process = Process.Start(info) ?? throw new BenchFailedException("ordo could not be started");
        var output = process.StandardOutput.ReadToEndAsync(stop);
        var error = process.StandardError.ReadToEndAsync(stop);
        await process.WaitForExitAsync(stop).ConfigureAwait(false);
        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        await output.ConfigureAwait(false);
        if (process.ExitCode is not (0 or 3)) throw new BenchFailedException($"ordo {string.Join(' ', args)} exited {process.ExitCode}: {await error.ConfigureAwait(false)}");
        return (process.ExitCode, seconds);
    }
}

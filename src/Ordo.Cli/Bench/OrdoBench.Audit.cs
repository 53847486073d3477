using System.Diagnostics;
using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.Sqlite;
using Ordo.Storage;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>
    /// The cost of the audit log (<c>--workload audit</c>, not part of the default run). (a) W1 durable on two stores at
    /// once, the audit log off on one and on on the other: after a warm-up pass on each, <see cref="BenchSizes.AuditPairs"/>
    /// pairs of timed passes of N invocations, alternating; the medians, and the median of the pairs' ratios. (b) <c>ordo audit verify --all
    /// --checkpoint</c>, run as its own process, over a store of <see cref="BenchSizes.AuditJobs"/> jobs of 12 events
    /// each (written through the store in two appends per job), after <c>ordo audit checkpoint</c> took the checkpoint.
    /// </summary>
    private async Task AuditAsync(JsonObject output, CancellationToken stop)
    {
        // Two stores side by side, one with the log off and one with it on, and the timed passes alternating between
        // them (in turn first), so that the load of a shared machine falls on both alike; each pair gives a ratio.
        using var offDb = BenchDatabase.Create("audit-off");
        using var onDb = BenchDatabase.Create("audit-on");
        await using var offHost = await BenchHost.StartAsync(new SqliteOrdoStore(new SqliteStoreOptions { Path = offDb.Path, AuditLog = false }), DefaultWorkers, stop).ConfigureAwait(false);
        await using var onHost = await BenchHost.StartAsync(new SqliteOrdoStore(new SqliteStoreOptions { Path = onDb.Path, AuditLog = true }), DefaultWorkers, stop).ConfigureAwait(false);
        var probe = new StepProbe();
        var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
        var workflow = BenchWorkflows.Chain("bench-w1", ids, probe);
        var n = _p.AuditPassN;
        Log($"audit: warm-up {_p.W1DurN} invocations on each store");
        await SequentialAsync(offHost, workflow, ids, probe, _p.W1DurN, "w1 durable, audit log off").ConfigureAwait(false);
        await SequentialAsync(onHost, workflow, ids, probe, _p.W1DurN, "w1 durable, audit log on").ConfigureAwait(false);
        var off = new List<double>();
        var on = new List<double>();
        var ratios = new List<double>();
        var offCpu = new List<double>();
        var onCpu = new List<double>();
        var steps = n * ids.Count;
        using var self = Process.GetCurrentProcess();
        for (var pair = 0; pair < _p.AuditPairs; pair++)
        {
            double offRate = 0, onRate = 0;
            foreach (var logOn in pair % 2 == 0 ? new[] { false, true } : [true, false])
            {
                // The process's CPU time as well as the wall time: on a machine others load, the wall time of a pass
                // swings with their work, the CPU it took much less.
                self.Refresh();
                var cpu0 = self.TotalProcessorTime;
                var (seconds, _) = await SequentialAsync(logOn ? onHost : offHost, workflow, ids, probe, n, $"w1 durable, audit log {(logOn ? "on" : "off")}").ConfigureAwait(false);
                self.Refresh();
                var cpuPerStep = (self.TotalProcessorTime - cpu0).TotalMicroseconds / steps;
                if (logOn)
                {
                    onRate = steps / seconds;
                    onCpu.Add(cpuPerStep);
                }
                else
                {
                    offRate = steps / seconds;
                    offCpu.Add(cpuPerStep);
                }
            }

            off.Add(offRate);
            on.Add(onRate);
            ratios.Add(onRate / offRate);
            Log($"audit pair {pair + 1}/{_p.AuditPairs}: {F0(offRate)} steps/s off ({offCpu[^1]:0} µs CPU a step), {F0(onRate)} on ({onCpu[^1]:0} µs)");
        }

        var ratio = BenchStats.Median(ratios);
        var cpuOff = BenchStats.Median(offCpu);
        var cpuOn = BenchStats.Median(onCpu);
        var result = new JsonObject
        {
            ["w1_durable_log_off_steps_per_sec"] = BenchStats.Round(BenchStats.Median(off), 1),
            ["w1_durable_log_on_steps_per_sec"] = BenchStats.Round(BenchStats.Median(on), 1),
            ["w1_log_on_vs_off"] = BenchStats.Round(ratio, 3),
            ["w1_cpu_us_per_step_off"] = BenchStats.Round(cpuOff, 1),
            ["w1_cpu_us_per_step_on"] = BenchStats.Round(cpuOn, 1),
            ["w1_cpu_on_vs_off"] = BenchStats.Round(cpuOn / cpuOff, 3),
            ["w1_samples_off"] = Array(off, 1),
            ["w1_samples_on"] = Array(on, 1),
            ["w1_pair_ratios"] = Array(ratios, 3),
            ["w1_cpu_samples_off"] = Array(offCpu, 1),
            ["w1_cpu_samples_on"] = Array(onCpu, 1),
            ["w1_invocations_per_pass"] = n,
            ["w1_leaves_per_invocation"] = BenchStats.Round((double)await onHost.Store.GetAuditLogSizeAsync(stop).ConfigureAwait(false) / ((n * _p.AuditPairs) + _p.W1DurN), 2),
            ["loadavg"] = LoadAverage(),
        };
        Log($"audit: w1 durable over {ratios.Count} paired passes: median {F0(BenchStats.Median(off))} steps/s off, {F0(BenchStats.Median(on))} on (median pair ratio {ratio:0.000}); CPU a step {cpuOff:0.0} µs off, {cpuOn:0.0} µs on ({(cpuOn / cpuOff - 1) * 100:+0.0;-0.0}%)");

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
                    EventFactory.Step(EventTypes.StepSucceeded, new StepRef($"n{i}", 1, 1), new StepSucceededPayload(Json.Of(new { i }), 1, null, null), now)),
                    EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(0), now)]);
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

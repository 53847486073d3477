using System.Diagnostics;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.State;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>
    /// W4: a durable 10-step chain whose process stops during n5. Runtime A runs the job; n5, on its first execution,
    /// signals and waits; A's run is cancelled with <see cref="OrdoRuntimeOptions.ShutdownGrace"/> zero, so the running
    /// step is interrupted and its lease released, as when a process is stopped. Then a new runtime B, on a new store
    /// instance over the same file, runs <c>RunAsync(UntilIdle = true)</c>: the steps B executes are counted (ideal: 6,
    /// n5..n10) and only B's run is timed. Once untimed (warm-up, its own job), once timed.
    /// </summary>
    private async Task W4Async(JsonObject output, JsonObject detail, CancellationToken stop)
    {
        using var db = BenchDatabase.Create("w4");
        Log("w4: warm-up scenario");
        await W4ScenarioAsync(() => db.OpenStore(), stop).ConfigureAwait(false);
        var result = await W4ScenarioAsync(() => db.OpenStore(), stop).ConfigureAwait(false);
        output["w4_reexecuted_steps"] = result["reexecuted"]!.GetValue<long>();
        output["w4_resume_ms"] = result["resume_ms"]!.GetValue<double>();
        result["ideal_reexecuted"] = BenchSizes.Chain - 5 + 1;
        var store = db.OpenStore();
        try
        {
            await store.InitializeAsync(stop).ConfigureAwait(false);
            result["sqlite"] = SqliteFacts.Info(db, store);
        }
        finally
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }

        detail["w4"] = result;
        Log($"w4: resume re-ran {result["reexecuted"]} steps ({string.Join(",", result["resume_nodes"]!.AsArray().Select(n => n!.GetValue<string>()))}) in {F2(result["resume_ms"]!.GetValue<double>())} ms");
    }

    private static async Task<JsonObject> W4ScenarioAsync(Func<Ordo.Storage.IOrdoStore> open, CancellationToken stop)
    {
        var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var armed = 1;
        var first = new StepProbe
        {
            Record = true,
            Hook = async (id, ct) =>
            {
                if (id == "n5" && Interlocked.Exchange(ref armed, 0) == 1)
                {
                    reached.TrySetResult();
                    // The process "stops" here: the step never finishes on its own.
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
            },
        };

        // Runtime A: runs the job until n5 is running, then stops at once (no grace), as a stopped process would.
        JobId jobId;
        RunSummary summaryA;
        var storeA = open();
        await storeA.InitializeAsync(stop).ConfigureAwait(false);
        var runtimeA = new OrdoRuntime(storeA, new OrdoRuntimeOptions { ShutdownGrace = TimeSpan.Zero });
        try
        {
            using var stopA = new CancellationTokenSource();
            var runA = Task.Run(() => runtimeA.RunAsync(new RunRequest { UntilIdle = false }, stopA.Token), CancellationToken.None);
            jobId = (await runtimeA.SubmitAsync(BenchWorkflows.Chain("bench-w4", ids, first), BenchWorkflows.Input, null, stop).ConfigureAwait(false)).JobId;
            await reached.Task.WaitAsync(TimeSpan.FromMinutes(1), stop).ConfigureAwait(false);
            await stopA.CancelAsync().ConfigureAwait(false);
            summaryA = await runA.ConfigureAwait(false);
        }
        finally
        {
            await runtimeA.DisposeAsync().ConfigureAwait(false);
            await storeA.DisposeAsync().ConfigureAwait(false);
        }

        // Runtime B: a new store instance over the same file and a new runtime, with the workflow registered again
        // (as a restarted process registers its code-built workflows); only its run is timed.
        var second = new StepProbe { Record = true };
        var storeB = open();
        await storeB.InitializeAsync(stop).ConfigureAwait(false);
        var runtimeB = new OrdoRuntime(storeB, new OrdoRuntimeOptions());
        try
        {
            runtimeB.Workflows.Register(BenchWorkflows.Chain("bench-w4", ids, second));
            var stopped = await runtimeB.GetStateAsync(jobId, stop).ConfigureAwait(false) ?? throw new BenchFailedException($"w4: job {jobId} is not in the store");
            var t0 = Stopwatch.GetTimestamp();
            var summaryB = await runtimeB.RunAsync(new RunRequest { UntilIdle = true }, stop).ConfigureAwait(false);
            var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            var final = await runtimeB.GetStateAsync(jobId, stop).ConfigureAwait(false) ?? throw new BenchFailedException($"w4: job {jobId} is not in the store");
            BenchWorkflows.Expect(final, ids, "w4 resume");
            if (!summaryA.Stopped)
            {
                throw new BenchFailedException("w4: runtime A was not stopped during n5");
            }

            return new JsonObject
            {
                ["resume_ms"] = BenchStats.Round(ms, 3),
                ["reexecuted"] = second.Executions,
                ["resume_nodes"] = new JsonArray([.. second.Names.Select(n => (JsonNode)n)]),
                ["resume_run_steps_executed"] = summaryB.StepsExecuted,
                ["first_run_executions"] = first.Executions,
                ["first_run_nodes"] = new JsonArray([.. first.Names.Select(n => (JsonNode)n)]),
                ["first_run_steps_committed"] = summaryA.StepsExecuted,
                ["state_after_stop"] = new JsonObject
                {
                    ["status"] = stopped.Status.ToWire(),
                    ["steps_succeeded"] = stopped.StepsSucceeded,
                    ["last_i"] = BenchWorkflows.OutputI(stopped, "n4"),
                    ["open"] = new JsonArray([.. stopped.Open.Values.Select(o => (JsonNode)$"{o.StepId} ({o.Status})")]),
                },
                ["final_i"] = BenchWorkflows.OutputI(final, ids[^1]),
                ["stop"] = "runtime A's RunAsync cancelled with ShutdownGrace = 0 while n5 ran: the step is interrupted and its lease released; runtime B is a new OrdoRuntime on a new store instance over the same database",
            };
        }
        finally
        {
            await runtimeB.DisposeAsync().ConfigureAwait(false);
            await storeB.DisposeAsync().ConfigureAwait(false);
        }
    }
}

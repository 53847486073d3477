using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>Items of the foreach workload.</summary>
    private const int ForeachItems = 1000;

    /// <summary>Branches of the parallel workload.</summary>
    private const int ParallelBranches = 64;

    /// <summary>
    /// Ordo's coordination patterns, durable, on the default workers (no peer counterpart): a foreach over 1,000 items
    /// (max_concurrency 8, one code step per item) and a parallel step of 64 branches (one code step each) joined by
    /// one step. Each is one untimed warm-up invocation, then timed invocations; steps/s counts the item or branch
    /// steps (and the join), each its own durable unit with its own commit.
    /// </summary>
    private async Task PatternsAsync(JsonObject output, CancellationToken stop)
    {
        var result = new JsonObject
        {
            ["note"] = "Ordo only (the peer has no counterpart); durable SQLite store, default workers; steps/s counts item or branch steps (and the join)",
        };

        using (var db = BenchDatabase.Create("foreach"))
        {
            await using var host = await BenchHost.StartAsync(db.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
            var workflow = ForeachWorkflow();
            var reps = settings.Quick ? 1 : 3;
            Log($"patterns: foreach over {ForeachItems} items, warm-up then {reps} timed");
            Check(await host.InvokeAsync(workflow, Items(100)).ConfigureAwait(false), 100);
            var ms = new List<double>();
            for (var r = 0; r < reps; r++)
            {
                var t0 = Stopwatch.GetTimestamp();
                var state = await host.InvokeAsync(workflow, Items(ForeachItems)).ConfigureAwait(false);
                ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                Check(state, ForeachItems);
            }

            var median = BenchStats.Median(ms);
            result["foreach_1000"] = new JsonObject
            {
                ["items"] = ForeachItems,
                ["max_concurrency"] = 8,
                ["workers"] = host.Workers,
                ["median_ms"] = BenchStats.Round(median, 1),
                ["steps_per_sec"] = BenchStats.Round(ForeachItems / (median / 1000), 1),
                ["us_per_item"] = BenchStats.Round(median * 1000 / ForeachItems, 1),
                ["samples_ms"] = Array(ms, 1),
            };
            Log($"patterns: foreach {F0(median)} ms, {F0(ForeachItems / (median / 1000))} item steps/s");
        }

        using (var db = BenchDatabase.Create("parallel"))
        {
            await using var host = await BenchHost.StartAsync(db.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
            var workflow = ParallelWorkflow();
            var n = settings.Quick ? 4 : 20;
            Log($"patterns: parallel of {ParallelBranches} branches, warm-up then {n} timed");
            for (var k = 0; k < 3; k++) CheckJoin(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false));
            var ms = new List<double>();
            for (var k = 0; k < n; k++)
            {
                var t0 = Stopwatch.GetTimestamp();
                var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
                ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                CheckJoin(state);
            }

            var median = BenchStats.Median(ms);
            result["parallel_64"] = new JsonObject
            {
                ["branches"] = ParallelBranches,
                ["join_policy"] = "all",
                ["workers"] = host.Workers,
                ["median_ms"] = BenchStats.Round(median, 2),
                ["steps_per_sec"] = BenchStats.Round((ParallelBranches + 1) / (median / 1000), 1),
                ["samples_ms"] = Array(ms, 2),
            };
            Log($"patterns: parallel {F2(median)} ms, {F0((ParallelBranches + 1) / (median / 1000))} steps/s");
        }

        output["patterns"] = result;
    }

    private static JsonElement Items(int n) => JsonSerializer.SerializeToElement(new { items = Enumerable.Range(0, n).ToArray() });

    private static WorkflowDefinition ForeachWorkflow() => WorkflowBuilder.Create("bench-foreach", 1)
        .Step("each", s => s.Foreach("${ input.items }", "square", maxConcurrency: 8))
        .Step("square", s => s.Code(ctx => Json.Of(new { i = ctx.Item!.Value.GetInt32() + 1 })))
        .Build();

    private static WorkflowDefinition ParallelWorkflow()
    {
        var branches = Enumerable.Range(1, ParallelBranches).Select(k => $"b{k}").ToList();
        var b = WorkflowBuilder.Create("bench-parallel", 1).Step("fan", s => s.Parallel(branches, join: "join"));
        foreach (var id in branches)
        {
            b.Step(id, s => s.Code(_ => Json.Of(new { i = 1 })));
        }

        return b.Step("join", s => s.Code(ctx => Json.Of(new { i = branches.Sum(x => ctx.OutputOf(x)!.Value.GetProperty("i").GetInt32()) }))).Build();
    }

    private static void Check(JobState state, int items)
    {
        var output = state.Steps.TryGetValue("each", out var s) ? s.Output : null;
        if (state.Status != JobStatus.Completed || output is not { ValueKind: JsonValueKind.Array } list || list.GetArrayLength() != items
            || list[items - 1].GetProperty("i").GetInt32() != items)
        {
            throw new BenchFailedException($"patterns: the foreach job {state.JobId} ended {state.Status.ToWire()} without {items} results in order ({state.Reason})");
        }
    }

    private static void CheckJoin(JobState state)
    {
        if (state.Status != JobStatus.Completed || BenchWorkflows.OutputI(state, "join") != ParallelBranches)
        {
            throw new BenchFailedException($"patterns: the parallel job {state.JobId} ended {state.Status.ToWire()}, join i={BenchWorkflows.OutputI(state, "join")} ({state.Reason})");
        }
    }
}

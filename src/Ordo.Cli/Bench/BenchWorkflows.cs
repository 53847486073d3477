using System.Text.Json;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

/// <summary>The benchmark graphs, built in C#: straight chains of code steps that each add one to <c>i</c>.</summary>
internal static class BenchWorkflows
{
    /// <summary>The input of every job: <c>{ "i": 0 }</c>, as the peer passes to <c>invoke</c>.</summary>
    public static JsonElement Input { get; } = JsonSerializer.SerializeToElement(new { i = 0 });

    /// <summary>Step ids <c>n1 .. nN</c>.</summary>
    public static IReadOnlyList<string> ChainIds(int n) => [.. Enumerable.Range(1, n).Select(k => $"n{k}")];

    /// <summary>W2's user steps: <c>fan</c>, <c>p1..p8</c>, <c>join</c>.</summary>
    public static IReadOnlyList<string> FanIds() => ["fan", .. Branches(), "join"];

    private static List<string> Branches() => [.. Enumerable.Range(1, BenchSizes.Fan).Select(k => $"p{k}")];

    /// <summary>
    /// W2's graph (code steps declared <see cref="CodeStep.Pure"/> as in <see cref="Chain"/>): <c>fan</c> adds one, then the <c>fanout</c> parallel step runs <c>p1..p8</c> (each adds one) as concurrent
    /// branches and <c>join</c> runs once after all eight, adding their increments and one: the final <c>i</c> is 10, as
    /// the peer's reducer sums it.
    /// </summary>
    public static WorkflowDefinition FanOut(string name, StepProbe probe)
    {
        var branches = Branches();
        var b = WorkflowBuilder.Create(name, 1);
        var pure = probe.Hook is null;
        b.Step("fan", s => s.Code((ctx, ct) => probe.RunAsync("fan", null, ctx, ct), pure: pure).Next("fanout"));
        b.Step("fanout", s => s.Parallel(branches, join: "join"));
        foreach (var id in branches)
        {
            b.Step(id, s => s.Code((ctx, ct) => probe.RunAsync(id, "fan", ctx, ct), pure: pure));
        }

        b.Step("join", s => s.Code((ctx, ct) => probe.JoinAsync(branches, "fan", ctx, ct), pure: pure));
        return b.Build();
    }

    /// <summary>Fails loudly unless the W2 job completed with the join's <c>i</c> equal to the number of user steps.</summary>
    public static void ExpectFanOut(JobState state, string what)
    {
        if (state.Status != JobStatus.Completed)
        {
            throw new BenchFailedException($"{what}: job {state.JobId} ended {state.Status.ToWire()} ({state.Reason ?? "no reason"}), expected completed");
        }

        var want = FanIds().Count;
        if (OutputI(state, "join") is not { } i || i != want)
        {
            throw new BenchFailedException($"{what}: expected the join's i={want}, got {OutputI(state, "join")?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"} (job {state.JobId})");
        }
    }

    /// <summary>
    /// A chain of code steps with the given ids, each routed to the next; the first is the entry. The steps only compute
    /// their output (and count their runs), so they are declared <see cref="CodeStep.Pure"/>, unless the probe has a hook
    /// (W4 stops the process in one).
    /// </summary>
    public static WorkflowDefinition Chain(string name, IReadOnlyList<string> ids, StepProbe probe)
    {
        var b = WorkflowBuilder.Create(name, 1);
        var pure = probe.Hook is null;
        for (var k = 0; k < ids.Count; k++)
        {
            var id = ids[k];
            var previous = k > 0 ? ids[k - 1] : null;
            var next = k + 1 < ids.Count ? ids[k + 1] : null;
            b.Step(id, s =>
            {
                s.Code((ctx, ct) => probe.RunAsync(id, previous, ctx, ct), pure: pure);
                if (next is not null) s.Next(next);
            });
        }

        return b.Build();
    }

    /// <summary>Fails loudly unless the job completed with every step run once and the last step's <c>i</c> equal to the step count.</summary>
    public static void Expect(JobState state, IReadOnlyList<string> ids, string what)
    {
        if (state.Status != JobStatus.Completed)
        {
            throw new BenchFailedException($"{what}: job {state.JobId} ended {state.Status.ToWire()} ({state.Reason ?? "no reason"}), expected completed");
        }

        var last = ids[^1];
        var output = state.Steps.TryGetValue(last, out var s) ? s.Output : null;
        var i = output is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("i", out var v) && v.TryGetInt32(out var n) ? n : (int?)null;
        if (i != ids.Count || state.StepsSucceeded != ids.Count)
        {
            throw new BenchFailedException($"{what}: expected final i={ids.Count} after {ids.Count} steps, got i={(i is null ? "none" : i)} after {state.StepsSucceeded} steps (job {state.JobId})");
        }
    }

    /// <summary>The <c>i</c> of a step's output, if any.</summary>
    public static int? OutputI(JobState state, string step)
        => state.Steps.TryGetValue(step, out var s) && s.Output is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("i", out var v) && v.TryGetInt32(out var n) ? n : null;
}

/// <summary>A workload's result is wrong (not a slow result: a wrong one). The workload is reported under <c>errors</c>.</summary>
internal sealed class BenchFailedException(string message) : Exception(message);

using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

/// <summary>
/// The body of every benchmark step: counts the execution, optionally records the step's name and runs a hook, then
/// returns <c>{ "i": i + 1 }</c> where <c>i</c> comes from the previous step's output (or the job input for the first step).
/// </summary>
/// <remarks>Thread-safe: steps of concurrent jobs run it at the same time.</remarks>
internal sealed class StepProbe
{
    private readonly ConcurrentQueue<string> _names = new();
    private long _executions;
    private long _joinRuns;

    /// <summary>Record the name of every step run (W4).</summary>
    public bool Record { get; init; }

    /// <summary>Runs before the step computes its output; may wait (W4 stops the process during a step).</summary>
    public Func<string, CancellationToken, Task>? Hook { get; init; }

    /// <summary>Step executions so far.</summary>
    public long Executions => Interlocked.Read(ref _executions);

    /// <summary>Runs of the step named <c>join</c> so far (W2).</summary>
    public long JoinRuns => Interlocked.Read(ref _joinRuns);

    /// <summary>The steps run so far, in order of start (only with <see cref="Record"/>).</summary>
    public IReadOnlyList<string> Names => [.. _names];

    public void Reset()
    {
        Interlocked.Exchange(ref _executions, 0);
        Interlocked.Exchange(ref _joinRuns, 0);
        _names.Clear();
    }

    public ValueTask<JsonElement> RunAsync(string id, string? previous, CodeStepContext ctx, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _executions);
        if (id == "join") Interlocked.Increment(ref _joinRuns);
        if (Record) _names.Enqueue(id);
        if (Hook is null) return ValueTask.FromResult(Next(previous, ctx));
        return WithHookAsync(id, previous, ctx, cancellationToken);
    }

    /// <summary>W2's join: <c>i</c> of <paramref name="before"/> plus each branch's increment, plus one.</summary>
    public ValueTask<JsonElement> JoinAsync(IReadOnlyList<string> branches, string before, CodeStepContext ctx, CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        Interlocked.Increment(ref _executions);
        Interlocked.Increment(ref _joinRuns);
        if (Record) _names.Enqueue("join");
        var start = I(ctx.OutputOf(before));
        var total = start + branches.Sum(b => I(ctx.OutputOf(b)) - start) + 1;
        return ValueTask.FromResult(Json.Of(new { i = total }));
    }

    private static int I(JsonElement? e) => e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("i", out var v) ? v.GetInt32() : 0;

    private async ValueTask<JsonElement> WithHookAsync(string id, string? previous, CodeStepContext ctx, CancellationToken cancellationToken)
    {
        await Hook!(id, cancellationToken).ConfigureAwait(false);
        return Next(previous, ctx);
    }

    private static JsonElement Next(string? previous, CodeStepContext ctx)
    {
        var source = previous is null ? ctx.State.Input : ctx.OutputOf(previous);
        var i = source is { ValueKind: JsonValueKind.Object } e && e.TryGetProperty("i", out var v) ? v.GetInt32() : 0;
        return Json.Of(new { i = i + 1 });
    }
}

using System.Collections.Immutable;
using System.Text.Json;

namespace Ordo.State;

/// <summary>
/// The progress of one coordination step visit (parallel, foreach, sub-workflow, plan, supervise, board, auction),
/// derived from its events: which branches, items or child jobs started and how they ended, and the units of
/// progress a multi-phase step recorded. A resumed job continues from here, never re-running what ended.
/// </summary>
public sealed record PatternState
{
    /// <summary>The step kind.</summary>
    public required string Kind { get; init; }
    /// <summary>The coordinating step.</summary>
    public required string StepId { get; init; }
    /// <summary>The coordinating step's visit.</summary>
    public int Visit { get; init; }
    /// <summary>The coordinating step's attempt.</summary>
    public int Attempt { get; init; }
    /// <summary>The scope the coordinating step runs in.</summary>
    public string? Scope { get; init; }
    /// <summary>Branches, items or child jobs in all.</summary>
    public int Count { get; init; }
    /// <summary>Branch labels (parallel).</summary>
    public ImmutableArray<string> Labels { get; init; } = [];
    /// <summary>The list a foreach maps over.</summary>
    public JsonElement? Items { get; init; }
    /// <summary><c>all</c>, <c>any</c> or <c>quorum</c>.</summary>
    public string Join { get; init; } = "all";
    /// <summary>Successes that complete the step.</summary>
    public int Needed { get; init; }
    /// <summary>Items in flight at once (foreach).</summary>
    public int MaxConcurrency { get; init; }
    /// <summary>What runs per branch or item: a step id or <c>name@version</c>.</summary>
    public string? Do { get; init; }
    /// <summary>Branches by label.</summary>
    public ImmutableDictionary<string, BranchState> Branches { get; init; } = ImmutableDictionary<string, BranchState>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Branches still running.</summary>
    public int Running { get; init; }
    /// <summary>Branches that succeeded.</summary>
    public int Succeeded { get; init; }
    /// <summary>Branches that failed.</summary>
    public int Failed { get; init; }
    /// <summary>Whether the step has ended (succeeded or failed); later branch results are ignored.</summary>
    public bool Ended { get; init; }
    /// <summary>Units of progress of a multi-phase step, in order.</summary>
    public ImmutableList<ProgressUnit> Progress { get; init; } = [];

    /// <summary>Branches started so far.</summary>
    public int Started => Branches.Count;
}

/// <summary>One branch, item or child job of a coordination step.</summary>
/// <param name="Status"><c>running</c>, <c>succeeded</c>, <c>failed</c> or <c>cancelled</c>.</param>
/// <param name="Scope">The scope its steps run in.</param>
/// <param name="Output">Its result, once it succeeded.</param>
/// <param name="Reason">Why it failed or was cancelled.</param>
/// <param name="ChildJobId">The child job, for a sub-workflow.</param>
public sealed record BranchState(string Status, string Scope, JsonElement? Output, string? Reason, string? ChildJobId);

/// <summary>One recorded unit of a multi-phase step.</summary>
/// <param name="Phase">What the unit was (<c>plan</c>, <c>item</c>, <c>decision</c>, <c>result</c>, <c>firing</c>, <c>bid</c>, <c>award</c>…).</param>
/// <param name="Data">What it produced.</param>
public sealed record ProgressUnit(string Phase, JsonElement Data);

using System.Collections.Immutable;
using System.Text.Json;

namespace Ordo.State;

/// <summary>
/// The state of a job, derived from its event log. Immutable: <see cref="JobStateReducer.Apply(JobState, Events.EventEnvelope)"/>
/// returns a new state, so a state can be shared between threads and cached without copying.
/// </summary>
public sealed record JobState
{
    /// <summary>The job.</summary>
    public required JobId JobId { get; init; }
    /// <summary>The workflow name.</summary>
    public required string Workflow { get; init; }
    /// <summary>The workflow version the job is pinned to.</summary>
    public required int Version { get; init; }
    /// <summary>The content hash of the stored definition.</summary>
    public required string DefinitionHash { get; init; }
    /// <summary>The tenant.</summary>
    public required string Tenant { get; init; }
    /// <summary>Who submitted the job.</summary>
    public required string Submitter { get; init; }
    /// <summary>The trace id shared by all of the job's spans.</summary>
    public required string TraceId { get; init; }
    /// <summary>The span recorded when the job was submitted, parent of its steps' spans; null when none was recorded.</summary>
    public string? RootSpanId { get; init; }
    /// <summary>The parent job, for a sub-workflow.</summary>
    public string? ParentJobId { get; init; }
    /// <summary>The branch of the parent that runs this child job (<c>OWNER#VISIT/LABEL</c>).</summary>
    public string? ParentBranch { get; init; }
    /// <summary>The top of the job tree (null: the job itself).</summary>
    public string? RootJobId { get; init; }
    /// <summary>The job input.</summary>
    public JsonElement? Input { get; init; }
    /// <summary>Whether the job runs in dry run (submitted so): its side-effecting tool calls are recorded, never executed.</summary>
    public bool DryRun { get; init; }

    /// <summary>For a shadow job: the production job it shadows.</summary>
    public string? ShadowOf { get; init; }
    /// <summary>The sequence number of the last event applied.</summary>
    public long Seq { get; init; }
    /// <summary>The hash of the last event applied.</summary>
    public required byte[] HeadHash { get; init; }
    /// <summary>The job status.</summary>
    public JobStatus Status { get; init; }
    /// <summary>Why the job failed or was cancelled.</summary>
    public string? Reason { get; init; }
    /// <summary>When the job was submitted.</summary>
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>When its last event happened.</summary>
    public DateTimeOffset UpdatedAt { get; init; }
    /// <summary>Each step's latest visit, by step id.</summary>
    public ImmutableDictionary<string, StepState> Steps { get; init; } = ImmutableDictionary<string, StepState>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Artifacts by name.</summary>
    public ImmutableDictionary<string, ArtifactState> Artifacts { get; init; } = ImmutableDictionary<string, ArtifactState>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>How many times each step was scheduled, by visit key (<c>[scope/]step</c>).</summary>
    public ImmutableDictionary<string, int> Visits { get; init; } = ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Work scheduled or running, by work key.</summary>
    public ImmutableDictionary<string, OpenWork> Open { get; init; } = ImmutableDictionary<string, OpenWork>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Steps that succeeded, counting every visit.</summary>
    public int StepsSucceeded { get; init; }
    /// <summary>What the job consumed.</summary>
    public JobUsage Usage { get; init; } = JobUsage.Zero;
    /// <summary>Approval requests, by id.</summary>
    public ImmutableDictionary<string, ApprovalState> Approvals { get; init; } = ImmutableDictionary<string, ApprovalState>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Calls requested per tool.</summary>
    public ImmutableDictionary<string, int> ToolCallCounts { get; init; } = ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Results each tool returned in this job, for evidence and authoritative checks.</summary>
    public ImmutableDictionary<string, ImmutableList<ToolResultRecord>> ToolResults { get; init; } = ImmutableDictionary<string, ImmutableList<ToolResultRecord>>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Budgets a human allowed the job to exceed (<c>tokens</c>, <c>cost</c>, <c>tool_calls</c>, <c>deadline</c>).</summary>
    public ImmutableHashSet<string> WaivedBudgets { get; init; } = ImmutableHashSet<string>.Empty.WithComparer(StringComparer.Ordinal);
    /// <summary>Coordination steps' progress (branches, items, child jobs, units), by the step's work key.</summary>
    public ImmutableDictionary<string, PatternState> Patterns { get; init; } = ImmutableDictionary<string, PatternState>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>
    /// Model calls in flight under a token or cost budget, by call id: what each may still use. A call's reservation
    /// ends with its outcome, or with its step (a delivery that died mid-call leaves none behind).
    /// </summary>
    public ImmutableDictionary<string, ModelReservation> Reservations { get; init; } = ImmutableDictionary<string, ModelReservation>.Empty.WithComparers(StringComparer.Ordinal);
    /// <summary>Whether an approval request is still pending.</summary>
    public bool HasPendingApprovals => Approvals.Values.Any(a => a.IsPending);

    /// <summary>
    /// The step as seen from a scope: its visit in that scope, else in the enclosing scopes, else at top level.
    /// Inside a branch or a foreach item, <c>steps.X</c> is the branch's or item's own X.
    /// </summary>
    public StepState? StepIn(string? scope, string stepId)
    {
        for (var s = scope; !string.IsNullOrEmpty(s); s = Events.WorkKeys.ParentScope(s))
        {
            if (Steps.TryGetValue(Events.WorkKeys.VisitKey(s, stepId), out var scoped)) return scoped;
        }

        return Steps.GetValueOrDefault(stepId);
    }

    /// <summary>The foreach item a scope runs in (the nearest enclosing foreach), if any.</summary>
    public (JsonElement Item, int Index)? ItemOf(string? scope)
    {
        for (var s = scope; !string.IsNullOrEmpty(s); s = Events.WorkKeys.ParentScope(s))
        {
            var (owner, label) = Events.WorkKeys.SplitScope(s);
            if (Patterns.TryGetValue(owner, out var p) && p.Kind == "foreach" && p.Items is { ValueKind: JsonValueKind.Array } items
                && int.TryParse(label, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) && index < items.GetArrayLength())
            {
                return (items[index], index);
            }
        }

        return null;
    }

    /// <summary>The number of times the step was scheduled in the scope.</summary>
    public int VisitsOf(string? scope, string stepId) => Visits.TryGetValue(Events.WorkKeys.VisitKey(scope, stepId), out var v) ? v : 0;
}

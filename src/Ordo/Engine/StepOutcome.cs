using System.Text.Json;

namespace Ordo.Engine;

/// <summary>A value a step wants recorded as a named artifact (verified against its contract before it is visible).</summary>
/// <param name="Name">The artifact name.</param>
/// <param name="Value">The value.</param>
public sealed record ArtifactCandidate(string Name, JsonElement Value);

/// <summary>What executing a step attempt produced: its output, or why it failed.</summary>
public sealed record StepOutcome
{
    /// <summary>Whether the attempt succeeded.</summary>
    public required bool Succeeded { get; init; }
    /// <summary>The output (<c>steps.ID.output</c>).</summary>
    public JsonElement? Output { get; init; }
    /// <summary>The step's evaluated input, kept in the log for inspection.</summary>
    public JsonElement? Input { get; init; }
    /// <summary>Artifacts to verify and record.</summary>
    public IReadOnlyList<ArtifactCandidate> Artifacts { get; init; } = [];
    /// <summary>The agent as <c>name@version</c>.</summary>
    public string? Agent { get; init; }
    /// <summary>The prompt hash.</summary>
    public string? PromptHash { get; init; }
    /// <summary>The model id.</summary>
    public string? Model { get; init; }
    /// <summary>A short failure kind.</summary>
    public string? Error { get; init; }
    /// <summary>What went wrong.</summary>
    public string? Message { get; init; }
    /// <summary>Whether another attempt could succeed.</summary>
    public bool Retryable { get; init; }
    /// <summary>
    /// The least time to wait before another attempt, when the failure said so (a provider's <c>Retry-After</c>): the
    /// retry waits the longer of it and its backoff, up to the step's <c>max_backoff</c>.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }
    /// <summary>Structured failure details.</summary>
    public JsonElement? Details { get; init; }
    /// <summary>Tool call ids made by the step.</summary>
    public IReadOnlyList<string> ToolCalls { get; init; } = [];
    /// <summary>Set when the step must pause for a human or the job must end (policy, kill switch, budget), whatever the step itself returned.</summary>
    public StepInterrupt? Interrupt { get; init; }
    /// <summary>Verdicts on existing artifact versions (a gate promotes or rejects).</summary>
    public IReadOnlyList<ArtifactVerdict> Verdicts { get; init; } = [];
    /// <summary>Where to go instead of the step's routes (a gate's <c>on_reject</c>); <c>fail</c> fails the job.</summary>
    public string? RouteTo { get; init; }
    /// <summary>Why the job fails when <see cref="RouteTo"/> is <c>fail</c>.</summary>
    public string? RouteReason { get; init; }
    /// <summary>A coordination step starts branches, items or a child job and waits for them to end.</summary>
    public PatternStart? Start { get; init; }
    /// <summary>A multi-phase step recorded one unit of progress; it runs again for the next unit.</summary>
    public PatternUnit? Progress { get; init; }

    /// <summary>A coordination step's start.</summary>
    public static StepOutcome Starting(PatternStart start) => new() { Succeeded = true, Start = start };

    /// <summary>One unit of a multi-phase step (its <see cref="Artifacts"/>, if any, are verified like any output).</summary>
    public static StepOutcome Progressed(PatternUnit unit, IReadOnlyList<ArtifactCandidate>? artifacts = null)
        => new() { Succeeded = true, Progress = unit, Artifacts = artifacts ?? [] };

    /// <summary>A success.</summary>
    public static StepOutcome Success(JsonElement output, IReadOnlyList<ArtifactCandidate>? artifacts = null, JsonElement? input = null)
        => new() { Succeeded = true, Output = output, Artifacts = artifacts ?? [], Input = input };

    /// <summary>A failure.</summary>
    public static StepOutcome Failure(string error, string message, bool retryable, JsonElement? details = null)
        => new() { Succeeded = false, Error = error, Message = message, Retryable = retryable, Details = details };
}

/// <summary>A verdict on an existing artifact version.</summary>
/// <param name="Name">The artifact.</param>
/// <param name="Version">The version judged.</param>
/// <param name="Status"><c>verified</c> or <c>rejected</c>.</param>
/// <param name="Reason">Why.</param>
public sealed record ArtifactVerdict(string Name, int Version, string Status, string? Reason);

/// <summary>A human decision to ask for.</summary>
/// <param name="Id">The approval id.</param>
/// <param name="Kind"><c>tool_call</c>, <c>step</c>, <c>artifact</c>, <c>job_complete</c>, <c>escalation</c>, <c>budget</c>, <c>approval_step</c>.</param>
/// <param name="Role">The role approvers must hold.</param>
/// <param name="Count">Distinct approvers needed.</param>
/// <param name="ExpiresAt">When it expires.</param>
/// <param name="OnExpire"><c>fail</c>, <c>approve</c>, <c>deny</c> or a step id.</param>
/// <param name="Reason">Why.</param>
/// <param name="Rule">The policy rule that asked.</param>
/// <param name="Policy">The policy as <c>name@version</c>.</param>
/// <param name="Subject">What is to be approved.</param>
/// <param name="Show">What approvers are shown.</param>
/// <param name="Holds">Whether the approval holds back what follows the step (its route, or its next unit) until it is decided.</param>
public sealed record ApprovalRequest(string Id, string Kind, string Role, int Count, DateTimeOffset? ExpiresAt, string OnExpire, string? Reason, string? Rule, string? Policy, string? Subject, JsonElement? Show, bool Holds = false);

/// <summary>Why a step stops short: it waits for an approval, or the job ends (cancelled by a kill switch, failed by a policy or a budget).</summary>
/// <param name="By"><c>policy</c>, <c>kill_switch</c>, <c>budget</c> or <c>approval</c>.</param>
/// <param name="Reason">Why, for people.</param>
/// <param name="Rule">The rule or switch.</param>
/// <param name="EndStatus">The job's final status when it ends (cancelled or failed); null when it pauses.</param>
/// <param name="Approval">The approval to request when it pauses.</param>
public sealed record StepInterrupt(string By, string Reason, string? Rule, State.JobStatus? EndStatus, ApprovalRequest? Approval);

/// <summary>What a coordination step starts.</summary>
/// <param name="Kind"><c>parallel</c>, <c>foreach</c> or <c>workflow</c>.</param>
/// <param name="Count">Branches, items or child jobs.</param>
/// <param name="Labels">Branch labels (parallel: each branch's first step).</param>
/// <param name="Items">The foreach list, or the child's input as a one-element list (workflow).</param>
/// <param name="Join"><c>all</c>, <c>any</c> or <c>quorum</c>.</param>
/// <param name="Needed">Successes that complete the step.</param>
/// <param name="MaxConcurrency">Items in flight at once (foreach).</param>
/// <param name="Do">What runs per item: a step id, or <c>name@version</c> for child jobs.</param>
public sealed record PatternStart(string Kind, int Count, IReadOnlyList<string>? Labels, JsonElement? Items, string Join, int Needed, int? MaxConcurrency, string? Do);

/// <summary>One unit of a multi-phase step.</summary>
/// <param name="Kind">The step kind.</param>
/// <param name="Phase">What the unit was.</param>
/// <param name="Data">What it produced; the verdict on its artifact is added when it has one.</param>
public sealed record PatternUnit(string Kind, string Phase, JsonElement Data);

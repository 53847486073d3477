namespace Ordo.Events;

/// <summary>The names of the event types in a job's log. Every decision the runtime takes is one of these.</summary>
public static class EventTypes
{
    /// <summary>A job was accepted: its workflow, pinned definition, input and constraints.</summary>
    public const string JobSubmitted = nameof(JobSubmitted);
    /// <summary>A step visit was put on the work queue.</summary>
    public const string StepScheduled = nameof(StepScheduled);
    /// <summary>A worker took a step attempt from the queue (one per delivery).</summary>
    public const string StepStarted = nameof(StepStarted);
    /// <summary>A step attempt produced its output.</summary>
    public const string StepSucceeded = nameof(StepSucceeded);
    /// <summary>A step attempt failed; the payload says whether it will be retried.</summary>
    public const string StepFailed = nameof(StepFailed);
    /// <summary>A step was not allowed to start (policy, budget, kill switch).</summary>
    public const string StepBlocked = nameof(StepBlocked);
    /// <summary>A step's result was recorded as a named artifact, before verification.</summary>
    public const string ArtifactPut = nameof(ArtifactPut);
    /// <summary>An artifact passed its contract and gates and is visible downstream.</summary>
    public const string ArtifactVerified = nameof(ArtifactVerified);
    /// <summary>An artifact is held back (for example below its confidence threshold).</summary>
    public const string ArtifactQuarantined = nameof(ArtifactQuarantined);
    /// <summary>An artifact failed its contract and is never propagated.</summary>
    public const string ArtifactRejected = nameof(ArtifactRejected);
    /// <summary>The tool gateway accepted a tool call and is about to run it.</summary>
    public const string ToolCallRequested = nameof(ToolCallRequested);
    /// <summary>A tool call returned; the payload holds its (redacted) result.</summary>
    public const string ToolCallSucceeded = nameof(ToolCallSucceeded);
    /// <summary>A tool call failed or was refused.</summary>
    public const string ToolCallFailed = nameof(ToolCallFailed);
    /// <summary>
    /// A model call is about to be sent to its provider: recorded before the call, so that every call that reaches a
    /// provider is in the log; under a token or cost budget it is written first and holds the call's reservation.
    /// </summary>
    public const string ModelCallRequested = nameof(ModelCallRequested);
    /// <summary>A model answered; the payload holds the response and usage, for replay.</summary>
    public const string ModelCallSucceeded = nameof(ModelCallSucceeded);
    /// <summary>A model call failed.</summary>
    public const string ModelCallFailed = nameof(ModelCallFailed);
    /// <summary>A policy rule decided (allow, deny, require approval).</summary>
    public const string PolicyDecision = nameof(PolicyDecision);
    /// <summary>The job waits for a human decision.</summary>
    public const string ApprovalRequested = nameof(ApprovalRequested);
    /// <summary>A human approved or denied, or a request expired.</summary>
    public const string ApprovalDecided = nameof(ApprovalDecided);
    /// <summary>A budget (tokens, cost, tool calls, deadline) ran out.</summary>
    public const string BudgetExceeded = nameof(BudgetExceeded);
    /// <summary>A step was handed to a human instead of failing.</summary>
    public const string Escalated = nameof(Escalated);
    /// <summary>A kill switch stopped something in this job.</summary>
    public const string KillSwitchTriggered = nameof(KillSwitchTriggered);
    /// <summary>A tool's or a model tier's circuit breaker opened, half-opened or closed during a call of this job.</summary>
    public const string CircuitStateChanged = nameof(CircuitStateChanged);
    /// <summary>A coordination step (parallel, foreach, sub-workflow) started its branches, items or child job and waits for them.</summary>
    public const string PatternStarted = nameof(PatternStarted);
    /// <summary>A branch, an item or a child job of a coordination step started.</summary>
    public const string BranchStarted = nameof(BranchStarted);
    /// <summary>A branch, an item or a child job ended: succeeded, failed, or cancelled (the loser of an <c>any</c> join).</summary>
    public const string BranchEnded = nameof(BranchEnded);
    /// <summary>A multi-phase step (plan, supervise, board, auction) recorded one unit of progress: a plan, a decision, a result, a bid, a firing.</summary>
    public const string PatternProgressed = nameof(PatternProgressed);
    /// <summary>The job ended successfully.</summary>
    public const string JobCompleted = nameof(JobCompleted);
    /// <summary>The job ended in failure; the payload says why and where.</summary>
    public const string JobFailed = nameof(JobFailed);
    /// <summary>The job was cancelled.</summary>
    public const string JobCancelled = nameof(JobCancelled);
}

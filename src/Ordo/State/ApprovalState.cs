using System.Collections.Immutable;
using System.Text.Json;

namespace Ordo.State;

/// <summary>One decision on an approval.</summary>
/// <param name="By">Who decided.</param>
/// <param name="Decision"><c>approve</c>, <c>deny</c> or <c>expire</c>.</param>
/// <param name="Reason">Why.</param>
/// <param name="At">When.</param>
public sealed record ApprovalDecision(string By, string Decision, string? Reason, DateTimeOffset At);

/// <summary>A request for human approval and the decisions on it.</summary>
public sealed record ApprovalState
{
    /// <summary>The approval id.</summary>
    public required string Id { get; init; }
    /// <summary>What kind of thing waits: <c>tool_call</c>, <c>step</c>, <c>artifact</c>, <c>job_complete</c>, <c>escalation</c>, <c>budget</c>, <c>approval_step</c>.</summary>
    public required string Kind { get; init; }
    /// <summary>The role approvers must hold.</summary>
    public required string Role { get; init; }
    /// <summary>Distinct approvals needed.</summary>
    public int Count { get; init; } = 1;
    /// <summary>When it expires.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>What happens on expiry.</summary>
    public string OnExpire { get; init; } = "fail";
    /// <summary><c>pending</c>, <c>approved</c>, <c>denied</c>, <c>expired</c>, or <c>cancelled</c> (the job ended before it was decided).</summary>
    public string Status { get; init; } = "pending";
    /// <summary>The step that waits, if any.</summary>
    public string? StepId { get; init; }
    /// <summary>Its visit.</summary>
    public int? Visit { get; init; }
    /// <summary>Its attempt.</summary>
    public int? Attempt { get; init; }
    /// <summary>Its scope.</summary>
    public string? Scope { get; init; }
    /// <summary>Why approval is needed.</summary>
    public string? Reason { get; init; }
    /// <summary>The policy rule that asked for it.</summary>
    public string? Rule { get; init; }
    /// <summary>What is to be approved.</summary>
    public string? Subject { get; init; }
    /// <summary>What approvers are shown.</summary>
    public JsonElement? Show { get; init; }
    /// <summary>Whether it holds back what follows its step (see <c>ApprovalRequestedPayload.Holds</c>).</summary>
    public bool Holds { get; init; }
    /// <summary>When it was requested.</summary>
    public DateTimeOffset RequestedAt { get; init; }
    /// <summary>Decisions so far, in order.</summary>
    public ImmutableList<ApprovalDecision> Decisions { get; init; } = [];

    /// <summary>Whether it still waits for decisions.</summary>
    public bool IsPending => Status == "pending";

    /// <summary>Distinct identities that approved.</summary>
    public IEnumerable<string> Approvers => Decisions.Where(d => d.Decision == "approve").Select(d => d.By).DistinctBy(Identities.Fold, StringComparer.Ordinal);
}

/// <summary>A tool result kept in the state, for evidence and authoritative-field checks.</summary>
/// <param name="CallId">The call id.</param>
/// <param name="Result">The (redacted) result.</param>
public sealed record ToolResultRecord(string CallId, JsonElement Result);

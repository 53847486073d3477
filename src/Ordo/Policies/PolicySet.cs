using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Policies;

/// <summary>Where a policy is evaluated.</summary>
public enum PolicyPoint
{
    /// <summary>Before a step starts.</summary>
    Step,
    /// <summary>Before a tool call runs.</summary>
    ToolCall,
    /// <summary>Before an artifact is promoted to verified.</summary>
    Artifact,
    /// <summary>Before a job completes.</summary>
    JobComplete,
}

/// <summary>What a rule decides.</summary>
public enum PolicyEffect
{
    /// <summary>Go ahead.</summary>
    Allow,
    /// <summary>Stop: the step, call, artifact or completion is refused.</summary>
    Deny,
    /// <summary>Pause until a human approves.</summary>
    RequireApproval,
}

/// <summary>Who must approve, and how many of them.</summary>
/// <param name="Role">The role each approver must hold.</param>
/// <param name="Count">Distinct approvers needed.</param>
/// <param name="Expires">When the request expires.</param>
public sealed record ApprovalRequirement(string Role, int Count = 1, TimeSpan? Expires = null);

/// <summary>One rule of a policy file.</summary>
/// <param name="Id">The rule id, named in decisions.</param>
/// <param name="On">Where it applies.</param>
/// <param name="When">The condition; null always matches.</param>
/// <param name="Effect">What it decides.</param>
/// <param name="Reason">Why, for people.</param>
/// <param name="Approval">Who approves, for <see cref="PolicyEffect.RequireApproval"/>.</param>
/// <param name="Location">Where it was written.</param>
public sealed record PolicyRule(string Id, PolicyPoint On, CompiledExpression? When, PolicyEffect Effect, string? Reason, ApprovalRequirement? Approval, SourceLocation Location);

/// <summary>A policy file: a named, versioned list of rules and initial kill switches.</summary>
public sealed class PolicySet
{
    /// <summary>The policy name.</summary>
    public required string Name { get; init; }
    /// <summary>The policy version.</summary>
    public required int Version { get; init; }
    /// <summary>Rules in order.</summary>
    public IReadOnlyList<PolicyRule> Rules { get; init; } = [];
    /// <summary>Kill switches this policy sets when it is first used.</summary>
    public IReadOnlyList<string> KillSwitches { get; init; } = [];

    /// <summary><c>name@version</c>, stamped on every decision.</summary>
    public string Ref => $"{Name}@{Version}";
}

using System.Text.Json;
using Ordo.Expressions;

namespace Ordo.Policies;

/// <summary>The decision of one rule (or one C# policy).</summary>
/// <param name="Effect">What it decided.</param>
/// <param name="Rule">The rule id.</param>
/// <param name="Reason">Why.</param>
/// <param name="Policy">The policy as <c>name@version</c>.</param>
/// <param name="Approval">Who must approve, for a require_approval decision.</param>
public sealed record PolicyVerdict(PolicyEffect Effect, string Rule, string Reason, string Policy, ApprovalRequirement? Approval = null);

/// <summary>The outcome of evaluating every policy at one point: the effective decision and every rule that matched.</summary>
/// <param name="Effect">Deny if any rule denied; else require approval if any rule asked for it; else allow.</param>
/// <param name="Deciding">The rule that decided (the first deny, else the first require_approval, else the first allow), or null when no rule matched.</param>
/// <param name="Matched">Every rule that matched, in order.</param>
internal sealed record PolicyOutcome(PolicyEffect Effect, PolicyVerdict? Deciding, IReadOnlyList<PolicyVerdict> Matched)
{
    /// <summary>No rule matched: allowed.</summary>
    public static PolicyOutcome Allowed { get; } = new(PolicyEffect.Allow, null, []);
}

/// <summary>What a policy sees at one point: the expression scope (input, artifacts, job, steps) with <c>agent</c>, <c>tool</c>, <c>args</c>, <c>artifact</c> bound where they apply.</summary>
public sealed record PolicyContext(PolicyPoint Point, ExpressionScope Scope, string Subject);

/// <summary>A policy written in C#, evaluated with the rules of the policy files (after them, in registration order).</summary>
public interface IPolicy
{
    /// <summary>Decides at a point, or returns null to abstain.</summary>
    ValueTask<PolicyVerdict?> EvaluateAsync(PolicyContext context, CancellationToken cancellationToken);
}

/// <summary>
/// Evaluates policy rules in order at a point. The first deny wins over any allow; a require_approval wins over
/// allows; with no matching rule the action is allowed. A rule whose condition fails to evaluate denies (fail closed),
/// with the error as its reason.
/// </summary>
internal sealed class PolicyEngine(ExpressionEvaluator evaluator, IEnumerable<IPolicy>? codePolicies = null)
{
    private readonly IReadOnlyList<IPolicy> _code = codePolicies?.ToList() ?? [];

    /// <summary>Whether any file rule or C# policy could apply at this point (to skip work when none does).</summary>
    public bool HasRules(IReadOnlyList<PolicySet> sets, PolicyPoint point)
        => _code.Count > 0 || sets.Any(s => s.Rules.Any(r => r.On == point));

    /// <summary>Evaluates every rule of every set for the point, then the C# policies.</summary>
    public async ValueTask<PolicyOutcome> EvaluateAsync(IReadOnlyList<PolicySet> sets, PolicyContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sets);
        ArgumentNullException.ThrowIfNull(context);
        var matched = new List<PolicyVerdict>();
        foreach (var set in sets)
        {
            foreach (var rule in set.Rules)
            {
                if (rule.On != context.Point) continue;
                bool applies;
                try
                {
                    applies = rule.When is null || evaluator.EvaluateBoolean(rule.When, context.Scope);
                }
                catch (ExpressionEvaluationException e)
                {
                    matched.Add(new PolicyVerdict(PolicyEffect.Deny, rule.Id, $"the condition of rule '{rule.Id}' failed, so it denies: {e.Message}", set.Ref));
                    continue;
                }

                if (applies)
                {
                    matched.Add(new PolicyVerdict(rule.Effect, rule.Id, rule.Reason ?? $"rule '{rule.Id}'", set.Ref, rule.Approval));
                }
            }
        }

        foreach (var policy in _code)
        {
            if (await policy.EvaluateAsync(context, cancellationToken).ConfigureAwait(false) is { } verdict)
            {
                matched.Add(verdict);
            }
        }

        if (matched.Count == 0) return PolicyOutcome.Allowed;
        var deny = matched.FirstOrDefault(m => m.Effect == PolicyEffect.Deny);
        if (deny is not null) return new PolicyOutcome(PolicyEffect.Deny, deny, matched);
        var approval = matched.FirstOrDefault(m => m.Effect == PolicyEffect.RequireApproval);
        if (approval is not null) return new PolicyOutcome(PolicyEffect.RequireApproval, approval, matched);
        return new PolicyOutcome(PolicyEffect.Allow, matched[0], matched);
    }

    /// <summary>The JSON a policy sees as <c>tool</c>.</summary>
    public static JsonElement ToolJson(Tools.ToolDefinition tool)
        => Json.Of(new { name = tool.Name, kind = tool.Kind, effect = tool.EffectName });
}

using System.Text.RegularExpressions;
using Ordo.Policies;
using Ordo.Workflows.Yaml;

namespace Ordo.Workflows.Loading;

/// <summary>Loads a <c>policies.yaml</c> file into a <see cref="PolicySet"/>.</summary>
internal static partial class PolicyLoader
{
    private static readonly string[] Points = ["step", "tool_call", "artifact", "job_complete"];
    private static readonly string[] Effects = ["allow", "deny", "require_approval"];
    internal static readonly string[] SwitchKinds = ["tool", "agent", "workflow", "step"];

    public static PolicySet? Load(LoadContext ctx, string path, YNode at)
    {
        var root = ctx.LoadYaml(path, at, "policy file");
        if (root is null) return null;
        var m = YMap.Open(root.Value, ctx.Problems, "a policy file (policy, version, rules)");
        if (m is null) return null;
        var name = m.Identifier("policy", PolicyName(), "policy name (letters, digits, '-', '_', '.')", required: true);
        var version = m.Int("version", required: true, min: 1);
        var rules = new List<PolicyRule>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (m.Get("rules") is { } rn && !rn.IsNull)
        {
            if (!rn.IsSequence)
            {
                ctx.Problems.Add(rn, $"expected a list of rules, found {rn.Describe()}");
            }
            else
            {
                foreach (var item in rn.Items())
                {
                    var rule = LoadRule(ctx, item);
                    if (rule is null) continue;
                    if (!ids.Add(rule.Id))
                    {
                        ctx.Problems.Add(item, $"rule id '{rule.Id}' is used twice");
                        continue;
                    }

                    rules.Add(rule);
                }
            }
        }

        var switches = new List<string>();
        if (m.Get("kill_switches") is { } kn && !kn.IsNull)
        {
            if (!kn.IsSequence)
            {
                ctx.Problems.Add(kn, $"expected a list of kill switches like {{ tool: \"web.*\" }}, found {kn.Describe()}");
            }
            else
            {
                foreach (var item in kn.Items())
                {
                    if (KillSwitchTarget(ctx, item) is { } target) switches.Add(target);
                }
            }
        }

        m.RejectUnknown();
        return name is null || version is null ? null : new PolicySet { Name = name, Version = version.Value, Rules = rules, KillSwitches = switches };
    }

    private static PolicyRule? LoadRule(LoadContext ctx, YNode item)
    {
        var r = YMap.Open(item, ctx.Problems, "a rule ({ id, on, when, effect, reason })");
        if (r is null) return null;
        var id = r.Identifier("id", PolicyName(), "rule id", required: true);
        var on = r.Enum("on", Points, required: true);
        var when = ctx.Condition(r.Get("when"));
        var effect = r.Enum("effect", Effects, required: true);
        var reason = r.String("reason");
        ApprovalRequirement? approval = null;
        if (r.Get("approval") is { } an && !an.IsNull)
        {
            var am = YMap.Open(an, ctx.Problems, "{ role, count, expires }");
            if (am is not null)
            {
                var role = am.String("role", required: true);
                var count = am.Int("count", min: 1, max: 10) ?? 1;
                var expires = am.Duration("expires");
                am.RejectUnknown();
                if (role is not null) approval = new ApprovalRequirement(role, count, expires);
            }
        }

        r.RejectUnknown();
        if (effect == "require_approval" && approval is null && r.Get("approval") is null)
        {
            approval = new ApprovalRequirement("approver");
        }
        else if (effect != "require_approval" && r.Has("approval"))
        {
            ctx.Problems.Add(r.KeyNode("approval")!.Value, "'approval' applies only to rules with effect: require_approval");
        }

        if (id is null || on is null || effect is null) return null;
        return new PolicyRule(id, ParsePoint(on), when, ParseEffect(effect), reason, approval, new SourceLocation(item.File, item.Line, item.Column, item.Path));
    }

    /// <summary>Reads a kill switch target: <c>{ tool: "web.*" }</c> or <c>"tool:web.*"</c>.</summary>
    internal static string? KillSwitchTarget(LoadContext ctx, YNode item)
    {
        if (item.IsScalar && !item.IsNull)
        {
            var text = item.Scalar!;
            if (KillSwitches.KillSwitchTarget.TryParse(text, out _)) return text;
            ctx.Problems.Add(item, $"'{text}' is not a kill switch target (tool:NAME, agent:NAME, workflow:NAME or step:KIND; * matches any characters)");
            return null;
        }

        var k = YMap.Open(item, ctx.Problems, "a kill switch ({ tool: NAME } or { agent | workflow | step: NAME })");
        if (k is null) return null;
        var present = SwitchKinds.Where(k.Has).ToList();
        foreach (var kind in present) k.Get(kind);
        k.RejectUnknown();
        if (present.Count != 1)
        {
            ctx.Problems.Add(item, "a kill switch names exactly one of tool, agent, workflow or step");
            return null;
        }

        var value = k.Get(present[0])!.Value.Scalar;
        if (string.IsNullOrWhiteSpace(value))
        {
            ctx.Problems.Add(item, "a kill switch needs a name or pattern");
            return null;
        }

        return $"{present[0]}:{value}";
    }

    private static PolicyPoint ParsePoint(string s) => s switch
    {
        "step" => PolicyPoint.Step,
        "tool_call" => PolicyPoint.ToolCall,
        "artifact" => PolicyPoint.Artifact,
        _ => PolicyPoint.JobComplete,
    };

    private static PolicyEffect ParseEffect(string s) => s switch
    {
        "allow" => PolicyEffect.Allow,
        "deny" => PolicyEffect.Deny,
        _ => PolicyEffect.RequireApproval,
    };

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    private static partial Regex PolicyName();
}

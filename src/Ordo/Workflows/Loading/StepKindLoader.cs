using System.Globalization;
using System.Text.RegularExpressions;
using Ordo.Expressions;
using Ordo.Workflows.Yaml;

namespace Ordo.Workflows.Loading;

/// <summary>Reads the kind-specific keys of a step.</summary>
internal static partial class StepKindLoader
{
    public static StepDefinition? Load(LoadContext ctx, string kind, YMap m, string stepId) => kind switch
    {
        "agent" => Agent(ctx, m),
        "tool" => Tool(ctx, m),
        "transform" => Transform(ctx, m),
        "gate" => Gate(ctx, m),
        "approval" => Approval(ctx, m),
        "parallel" => Parallel(ctx, m),
        "foreach" => Foreach(ctx, m),
        "workflow" => SubWorkflow(ctx, m),
        "plan" => Plan(ctx, m),
        "supervise" => Supervise(ctx, m),
        "board" => Board(ctx, m, stepId),
        "auction" => Auction(ctx, m),
        _ => null,
    };

    private static AgentStep? Agent(LoadContext ctx, YMap m)
    {
        var agent = m.String("agent", required: true);
        var input = m.Get("input") is { } i ? ctx.Template(i) : null;
        return agent is null ? null : new AgentStep { Agent = agent, Input = input };
    }

    private static ToolStep? Tool(LoadContext ctx, YMap m)
    {
        var tool = m.String("tool", required: true);
        var args = m.Get("args") is { } a ? ctx.Template(a) : null;
        var output = m.String("output");
        return tool is null ? null : new ToolStep { Tool = tool, Args = args, Output = output };
    }

    private static TransformStep? Transform(LoadContext ctx, YMap m)
    {
        var t = YMap.Open(m.Get("transform")!.Value, ctx.Problems, "{ set: { name: value } }");
        if (t is null) return null;
        var setNode = t.Required("set");
        t.RejectUnknown();
        if (setNode is not { } sn) return null;
        var sm = YMap.Open(sn, ctx.Problems, "a mapping of artifact name: value");
        if (sm is null) return null;
        var set = new List<KeyValuePair<string, ValueTemplate>>();
        var keys = sm.Keys.ToList();
        foreach (var key in keys)
        {
            var v = sm.Get(key)!.Value;
            if (!WorkflowFileLoader.Identifier().IsMatch(key))
            {
                ctx.Problems.Add(sm.KeyNode(key) ?? v, $"'{key}' is not a valid artifact name");
                continue;
            }

            var tmpl = ctx.Template(v);
            if (tmpl is not null) set.Add(new(key, tmpl));
        }

        if (keys.Count == 0)
        {
            ctx.Problems.Add(sn, "transform.set needs at least one entry");
            return null;
        }

        // An entry that was not valid has its own problem reported already.
        return set.Count == keys.Count ? new TransformStep { Set = set } : null;
    }

    private static GateStep? Gate(LoadContext ctx, YMap m)
    {
        var g = YMap.Open(m.Get("gate")!.Value, ctx.Problems, "{ artifact, check, validator }");
        if (g is null) return null;
        var artifact = g.String("artifact", required: true);
        var check = ctx.Condition(g.Get("check"));
        var validator = g.String("validator");
        var onReject = g.String("on_reject") ?? m.String("on_reject") ?? Route.Fail;
        g.RejectUnknown();
        if (check is null && validator is null && g.Get("check") is null)
        {
            ctx.Problems.Add(g.Node, "a gate needs 'check', 'validator' or both");
        }

        return artifact is null ? null : new GateStep { Artifact = artifact, Check = check, Validator = validator, OnReject = onReject };
    }

    private static ApprovalStep? Approval(LoadContext ctx, YMap m)
    {
        var a = YMap.Open(m.Get("approval")!.Value, ctx.Problems, "{ role, count, expires, on_expire, show }");
        if (a is null) return null;
        var role = a.String("role", required: true);
        var count = a.Int("count", min: 1, max: 10) ?? 1;
        var expires = a.Duration("expires");
        var onExpire = a.String("on_expire") ?? Route.Fail;
        var show = a.Get("show") is { } s ? ctx.Template(s) : null;
        a.RejectUnknown();
        return role is null ? null : new ApprovalStep { Role = role, Count = count, Expires = expires, OnExpire = onExpire, Show = show };
    }

    private static ParallelStep? Parallel(LoadContext ctx, YMap m)
    {
        var branches = m.StringList("parallel", required: true);
        var join = m.String("join");
        var policyText = m.String("join_policy") ?? "all";
        var policy = ParseJoinPolicy(policyText);
        if (policy is null)
        {
            ctx.Problems.Add(m.Get("join_policy")!.Value, $"'{policyText}' is not a join policy (all, any, quorum(N))");
        }

        if (branches is { Count: 0 })
        {
            ctx.Problems.Add(m.Get("parallel")!.Value, "parallel needs at least one branch");
            return null;
        }

        return branches is null || policy is null ? null : new ParallelStep { Branches = branches, Join = join, JoinPolicy = policy };
    }

    internal static JoinPolicy? ParseJoinPolicy(string text)
    {
        var t = text.Trim();
        if (t == "all") return JoinPolicy.All;
        if (t == "any") return JoinPolicy.Any;
        var match = Quorum().Match(t);
        return match.Success && int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 ? new JoinPolicy("quorum", n) : null;
    }

    private static ForeachStep? Foreach(LoadContext ctx, YMap m)
    {
        var itemsNode = m.Get("foreach")!.Value;
        var items = ctx.Template(itemsNode);
        var doText = m.String("do", required: true);
        var maxConcurrency = m.Int("max_concurrency", min: 1, max: 10_000) ?? 8;
        if (items is null || doText is null) return null;
        if (doText.Contains('@', StringComparison.Ordinal))
        {
            var reference = ParseWorkflowReference(ctx, m.Get("do")!.Value, doText);
            return reference is null ? null : new ForeachStep { Items = items, DoWorkflow = reference, MaxConcurrency = maxConcurrency };
        }

        return new ForeachStep { Items = items, Do = doText, MaxConcurrency = maxConcurrency };
    }

    private static SubWorkflowStep? SubWorkflow(LoadContext ctx, YMap m)
    {
        var text = m.String("workflow", required: true);
        var input = m.Get("input") is { } i ? ctx.Template(i) : null;
        var reference = text is null ? null : ParseWorkflowReference(ctx, m.Get("workflow")!.Value, text);
        return reference is null ? null : new SubWorkflowStep { Workflow = reference, Input = input };
    }

    internal static WorkflowReference? ParseWorkflowReference(LoadContext ctx, YNode at, string text)
    {
        var match = WorkflowRef().Match(text.Trim());
        if (!match.Success)
        {
            ctx.Problems.Add(at, $"'{text}' is not a workflow reference (expected NAME@VERSION, like invoice-line@2)");
            return null;
        }

        return new WorkflowReference(match.Groups[1].Value, int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    private static PlanStep? Plan(LoadContext ctx, YMap m)
    {
        var p = YMap.Open(m.Get("plan")!.Value, ctx.Problems, "{ agent, catalog, max_steps, fallback }");
        if (p is null) return null;
        var agent = p.String("agent", required: true);
        var catalog = NonEmpty(ctx, p, "catalog", "agent");
        var maxSteps = p.Int("max_steps", min: 1, max: 1000) ?? 12;
        var fallback = p.String("fallback");
        var input = p.Get("input") is { } i ? ctx.Template(i) : m.Get("input") is { } si ? ctx.Template(si) : null;
        p.RejectUnknown();
        return agent is null || catalog is null ? null : new PlanStep { Agent = agent, Catalog = catalog, MaxSteps = maxSteps, Fallback = fallback, Input = input };
    }

    private static SuperviseStep? Supervise(LoadContext ctx, YMap m)
    {
        var s = YMap.Open(m.Get("supervise")!.Value, ctx.Problems, "{ agent, workers, max_rounds }");
        if (s is null) return null;
        var agent = s.String("agent", required: true);
        var workers = NonEmpty(ctx, s, "workers", "worker");
        var maxRounds = s.Int("max_rounds", min: 1, max: 1000) ?? 8;
        var input = s.Get("input") is { } i ? ctx.Template(i) : m.Get("input") is { } si ? ctx.Template(si) : null;
        s.RejectUnknown();
        return agent is null || workers is null ? null : new SuperviseStep { Agent = agent, Workers = workers, MaxRounds = maxRounds, Input = input };
    }

    private static BoardStep? Board(LoadContext ctx, YMap m, string stepId)
    {
        var b = YMap.Open(m.Get("board")!.Value, ctx.Problems, "{ rules: [ { when, run } ], until, max_firings }");
        if (b is null) return null;
        var rulesNode = b.Required("rules");
        var until = ctx.Condition(b.Required("until"));
        var maxFirings = b.Int("max_firings", min: 1, max: 100_000) ?? 50;
        b.RejectUnknown();
        var rules = new List<BoardRule>();
        var rulesOk = true;
        if (rulesNode is { } rn)
        {
            if (!rn.IsSequence || !rn.Items().Any())
            {
                ctx.Problems.Add(rn, $"expected a non-empty list of rules, found {rn.Describe()}");
            }
            else
            {
                var i = 0;
                foreach (var item in rn.Items())
                {
                    var r = YMap.Open(item, ctx.Problems, "a rule ({ when, run })");
                    if (r is null)
                    {
                        rulesOk = false;
                        continue;
                    }

                    var when = ctx.Condition(r.Required("when"));
                    var run = r.String("run", required: true);
                    var id = r.String("id") ?? $"{stepId}.rules[{i}]";
                    r.RejectUnknown();
                    if (when is not null && run is not null) rules.Add(new BoardRule(when, run, id));
                    else rulesOk = false;
                    i++;
                }
            }
        }

        // With an invalid rule the step is not kept (its problems are reported), so rules[i] always means the i-th rule written.
        return until is null || rules.Count == 0 || !rulesOk ? null : new BoardStep { Rules = rules, Until = until, MaxFirings = maxFirings };
    }

    private static AuctionStep? Auction(LoadContext ctx, YMap m)
    {
        var a = YMap.Open(m.Get("auction")!.Value, ctx.Problems, "{ bidders, task, score }");
        if (a is null) return null;
        var bidders = NonEmpty(ctx, a, "bidders", "bidder");
        var task = a.Get("task") is { } t ? ctx.Template(t) : null;
        var score = ctx.Condition(a.Required("score"));
        a.RejectUnknown();
        return bidders is null || score is null ? null : new AuctionStep { Bidders = bidders, Task = task, Score = score };
    }

    /// <summary>Reads a required list of names that must not be empty.</summary>
    private static IReadOnlyList<string>? NonEmpty(LoadContext ctx, YMap m, string key, string what)
    {
        var list = m.StringList(key, required: true);
        if (list is { Count: 0 })
        {
            ctx.Problems.Add(m.Get(key)!.Value, $"'{key}' needs at least one {what}");
            return null;
        }

        return list;
    }

    [GeneratedRegex(@"^quorum\(\s*([0-9]+)\s*\)$")]
    private static partial Regex Quorum();

    [GeneratedRegex("^([a-z0-9][a-z0-9-]*)@([0-9]+)$")]
    private static partial Regex WorkflowRef();
}

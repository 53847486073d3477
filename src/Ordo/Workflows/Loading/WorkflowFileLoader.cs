using System.Text.RegularExpressions;
using Ordo.Configuration;
using Ordo.Expressions;
using Ordo.Workflows.Yaml;

namespace Ordo.Workflows.Loading;

/// <summary>Loads a workflow file against its project.</summary>
internal static partial class WorkflowFileLoader
{
    public static readonly string[] StepKinds = ["agent", "tool", "gate", "approval", "transform", "parallel", "foreach", "workflow", "plan", "supervise", "board", "auction"];
    private static readonly string[] CommonStepKeys = ["id", "description", "next", "retry", "timeout", "accepts_quarantined", "loop", "on_failure"];
    private static readonly string[] LlmOnlyKeys = ["tier", "prompt", "max_tool_rounds"];
    private static readonly string[] KindSpecificKeys = ["input", "args", "output", "join", "join_policy", "do", "max_concurrency", "on_reject"];
    internal static readonly string[] VaryOptions = ["escalate_tier", "require_citations", "switch_tool"];

    public static async Task<WorkflowDefinition?> LoadAsync(LoadContext ctx, string path, ProjectDefinition project)
    {
        var root = ctx.LoadYaml(path, null, "workflow file");
        if (root is null) return null;
        var map = YMap.Open(root.Value, ctx.Problems, "a workflow (a mapping with 'workflow', 'version' and 'steps')");
        if (map is null) return null;
        var baseDir = Path.GetDirectoryName(path)!;

        if (map.Get("ordo") is { } formatNode && !formatNode.IsNull && (!formatNode.TryGetLong(out var format) || format != 1))
        {
            ctx.Problems.Add(formatNode, $"unsupported format version {formatNode.Describe()} (this Ordo reads 'ordo: 1')");
        }

        var name = map.Identifier("workflow", WorkflowName(), "workflow name (lowercase letters, digits and '-')", required: true);
        var version = map.Int("version", required: true, min: 1);
        var description = map.String("description");
        var input = map.Get("input") is { } inputNode && !inputNode.IsNull ? await ctx.LoadSchemaAsync(inputNode, baseDir).ConfigureAwait(false) : null;
        var constraints = LoadConstraints(ctx, map.Get("constraints"));
        var artifacts = await LoadArtifactsAsync(ctx, map.Get("artifacts"), baseDir, project).ConfigureAwait(false);
        var agents = LoadAgents(ctx, map.Get("agents"), project);
        var stepsNode = map.Required("steps");
        map.RejectUnknown();
        ctx.RejectSecrets(root.Value, "workflow files");

        var steps = new List<StepDefinition>();
        if (stepsNode is { } sn)
        {
            if (!sn.IsSequence || !sn.Items().Any())
            {
                ctx.Problems.Add(sn, $"expected a non-empty list of steps, found {sn.Describe()}");
            }
            else
            {
                var ids = new Dictionary<string, YNode>(StringComparer.Ordinal);
                foreach (var item in sn.Items())
                {
                    var step = LoadStep(ctx, item, ids);
                    if (step is not null) steps.Add(step);
                }

                var idSet = ids.Keys.ToHashSet(StringComparer.Ordinal);
                CheckReferences(ctx, steps, idSet, agents, artifacts, project);
                CheckLoops(ctx, steps, idSet);
            }
        }

        if (name is null || version is null || steps.Count == 0 || ctx.Problems.Count > 0)
        {
            return null;
        }

        return new WorkflowDefinition(name, version.Value, description, input, constraints, artifacts, agents, steps, project);
    }

    private static JobConstraints LoadConstraints(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return JobConstraints.None;
        var m = YMap.Open(n, ctx.Problems, "a mapping of constraints");
        if (m is null) return JobConstraints.None;
        var deadline = m.Duration("deadline", positive: true);
        var maxCost = m.Number("max_cost", min: 0);
        var maxTokens = m.Int("max_tokens", min: 0);
        var maxToolCalls = m.Int("max_tool_calls", min: 0);
        var onExceeded = m.Enum("on_exceeded", ["fail", "escalate"]) ?? "fail";
        var flags = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var key in m.Keys.Where(k => k.StartsWith("no_", StringComparison.Ordinal)).ToList())
        {
            if (m.Bool(key) is { } b) flags[key] = b;
        }

        m.RejectUnknown();
        return new JobConstraints
        {
            Deadline = deadline, MaxCost = maxCost is null ? null : (decimal)maxCost.Value, MaxTokens = maxTokens, MaxToolCalls = maxToolCalls,
            Flags = flags, OnExceeded = onExceeded,
        };
    }

    private static async Task<Dictionary<string, ArtifactType>> LoadArtifactsAsync(LoadContext ctx, YNode? node, string baseDir, ProjectDefinition project)
    {
        var result = new Dictionary<string, ArtifactType>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of artifact name: type");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            var an = m.Get(name)!.Value;
            if (!Identifier().IsMatch(name))
            {
                ctx.Problems.Add(m.KeyNode(name) ?? an, $"'{name}' is not a valid artifact name (letters, digits, '_', '-')");
                continue;
            }

            var a = YMap.Open(an, ctx.Problems, "an artifact type ({ schema, evidence, verify, authoritative })");
            if (a is null) continue;
            var schema = a.Get("schema") is { } s && !s.IsNull ? await ctx.LoadSchemaAsync(s, baseDir).ConfigureAwait(false) : null;
            var evidence = a.Enum("evidence", ["required", "optional"]) == "required";
            double? minConfidence = null;
            if (a.Get("verify") is { } vn && !vn.IsNull)
            {
                var vm = YMap.Open(vn, ctx.Problems, "{ min_confidence }");
                if (vm is not null)
                {
                    minConfidence = vm.Number("min_confidence", min: 0, max: 1);
                    vm.RejectUnknown();
                }
            }

            var authoritative = new Dictionary<string, string>(StringComparer.Ordinal);
            if (a.Get("authoritative") is { } aun && !aun.IsNull)
            {
                var am = YMap.Open(aun, ctx.Problems, "a mapping of field: tool");
                if (am is not null)
                {
                    foreach (var field in am.Keys.ToList())
                    {
                        var tool = am.String(field, required: true);
                        if (tool is null) continue;
                        if (!project.Tools.ContainsKey(tool))
                        {
                            ctx.Problems.Add(am.Get(field)!.Value, $"tool '{tool}' is not defined" + KnownTools(project));
                        }

                        authoritative[field] = tool;
                    }
                }
            }

            var description = a.String("description");
            a.RejectUnknown();
            result[name] = new ArtifactType { Name = name, Schema = schema, EvidenceRequired = evidence, MinConfidence = minConfidence, Authoritative = authoritative, Description = description };
        }

        return result;
    }

    private static string KnownTools(ProjectDefinition project)
        => project.Tools.Count == 0 ? " (no tools are defined: list tool files under 'tools:' in ordo.yaml)" : $" (defined: {string.Join(", ", project.Tools.Keys.Order(StringComparer.Ordinal))})";

    internal static Dictionary<string, AgentDefinition> LoadAgents(LoadContext ctx, YNode? node, ProjectDefinition project)
    {
        var result = new Dictionary<string, AgentDefinition>(StringComparer.Ordinal);
        if (node is not { } n || n.IsNull) return result;
        var m = YMap.Open(n, ctx.Problems, "a mapping of agent name: definition");
        if (m is null) return result;
        foreach (var name in m.Keys.ToList())
        {
            var an = m.Get(name)!.Value;
            if (!Identifier().IsMatch(name) || name == "done")
            {
                ctx.Problems.Add(m.KeyNode(name) ?? an, $"'{name}' is not a valid agent name (letters, digits, '_', '-'; not 'done')");
                continue;
            }

            var a = YMap.Open(an, ctx.Problems, "an agent ({ kind, version, … })");
            if (a is null) continue;
            var kindText = a.Enum("kind", ["llm", "code", "http"], required: true);
            var version = a.Int("version", min: 1) ?? 1;
            var output = a.String("output");
            var tools = a.StringList("tools") ?? [];
            if (a.Get("tools") is { } toolsNode)
            {
                // Each unknown tool is reported at its own list item (or at the value when it is a single name).
                var items = toolsNode.IsSequence ? toolsNode.Items().Where(i => i.IsScalar && !i.IsNull).ToList() : [toolsNode];
                foreach (var item in items.Where(i => i.Scalar is { } t && !project.Tools.ContainsKey(t)))
                {
                    ctx.Problems.Add(item, $"tool '{item.Scalar}' is not defined" + KnownTools(project));
                }
            }

            var critical = a.Bool("critical") ?? false;
            var description = a.String("description");
            var maxToolRounds = AgentDefinition.DefaultMaxToolRounds;
            var timeout = AgentDefinition.DefaultTimeout;
            string? tier = null, type = null, url = null;
            PromptDefinition? prompt = null;
            switch (kindText)
            {
                case "llm":
                    tier = a.String("tier") ?? "standard";
                    if (!project.Models.ContainsKey(tier))
                    {
                        ctx.Problems.Add(a.Get("tier") ?? an, project.Models.Count == 0
                            ? $"model tier '{tier}' is not configured: define it under 'models:' in ordo.yaml"
                            : $"model tier '{tier}' is not configured (defined: {string.Join(", ", project.Models.Keys.Order(StringComparer.Ordinal))})");
                    }

                    if (a.String("prompt") is { } promptName)
                    {
                        prompt = LoadPrompt(ctx, promptName, a.Get("prompt")!.Value, project);
                    }

                    maxToolRounds = (int)(a.Int("max_tool_rounds", min: 1, max: AgentDefinition.MaxToolRoundsCeiling) ?? maxToolRounds);
                    break;
                case "code":
                    type = a.String("type", required: true);
                    if (type is not null && !ctx.CodeAgentKnown(type))
                    {
                        ctx.Problems.Add(a.Get("type")!.Value, $"code agent type '{type}' is not registered (register it in C# with AddCodeAgent, or load it from a plugin listed under 'plugins:')");
                    }

                    break;
                case "http":
                    timeout = a.Duration("timeout", positive: true) ?? timeout;
                    url = a.String("url", required: true);
                    if (url is not null && !LoadContext.IsHttpUrl(url))
                    {
                        ctx.Problems.Add(a.Get("url")!.Value, $"'{url}' is not an absolute URL");
                    }

                    break;
            }

            if (kindText is null)
            {
                // Without a (valid) kind the keys of every kind are accepted; only the kind itself is reported.
                foreach (var key in new[] { "tier", "prompt", "type", "url", "max_tool_rounds", "timeout" }) a.Get(key);
            }
            else if (kindText != "llm")
            {
                foreach (var llmOnly in LlmOnlyKeys.Where(a.Has))
                {
                    a.Get(llmOnly);
                    ctx.Problems.Add(a.KeyNode(llmOnly)!.Value, $"'{llmOnly}' applies only to agents of kind llm");
                }
            }

            a.RejectUnknown();
            ctx.AgentNodes[name] = an;
            if (kindText is null) continue;
            result[name] = new AgentDefinition
            {
                Name = name, Kind = Enum.Parse<AgentKind>(kindText, ignoreCase: true), Version = version, Tier = tier, Prompt = prompt, Output = output,
                Tools = tools, Type = type, Url = url, Critical = critical, Description = description, MaxToolRounds = maxToolRounds, Timeout = timeout,
            };
        }

        return result;
    }

    private static PromptDefinition? LoadPrompt(LoadContext ctx, string name, YNode at, ProjectDefinition project)
    {
        var dir = project.PromptsDirectory ?? LoadContext.Resolve(project.BaseDirectory, "prompts");
        var path = Path.Combine(dir, name.EndsWith(".md", StringComparison.Ordinal) ? name : name + ".md");
        var content = ctx.Files.Read(path);
        if (content is null)
        {
            ctx.Problems.Add(at, $"prompt file '{ctx.Files.Display(path)}' does not exist" + (project.PromptsDirectory is null ? " (set 'prompts:' in ordo.yaml to choose the folder)" : ""));
            return null;
        }

        string? version = null;
        var body = content;
        var bodyLine = 1;
        var normalized = content.Replace("\r\n", "\n", StringComparison.Ordinal);
        if (normalized.StartsWith("---\n", StringComparison.Ordinal))
        {
            var end = normalized.IndexOf("\n---", 4, StringComparison.Ordinal);
            if (end < 0)
            {
                ctx.Problems.Add(ctx.Files.Display(path), 1, 1, "", "front matter starts with '---' but is never closed");
                return null;
            }

            // The front matter starts on the file's second line: a leading newline keeps YAML's line numbers right.
            var front = "\n" + normalized[4..end];
            var frontNode = YamlDocumentLoader.Load(ctx.Files.Display(path), front, ctx.Problems);
            if (frontNode is { } fn && !fn.IsNull)
            {
                var fm = YMap.Open(fn, ctx.Problems, "front matter (version, description)");
                if (fm is not null)
                {
                    version = fm.String("version");
                    fm.String("description");
                    fm.RejectUnknown();
                }
            }

            var afterClose = normalized.IndexOf('\n', end + 4);
            body = afterClose < 0 ? "" : normalized[(afterClose + 1)..];
            bodyLine = afterClose < 0 ? 1 : normalized.AsSpan(0, afterClose + 1).Count('\n') + 1;
        }

        if (!CheckPromptBody(ctx, ctx.Files.Display(path), body, bodyLine))
        {
            return null;
        }

        try
        {
            return new PromptDefinition
            {
                Name = name, Version = version, Hash = DefinitionBundle.HashText(content),
                Body = TextTemplate.Compile(body, ctx.Files.Display(path)),
            };
        }
        catch (Exception e) when (e is ExpressionSyntaxException or FormatException)
        {
            ctx.Problems.Add(ctx.Files.Display(path), 0, 0, "", e.Message);
            return null;
        }
    }

    /// <summary>Reports every unclosed or invalid <c>${ }</c> of a prompt body at its line and column in the prompt file.</summary>
    private static bool CheckPromptBody(LoadContext ctx, string file, string body, int firstLine)
    {
        (int Line, int Column) At(int offset)
        {
            var before = body.AsSpan(0, offset);
            var lineStart = before.LastIndexOf('\n') + 1;
            return (firstLine + before.Count('\n'), offset - lineStart + 1);
        }

        var segments = TemplateParser.Parse(body, out var error, out var errorOffset);
        if (error is not null)
        {
            var (line, column) = At(Math.Max(0, errorOffset));
            ctx.Problems.Add(file, line, column, "", error);
            return false;
        }

        var ok = true;
        foreach (var segment in segments.Where(x => x.IsExpression))
        {
            try
            {
                CompiledExpression.Compile(segment.Text.Trim());
            }
            catch (ExpressionSyntaxException e)
            {
                var (line, column) = At(segment.Offset - 2);
                ctx.Problems.Add(file, line, column, "", e.Message);
                ok = false;
            }
        }

        return ok;
    }

    private static StepDefinition? LoadStep(LoadContext ctx, YNode node, Dictionary<string, YNode> ids)
    {
        var m = YMap.Open(node, ctx.Problems, "a step (a mapping with 'id' and one kind key)");
        if (m is null) return null;
        var id = m.Identifier("id", Identifier(), "step id (letters, digits, '_', '-')", required: true);
        var unique = false;
        if (id is not null)
        {
            if (id is Route.End or Route.Fail)
            {
                ctx.Problems.Add(m.Get("id")!.Value, $"'{id}' is reserved as a route target and cannot be a step id");
            }
            else if (ids.TryGetValue(id, out var first))
            {
                ctx.Problems.Add(m.Get("id")!.Value, $"step id '{id}' is already used at line {first.Line}");
            }
            else
            {
                ids[id] = m.Get("id")!.Value;
                unique = true;
            }
        }

        var kinds = StepKinds.Where(m.Has).ToList();
        if (kinds.Count != 1)
        {
            ctx.Problems.Add(node, kinds.Count == 0
                ? $"a step needs exactly one kind key: {string.Join(", ", StepKinds)}"
                : $"a step has exactly one kind; this one has {string.Join(" and ", kinds)}");
        }

        var location = new SourceLocation(node.File, node.Line, node.Column, node.Path);
        var description = m.String("description");
        var next = LoadRoutes(ctx, m.Get("next"));
        var retry = LoadRetry(ctx, m.Get("retry"));
        var timeout = m.Duration("timeout", positive: true);
        var acceptsQuarantined = m.Bool("accepts_quarantined") ?? false;
        var onFailure = m.Enum("on_failure", ["fail", "escalate"]) == "escalate" ? FailureAction.Escalate : FailureAction.Fail;
        int? maxIterations = null;
        if (m.Get("loop") is { } ln && !ln.IsNull)
        {
            var lm = YMap.Open(ln, ctx.Problems, "{ max_iterations: N }");
            if (lm is not null)
            {
                maxIterations = lm.Int("max_iterations", required: true, min: 1, max: 1_000_000);
                lm.RejectUnknown();
            }
        }

        if (kinds.Count != 1)
        {
            // The kind is unknown: the common keys were checked; any key of any kind is accepted, and a
            // misspelled kind key (agnt:) is reported as unknown with a suggestion.
            m.RejectUnknown([.. StepKinds, .. KindSpecificKeys]);
            return null;
        }

        var before = ctx.Problems.Count;
        var step = StepKindLoader.Load(ctx, kinds[0], m, id ?? "?");
        m.RejectUnknown();
        if (step is null && ctx.Problems.Count == before)
        {
            // Never drop a step silently: a workflow without it would load and run differently.
            ctx.Problems.Add(node, $"the {kinds[0]} step is incomplete");
        }

        // A step whose id is missing, reserved or repeated is checked but not kept: ids must stay unique.
        if (step is null || id is null || !unique) return null;
        step.With(id, description, next, retry, onFailure, timeout, acceptsQuarantined, maxIterations, location);
        ctx.StepNodes[step] = node;
        return step;
    }

    internal static IReadOnlyList<Route> LoadRoutes(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return [];
        if (n.IsScalar) return [new Route(null, n.Scalar!)];
        if (!n.IsSequence)
        {
            ctx.Problems.Add(n, $"expected a step id, 'end', 'fail' or a list of {{ when, to }}, found {n.Describe()}");
            return [];
        }

        var routes = new List<Route>();
        foreach (var item in n.Items())
        {
            if (item.IsScalar)
            {
                routes.Add(new Route(null, item.Scalar!));
                continue;
            }

            var rm = YMap.Open(item, ctx.Problems, "a route ({ when, to })");
            if (rm is null) continue;
            var when = ctx.Condition(rm.Get("when"));
            var to = rm.String("to", required: true);
            rm.RejectUnknown();
            if (to is not null) routes.Add(new Route(when, to));
        }

        return routes;
    }

    private static RetryPolicy LoadRetry(LoadContext ctx, YNode? node)
    {
        if (node is not { } n || n.IsNull) return RetryPolicy.None;
        var m = YMap.Open(n, ctx.Problems, "{ max_attempts, backoff, max_backoff, vary }");
        if (m is null) return RetryPolicy.None;
        var attempts = m.Int("max_attempts", min: 1, max: 100) ?? 3;
        var backoff = m.Duration("backoff") ?? TimeSpan.FromSeconds(1);
        var maxBackoff = m.Duration("max_backoff") ?? TimeSpan.FromMinutes(5);
        var jitter = m.Bool("jitter") ?? true;
        var vary = m.StringList("vary") ?? [];
        foreach (var v in vary.Where(v => !VaryOptions.Contains(v)))
        {
            ctx.Problems.Add(m.Get("vary")!.Value, $"'{v}' is not one of: {string.Join(", ", VaryOptions)}");
        }

        m.RejectUnknown();
        if (maxBackoff < backoff)
        {
            ctx.Problems.Add(n, $"max_backoff ({Durations.Format(maxBackoff)}) is shorter than backoff ({Durations.Format(backoff)})");
        }

        return new RetryPolicy { MaxAttempts = attempts, Backoff = backoff, MaxBackoff = maxBackoff, Jitter = jitter, Vary = vary };
    }

    internal static void CheckReferences(LoadContext ctx, IReadOnlyList<StepDefinition> steps, HashSet<string> ids, Dictionary<string, AgentDefinition> agents, Dictionary<string, ArtifactType> artifacts, ProjectDefinition project)
    {
        void Problem(StepDefinition s, string key, string message)
        {
            // Point at the reference itself when the step came from a file (the closest node that exists).
            if (ctx.StepNodes.TryGetValue(s, out var stepNode))
            {
                for (var k = key; k.Length > 0; k = Parent(k))
                {
                    if (stepNode.Find(k) is { } at)
                    {
                        ctx.Problems.Add(at, message);
                        return;
                    }
                }
            }

            ctx.Problems.Add(s.Location.File, s.Location.Line, s.Location.Column, $"{(s.Location.Path.Length > 0 ? s.Location.Path : $"steps[{s.Id}]")}.{key}", message);
        }

        string RouteKey(StepDefinition s, int i)
        {
            if (ctx.StepNodes.TryGetValue(s, out var stepNode) && stepNode.Find("next") is { IsSequence: true } list)
            {
                return list.Find($"[{i}]") is { IsScalar: true } ? $"next[{i}]" : $"next[{i}].to";
            }

            return s.Next.Count == 1 && s.Next[i].When is null ? "next" : $"next[{i}].to";
        }

        string KnownSteps() => $" (steps: {string.Join(", ", steps.Select(x => x.Id))})";

        bool StepExists(StepDefinition s, string key, string target, bool allowEndFail)
        {
            if (allowEndFail && target is Route.End or Route.Fail) return true;
            if (ids.Contains(target)) return true;
            Problem(s, key, $"'{target}' is not a step" + (allowEndFail ? ", 'end' or 'fail'" : "") + KnownSteps());
            return false;
        }

        void AgentExists(StepDefinition s, string key, string agent)
        {
            // An agent that is declared but invalid was reported where it is declared.
            if (!agents.ContainsKey(agent) && !ctx.AgentNodes.ContainsKey(agent))
            {
                Problem(s, key, agents.Count == 0 ? $"agent '{agent}' is not defined (the workflow has no 'agents:')" : $"agent '{agent}' is not defined (agents: {string.Join(", ", agents.Keys)})");
            }
        }

        foreach (var agent in agents.Values.Where(a => a.Output is not null && !artifacts.ContainsKey(a.Output!)))
        {
            var close = artifacts.Keys.FirstOrDefault(k => Similar(k, agent.Output!));
            if (close is not null)
            {
                var message = $"artifact '{agent.Output}' is not declared (did you mean '{close}'?)";
                if (ctx.AgentNodes.TryGetValue(agent.Name, out var agentNode) && agentNode.Find("output") is { } at)
                {
                    ctx.Problems.Add(at, message);
                }
                else
                {
                    ctx.Problems.Add(null, 0, 0, $"agents.{agent.Name}.output", message);
                }
            }
        }

        foreach (var s in steps)
        {
            for (var i = 0; i < s.Next.Count; i++)
            {
                StepExists(s, RouteKey(s, i), s.Next[i].Target, allowEndFail: true);
            }

            switch (s)
            {
                case AgentStep a:
                    AgentExists(s, "agent", a.Agent);
                    break;
                case ToolStep t:
                    if (!project.Tools.ContainsKey(t.Tool)) Problem(s, "tool", $"tool '{t.Tool}' is not defined" + KnownTools(project));
                    if (t.Output is not null && !artifacts.ContainsKey(t.Output) && artifacts.Keys.FirstOrDefault(k => Similar(k, t.Output)) is { } close)
                        Problem(s, "output", $"artifact '{t.Output}' is not declared (did you mean '{close}'?)");
                    break;
                case GateStep g:
                    if (!artifacts.ContainsKey(g.Artifact) && !agents.Values.Any(a => a.Output == g.Artifact)) Problem(s, "gate.artifact", $"artifact '{g.Artifact}' is not declared");
                    if (g.OnReject != Route.Fail) StepExists(s, ctx.StepNodes.TryGetValue(s, out var gn) && gn.Find("gate.on_reject") is null ? "on_reject" : "gate.on_reject", g.OnReject, allowEndFail: true);
                    if (g.Validator is not null && !agents.ContainsKey(g.Validator) && !ctx.CodeAgentKnown(g.Validator))
                        Problem(s, "gate.validator", $"validator '{g.Validator}' is neither an agent of this workflow nor a registered code validator");
                    break;
                case ApprovalStep ap:
                    if (ap.OnExpire is not (Route.Fail or "approve" or "deny")) StepExists(s, "approval.on_expire", ap.OnExpire, allowEndFail: true);
                    break;
                case ParallelStep p:
                    for (var i = 0; i < p.Branches.Count; i++) StepExists(s, $"parallel[{i}]", p.Branches[i], allowEndFail: false);
                    if (p.Join is not null) StepExists(s, "join", p.Join, allowEndFail: false);
                    if (p.JoinPolicy.Mode == "quorum" && p.JoinPolicy.Quorum > p.Branches.Count)
                        Problem(s, "join_policy", $"quorum({p.JoinPolicy.Quorum}) needs at least {p.JoinPolicy.Quorum} branches; there are {p.Branches.Count}");
                    break;
                case ForeachStep f:
                    if (f.Do is not null) StepExists(s, "do", f.Do, allowEndFail: false);
                    if (f.DoWorkflow is not null && ctx.Options.WorkflowExists is { } wfExists && !wfExists(f.DoWorkflow))
                        Problem(s, "do", $"workflow '{f.DoWorkflow}' was not found beside the workflow or in ordo.yaml's 'workflows:' folders");
                    break;
                case SubWorkflowStep w:
                    if (ctx.Options.WorkflowExists is { } exists2 && !exists2(w.Workflow))
                        Problem(s, "workflow", $"workflow '{w.Workflow}' was not found beside the workflow or in ordo.yaml's 'workflows:' folders");
                    break;
                case PlanStep pl:
                    AgentExists(s, "plan.agent", pl.Agent);
                    for (var i = 0; i < pl.Catalog.Count; i++) AgentExists(s, $"plan.catalog[{i}]", pl.Catalog[i]);
                    if (pl.Fallback is not null) StepExists(s, "plan.fallback", pl.Fallback, allowEndFail: true);
                    break;
                case SuperviseStep sv:
                    AgentExists(s, "supervise.agent", sv.Agent);
                    for (var i = 0; i < sv.Workers.Count; i++) AgentExists(s, $"supervise.workers[{i}]", sv.Workers[i]);
                    break;
                case BoardStep bd:
                    for (var i = 0; i < bd.Rules.Count; i++) AgentExists(s, $"board.rules[{i}].run", bd.Rules[i].Run);
                    break;
                case AuctionStep au:
                    for (var i = 0; i < au.Bidders.Count; i++) AgentExists(s, $"auction.bidders[{i}]", au.Bidders[i]);
                    break;
            }
        }

    }

    /// <summary>The parent of a relative key path: <c>plan.catalog[1]</c> → <c>plan.catalog</c> → <c>plan</c> → empty.</summary>
    private static string Parent(string key)
    {
        var cut = Math.Max(key.LastIndexOf('.'), key.LastIndexOf('['));
        return cut <= 0 ? "" : key[..cut];
    }

    private static bool Similar(string a, string b)
    {
        if (a == b) return false;
        var la = a.Length;
        var lb = b.Length;
        if (Math.Abs(la - lb) > 2) return false;
        var d = new int[la + 1, lb + 1];
        for (var i = 0; i <= la; i++) d[i, 0] = i;
        for (var j = 0; j <= lb; j++) d[0, j] = j;
        for (var i = 1; i <= la; i++)
        for (var j = 1; j <= lb; j++)
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[la, lb] <= 2;
    }

    /// <summary>Every step that a route can reach again must declare <c>loop.max_iterations</c>.</summary>
    internal static void CheckLoops(LoadContext ctx, IReadOnlyList<StepDefinition> steps, HashSet<string> ids)
    {
        // Steps that failed to load are named in ids but have no definition: the graph holds only the loaded ones.
        var loaded = steps.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        _ = ids;
        var edges = steps.ToDictionary(s => s.Id, s => RouteTargets(s).Where(loaded.Contains).Distinct(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        foreach (var scc in StronglyConnected(steps.Select(s => s.Id).ToList(), edges))
        {
            var cyclic = scc.Count > 1 || edges[scc[0]].Contains(scc[0]);
            if (!cyclic) continue;
            foreach (var id in scc)
            {
                var s = steps.First(x => x.Id == id);
                // A loop that is declared but could not be read is reported as such, not as missing.
                var loopPath = (s.Location.Path.Length > 0 ? s.Location.Path : $"steps[{id}]") + ".loop";
                if (s.MaxIterations is null && !ctx.Problems.Items.Any(p => p.Path.StartsWith(loopPath, StringComparison.Ordinal)))
                {
                    var cycle = string.Join(" → ", scc.Append(scc[0]));
                    ctx.Problems.Add(s.Location.File, s.Location.Line, s.Location.Column, s.Location.Path.Length > 0 ? s.Location.Path : $"steps[{id}]",
                        $"step '{id}' can be reached again by a route ({cycle}) and needs 'loop: {{ max_iterations: N }}'");
                }
            }
        }
    }

    /// <summary>Every step that running <paramref name="s"/> can lead to: its routes, and the steps its kind starts.</summary>
    private static IEnumerable<string> RouteTargets(StepDefinition s)
    {
        foreach (var r in s.Next) yield return r.Target;
        switch (s)
        {
            case GateStep g: yield return g.OnReject; break;
            case ApprovalStep a when a.OnExpire is not ("approve" or "deny"): yield return a.OnExpire; break;
            case PlanStep p when p.Fallback is not null: yield return p.Fallback; break;
            case ParallelStep par:
                // A route back to a parallel step runs its branches and join again.
                foreach (var b in par.Branches) yield return b;
                if (par.Join is not null) yield return par.Join;
                break;
            case ForeachStep f when f.Do is not null: yield return f.Do; break;
        }
    }

    private static List<List<string>> StronglyConnected(List<string> nodes, Dictionary<string, List<string>> edges)
    {
        var index = 0;
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var indices = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new List<List<string>>();

        void Visit(string v)
        {
            indices[v] = low[v] = index++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in edges[v])
            {
                if (!indices.TryGetValue(w, out var wIndex))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], wIndex);
                }
            }

            if (low[v] == indices[v])
            {
                var component = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    component.Add(w);
                }
                while (w != v);
                component.Reverse();
                result.Add(component);
            }
        }

        foreach (var n in nodes.Where(n => !indices.ContainsKey(n)))
        {
            Visit(n);
        }

        return result;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]*$")]
    internal static partial Regex WorkflowName();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_-]*$")]
    internal static partial Regex Identifier();
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Configuration;
using Ordo.Expressions;
using Ordo.Schemas;
using Ordo.Workflows.Loading;

namespace Ordo.Workflows;

/// <summary>
/// Builds a workflow in C#, with the same step kinds, routes and validation as the YAML format.
/// Values may be anything JSON-serializable; strings may hold <c>${ expressions }</c>.
/// </summary>
/// <example>
/// <code>
/// var workflow = WorkflowBuilder.Create("count", 1)
///     .Step("one", s => s.Code(ctx => Json.Of(new { i = 1 })).Next("two"))
///     .Step("two", s => s.Transform("total", "${ steps.one.output.i + 1 }"))
///     .Build();
/// </code>
/// </example>
public sealed class WorkflowBuilder
{
    private readonly string _name;
    private readonly int _version;
    private readonly List<StepBuilder> _steps = [];
    private readonly Dictionary<string, ArtifactType> _artifacts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AgentDefinition> _agents = new(StringComparer.Ordinal);
    private string? _description;
    private JsonSchemaContract? _input;
    private JobConstraints _constraints = JobConstraints.None;
    private ProjectDefinition _project = ProjectDefinition.Empty(Directory.GetCurrentDirectory());

    private WorkflowBuilder(string name, int version)
    {
        _name = name;
        _version = version;
    }

    private readonly Dictionary<string, WorkflowDefinition> _subWorkflows = new(StringComparer.Ordinal);

    /// <summary>Starts a workflow.</summary>
    /// <exception cref="ArgumentException">The name is not <c>[a-z0-9-]</c> or the version is below 1.</exception>
    public static WorkflowBuilder Create(string name, int version)
    {
        if (name is null || !WorkflowFileLoader.WorkflowName().IsMatch(name))
        {
            throw new ArgumentException($"'{name}' is not a valid workflow name (lowercase letters, digits and '-').", nameof(name));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        return new WorkflowBuilder(name, version);
    }

    /// <summary>Sets the description.</summary>
    public WorkflowBuilder Describe(string description)
    {
        _description = description;
        return this;
    }

    /// <summary>Sets the JSON Schema of the job input.</summary>
    /// <exception cref="InvalidDataException">The schema is invalid.</exception>
    public WorkflowBuilder Input(string jsonSchema)
    {
        _input = JsonSchemaContract.FromJson(jsonSchema);
        return this;
    }

    /// <summary>Sets the job constraints.</summary>
    public WorkflowBuilder Constraints(JobConstraints constraints)
    {
        _constraints = constraints ?? JobConstraints.None;
        return this;
    }

    /// <summary>Declares an artifact type.</summary>
    public WorkflowBuilder Artifact(ArtifactType artifact)
    {
        ArgumentNullException.ThrowIfNull(artifact);
        _artifacts[artifact.Name] = artifact;
        return this;
    }

    /// <summary>Declares an artifact type with a JSON Schema.</summary>
    public WorkflowBuilder Artifact(string name, string? jsonSchema = null, bool evidenceRequired = false, double? minConfidence = null)
        => Artifact(new ArtifactType { Name = name, Schema = jsonSchema is null ? null : JsonSchemaContract.FromJson(jsonSchema), EvidenceRequired = evidenceRequired, MinConfidence = minConfidence });

    /// <summary>Declares an agent.</summary>
    public WorkflowBuilder Agent(AgentDefinition agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        _agents[agent.Name] = agent;
        return this;
    }

    /// <summary>Declares a code agent implemented by a registered type.</summary>
    public WorkflowBuilder CodeAgent(string name, string type, string? output = null, int version = 1)
        => Agent(new AgentDefinition { Name = name, Kind = AgentKind.Code, Type = type, Output = output, Version = version });

    /// <summary>Uses the models, tools and connections of a project (see <see cref="WorkflowLoader.LoadProjectAsync"/>).</summary>
    public WorkflowBuilder Project(ProjectDefinition project)
    {
        _project = project ?? throw new ArgumentNullException(nameof(project));
        return this;
    }

    /// <summary>Adds a step; the first step added is the entry.</summary>
    public WorkflowBuilder Step(string id, Action<StepBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var step = new StepBuilder(id);
        configure(step);
        _steps.Add(step);
        return this;
    }

    /// <summary>Adds a chain of code steps, each routed to the next; a convenience for pipelines of plain code.</summary>
    public WorkflowBuilder Chain(IEnumerable<(string Id, Func<CodeStepContext, CancellationToken, ValueTask<JsonElement>> Run)> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var list = steps.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var (id, run) = list[i];
            var next = i + 1 < list.Count ? list[i + 1].Id : null;
            Step(id, s =>
            {
                s.Code(run);
                if (next is not null) s.Next(next);
            });
        }

        return this;
    }

    /// <summary>
    /// Pins a workflow that <c>Workflow("name@version")</c> steps and <c>Foreach(…, "name@version")</c> run as child jobs
    /// (the C# counterpart of finding it beside a YAML workflow).
    /// </summary>
    public WorkflowBuilder SubWorkflow(WorkflowDefinition child)
    {
        ArgumentNullException.ThrowIfNull(child);
        _subWorkflows[child.Ref] = child;
        return this;
    }

    /// <summary>Validates and builds the workflow.</summary>
    /// <exception cref="OrdoValidationException">A reference is dangling, a loop is unbounded, an id is repeated… (every problem at once).</exception>
    public WorkflowDefinition Build(WorkflowLoadOptions? options = null)
    {
        options ??= WorkflowLoadOptions.Default;
        var ctx = new LoadContext(new PhysicalDefinitionFileSource(), options, CancellationToken.None);
        var steps = new List<StepDefinition>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in _steps)
        {
            if (!WorkflowFileLoader.Identifier().IsMatch(b.Id) || b.Id is Route.End or Route.Fail)
            {
                ctx.Problems.Add(null, 0, 0, $"steps[{b.Id}]", $"'{b.Id}' is not a valid step id");
                continue;
            }

            if (!ids.Add(b.Id))
            {
                ctx.Problems.Add(null, 0, 0, $"steps[{b.Id}]", $"step id '{b.Id}' is used twice");
                continue;
            }

            var errors = new List<string>();
            if (b.Build(errors) is { } step)
            {
                steps.Add(step);
            }

            foreach (var error in errors)
            {
                ctx.Problems.Add(null, 0, 0, $"steps[{b.Id}]", error);
            }
        }

        if (_steps.Count == 0)
        {
            ctx.Problems.Add(null, 0, 0, "steps", "a workflow needs at least one step");
        }

        CheckAgents(ctx, options);
        foreach (var step in steps)
        {
            var reference = step switch { SubWorkflowStep w => w.Workflow.ToString(), ForeachStep { DoWorkflow: { } d } => d.ToString(), _ => null };
            if (reference is not null && !_subWorkflows.ContainsKey(reference))
            {
                ctx.Problems.Add(null, 0, 0, $"steps[{step.Id}]", $"workflow '{reference}' is not pinned: add it with SubWorkflow(definition)" +
                    (_subWorkflows.Count == 0 ? "" : $" (pinned: {string.Join(", ", _subWorkflows.Keys.Order(StringComparer.Ordinal))})"));
            }
        }

        WorkflowFileLoader.CheckReferences(ctx, steps, ids, _agents, _artifacts, _project);
        WorkflowFileLoader.CheckLoops(ctx, steps, ids);
        ctx.Problems.ThrowIfAny();

        var definition = new WorkflowDefinition(_name, _version, _description, _input, _constraints, _artifacts, _agents, steps, _project)
        {
            SubWorkflows = new Dictionary<string, WorkflowDefinition>(_subWorkflows, StringComparer.Ordinal),
        };
        DefinitionBundle Bundle(bool compact) => new()
        {
            Entry = $"{_name}@{_version}",
            Root = _project.BaseDirectory,
            Files = new SortedDictionary<string, string>(StringComparer.Ordinal),
            CodeDefined = Describe(definition, compact),
        };

        definition.Bundle = Bundle(compact: true);
        definition.Hash = definition.Bundle.ComputeHash();
        // Jobs submitted by earlier builds recorded the hash of the description with its empty properties written out:
        // the same graph, so they find this definition under that hash too.
        definition.PreviousHashes = [Bundle(compact: false).ComputeHash()];
        return definition;
    }

    /// <summary>The checks the YAML loader makes on agents: model tiers, registered code types, URLs and tools.</summary>
    private void CheckAgents(LoadContext ctx, WorkflowLoadOptions options)
    {
        foreach (var agent in _agents.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            var at = $"agents.{agent.Name}";
            switch (agent.Kind)
            {
                case AgentKind.Llm when !_project.Models.ContainsKey(agent.Tier ?? "standard"):
                    ctx.Problems.Add(null, 0, 0, $"{at}.tier", $"model tier '{agent.Tier ?? "standard"}' is not configured" + (_project.Models.Count == 0
                        ? ": give the builder a project with models (WorkflowBuilder.Project)"
                        : $" (defined: {string.Join(", ", _project.Models.Keys.Order(StringComparer.Ordinal))})"));
                    break;
                case AgentKind.Code when string.IsNullOrEmpty(agent.Type):
                    ctx.Problems.Add(null, 0, 0, $"{at}.type", "a code agent needs a type");
                    break;
                case AgentKind.Code when options.CodeAgentExists is { } exists && !exists(agent.Type!):
                    ctx.Problems.Add(null, 0, 0, $"{at}.type", $"code agent type '{agent.Type}' is not registered (register it in C# with AddCodeAgent, or load it from a plugin)");
                    break;
                case AgentKind.Http when agent.Url is null || !LoadContext.IsHttpUrl(agent.Url):
                    ctx.Problems.Add(null, 0, 0, $"{at}.url", $"'{agent.Url}' is not an absolute URL");
                    break;
            }

            foreach (var tool in agent.Tools.Where(t => !_project.Tools.ContainsKey(t)))
            {
                ctx.Problems.Add(null, 0, 0, $"{at}.tools", $"tool '{tool}' is not defined");
            }
        }
    }

    /// <summary>
    /// A deterministic description of everything the definition does (but the C# code of code steps): its hash
    /// identifies it. Compact, it leaves out the properties that have no value (a step without a description, a route
    /// without a condition): stored with every job's definition, they were half of a long chain's bytes.
    /// </summary>
    private static string Describe(WorkflowDefinition d, bool compact)
    {
        static JsonArray Strings(IEnumerable<string> items) => new(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());
        static string? Ms(TimeSpan? t) => t is { } v ? Durations.Format(v) : null;

        var steps = new JsonArray();
        foreach (var s in d.Steps)
        {
            var o = new JsonObject
            {
                ["id"] = s.Id,
                ["kind"] = s.Kind,
                ["description"] = s.Description,
                ["next"] = new JsonArray(s.Next.Select(r => (JsonNode)new JsonObject { ["when"] = r.When?.Source, ["to"] = r.Target }).ToArray()),
                ["retry"] = new JsonObject
                {
                    ["max_attempts"] = s.Retry.MaxAttempts, ["backoff"] = Ms(s.Retry.Backoff), ["max_backoff"] = Ms(s.Retry.MaxBackoff),
                    ["jitter"] = s.Retry.Jitter, ["vary"] = Strings(s.Retry.Vary),
                },
                ["on_failure"] = s.OnFailure.ToString(),
                ["timeout"] = Ms(s.Timeout),
                ["accepts_quarantined"] = s.AcceptsQuarantined,
                ["max_iterations"] = s.MaxIterations,
            };
            switch (s)
            {
                case AgentStep a: o["agent"] = a.Agent; o["input"] = a.Input?.Describe(); break;
                case ToolStep t: o["tool"] = t.Tool; o["args"] = t.Args?.Describe(); o["output"] = t.Output; break;
                case CodeStep c: o["output"] = c.Output; break;
                case TransformStep tr: o["set"] = new JsonArray(tr.Set.Select(kv => (JsonNode)new JsonObject { ["name"] = kv.Key, ["value"] = kv.Value.Describe() }).ToArray()); break;
                case GateStep g: o["artifact"] = g.Artifact; o["check"] = g.Check?.Source; o["validator"] = g.Validator; o["on_reject"] = g.OnReject; break;
                case ApprovalStep ap: o["role"] = ap.Role; o["count"] = ap.Count; o["expires"] = Ms(ap.Expires); o["on_expire"] = ap.OnExpire; o["show"] = ap.Show?.Describe(); break;
                case ParallelStep p: o["branches"] = Strings(p.Branches); o["join"] = p.Join; o["join_policy"] = p.JoinPolicy.ToString(); break;
                case ForeachStep f: o["items"] = f.Items.Describe(); o["do"] = f.Do ?? f.DoWorkflow?.ToString(); o["max_concurrency"] = f.MaxConcurrency; break;
                case SubWorkflowStep w: o["workflow"] = w.Workflow.ToString(); o["input"] = w.Input?.Describe(); break;
                case PlanStep pl: o["agent"] = pl.Agent; o["catalog"] = Strings(pl.Catalog); o["max_steps"] = pl.MaxSteps; o["fallback"] = pl.Fallback; o["input"] = pl.Input?.Describe(); break;
                case SuperviseStep sv: o["agent"] = sv.Agent; o["workers"] = Strings(sv.Workers); o["max_rounds"] = sv.MaxRounds; o["input"] = sv.Input?.Describe(); break;
                case BoardStep bd:
                    o["rules"] = new JsonArray(bd.Rules.Select(r => (JsonNode)new JsonObject { ["id"] = r.Id, ["when"] = r.When.Source, ["run"] = r.Run }).ToArray());
                    o["until"] = bd.Until.Source;
                    o["max_firings"] = bd.MaxFirings;
                    break;
                case AuctionStep au: o["bidders"] = Strings(au.Bidders); o["task"] = au.Task?.Describe(); o["score"] = au.Score.Source; break;
            }

            steps.Add(o);
        }

        var agents = new JsonArray(d.Agents.Values.OrderBy(a => a.Name, StringComparer.Ordinal).Select(a => (JsonNode)new JsonObject
        {
            ["ref"] = a.Ref, ["kind"] = a.Kind.ToString(), ["tier"] = a.Tier, ["prompt"] = a.Prompt?.Hash, ["output"] = a.Output,
            ["tools"] = Strings(a.Tools), ["type"] = a.Type, ["url"] = a.Url, ["critical"] = a.Critical,
        }).ToArray());
        var artifacts = new JsonArray(d.Artifacts.Values.OrderBy(a => a.Name, StringComparer.Ordinal).Select(a => (JsonNode)new JsonObject
        {
            ["name"] = a.Name, ["schema"] = a.Schema?.Json, ["evidence_required"] = a.EvidenceRequired, ["min_confidence"] = a.MinConfidence,
            ["authoritative"] = new JsonArray(a.Authoritative.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (JsonNode)JsonValue.Create($"{kv.Key}={kv.Value}")).ToArray()),
        }).ToArray());
        var limits = d.Constraints;
        var root = new JsonObject
        {
            ["workflow"] = d.Name,
            ["version"] = d.Version,
            ["description"] = d.Description,
            ["input"] = d.InputSchema?.Json,
            ["constraints"] = new JsonObject
            {
                ["deadline"] = Ms(limits.Deadline), ["max_cost"] = limits.MaxCost, ["max_tokens"] = limits.MaxTokens, ["max_tool_calls"] = limits.MaxToolCalls,
                ["on_exceeded"] = limits.OnExceeded, ["flags"] = Strings(limits.Flags.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")),
            },
            ["steps"] = steps,
            ["agents"] = agents,
            ["artifacts"] = artifacts,
            // The full description named each sub-workflow by the hash of its own full description.
            ["sub_workflows"] = new JsonObject(d.SubWorkflows.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key,
                (JsonNode?)JsonValue.Create(compact || kv.Value.PreviousHashes.Count == 0 ? kv.Value.Hash : kv.Value.PreviousHashes[0])))),
        };
        if (compact)
        {
            // Only the description's own properties: a null inside a value the workflow gives (a template, a schema)
            // is part of that value.
            WithoutUnset(root);
            WithoutUnset((JsonObject)root["constraints"]!);
            foreach (var step in steps.Cast<JsonObject>())
            {
                WithoutUnset(step);
                WithoutUnset((JsonObject)step["retry"]!);
                foreach (var route in ((JsonArray)step["next"]!).Cast<JsonObject>()) WithoutUnset(route);
            }

            foreach (var o in agents.Concat(artifacts).Cast<JsonObject>()) WithoutUnset(o);
        }

        return root.ToJsonString();
    }

    /// <summary>Removes the properties of <paramref name="o"/> (not of the values it holds) that have no value.</summary>
    private static void WithoutUnset(JsonObject o)
    {
        foreach (var name in o.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) o.Remove(name);
    }
}

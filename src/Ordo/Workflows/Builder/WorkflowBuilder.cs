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

    /// <summary>Validates and builds the workflow.</summary>
    /// <exception cref="OrdoValidationException">A reference is dangling, a loop is unbounded, an id is repeated…</exception>
    public WorkflowDefinition Build(WorkflowLoadOptions? options = null)
    {
        var ctx = new LoadContext(new PhysicalDefinitionFileSource(), options ?? WorkflowLoadOptions.Default, CancellationToken.None);
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

            try
            {
                steps.Add(b.Build());
            }
            catch (Exception e) when (e is InvalidOperationException or ExpressionSyntaxException or FormatException)
            {
                ctx.Problems.Add(null, 0, 0, $"steps[{b.Id}]", e.Message);
            }
        }

        if (steps.Count == 0 && ctx.Problems.Count == 0)
        {
            ctx.Problems.Add(null, 0, 0, "steps", "a workflow needs at least one step");
        }

        WorkflowFileLoader.CheckReferences(ctx, steps, ids, _agents, _artifacts, _project);
        WorkflowFileLoader.CheckLoops(ctx, steps, ids);
        ctx.Problems.ThrowIfAny();

        var definition = new WorkflowDefinition(_name, _version, _description, _input, _constraints, _artifacts, _agents, steps, _project);
        var bundle = new DefinitionBundle
        {
            Entry = $"{_name}@{_version}",
            Root = _project.BaseDirectory,
            Files = new SortedDictionary<string, string>(StringComparer.Ordinal),
            CodeDefined = Describe(definition),
        };
        definition.Bundle = bundle;
        definition.Hash = bundle.ComputeHash();
        return definition;
    }

    private static string Describe(WorkflowDefinition d)
    {
        var steps = new JsonArray();
        foreach (var s in d.Steps)
        {
            var o = new JsonObject
            {
                ["id"] = s.Id,
                ["kind"] = s.Kind,
                ["next"] = new JsonArray(s.Next.Select(r => (JsonNode)new JsonObject { ["when"] = r.When?.Source, ["to"] = r.Target }).ToArray()),
                ["max_attempts"] = s.Retry.MaxAttempts,
            };
            switch (s)
            {
                case AgentStep a: o["agent"] = a.Agent; break;
                case ToolStep t: o["tool"] = t.Tool; break;
                case CodeStep c: o["output"] = c.Output; break;
            }

            steps.Add(o);
        }

        var root = new JsonObject
        {
            ["workflow"] = d.Name,
            ["version"] = d.Version,
            ["steps"] = steps,
            ["agents"] = new JsonArray(d.Agents.Values.OrderBy(a => a.Name, StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a.Ref)!).ToArray()),
            ["artifacts"] = new JsonArray(d.Artifacts.Keys.Order(StringComparer.Ordinal).Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
        };
        return root.ToJsonString();
    }
}

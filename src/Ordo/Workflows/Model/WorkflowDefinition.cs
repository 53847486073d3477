using System.Text.Json;
using Ordo.Schemas;

using Ordo.Configuration;

namespace Ordo.Workflows;

/// <summary>A validated, compiled workflow: what a job runs. Immutable and shared by all jobs pinned to it.</summary>
public sealed class WorkflowDefinition
{
    private readonly Dictionary<string, StepDefinition> _stepsById;

    /// <summary>Creates a definition; use <see cref="WorkflowLoader"/> or <see cref="WorkflowBuilder"/> rather than this constructor.</summary>
    public WorkflowDefinition(
        string name, int version, string? description, JsonSchemaContract? inputSchema, JobConstraints constraints,
        IReadOnlyDictionary<string, ArtifactType> artifacts, IReadOnlyDictionary<string, AgentDefinition> agents,
        IReadOnlyList<StepDefinition> steps, ProjectDefinition project)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Count == 0)
        {
            throw new ArgumentException("A workflow needs at least one step.", nameof(steps));
        }

        Name = name;
        Version = version;
        Description = description;
        InputSchema = inputSchema;
        Constraints = constraints;
        Artifacts = artifacts;
        Agents = agents;
        Steps = steps;
        Project = project;
        _stepsById = steps.ToDictionary(s => s.Id, StringComparer.Ordinal);
    }

    /// <summary>The workflow name (<c>[a-z0-9-]</c>).</summary>
    public string Name { get; }
    /// <summary>The version; jobs pin <c>name@version</c>.</summary>
    public int Version { get; }
    /// <summary>What the workflow does.</summary>
    public string? Description { get; }
    /// <summary>The schema job inputs are checked against at submit.</summary>
    public JsonSchemaContract? InputSchema { get; }
    /// <summary>Default constraints of its jobs.</summary>
    public JobConstraints Constraints { get; }
    /// <summary>Artifact types (contracts) by name.</summary>
    public IReadOnlyDictionary<string, ArtifactType> Artifacts { get; }
    /// <summary>Agents by name.</summary>
    public IReadOnlyDictionary<string, AgentDefinition> Agents { get; }
    /// <summary>Steps in file order; the first is the entry.</summary>
    public IReadOnlyList<StepDefinition> Steps { get; }
    /// <summary>The project around the workflow: models, tools, connections, policies.</summary>
    public ProjectDefinition Project { get; }
    /// <summary>The content hash of the stored definition (<c>sha256:…</c>), set when the definition is pinned.</summary>
    public string Hash { get; internal set; } = "";
    /// <summary>Hashes earlier builds gave the same definition (built in code), under which jobs they submitted find it.</summary>
    internal IReadOnlyList<string> PreviousHashes { get; set; } = [];
    /// <summary>The stored form that reproduces this definition.</summary>
    public DefinitionBundle? Bundle { get; internal set; }

    /// <summary><c>name@version</c>.</summary>
    public string Ref => $"{Name}@{Version}";

    /// <summary>The workflows its <c>workflow:</c> steps and <c>foreach … do: NAME@VERSION</c> run as child jobs, by <c>name@version</c>, pinned with it.</summary>
    public IReadOnlyDictionary<string, WorkflowDefinition> SubWorkflows { get; internal set; } = new Dictionary<string, WorkflowDefinition>(StringComparer.Ordinal);

    /// <summary>The record the store keeps for this definition (serialized once).</summary>
    /// <exception cref="InvalidOperationException">The definition has no stored form yet.</exception>
    internal Storage.DefinitionRecord StoredDefinition => _stored ??= Bundle is null
        ? throw new InvalidOperationException($"{Ref} has no stored form")
        : new Storage.DefinitionRecord(Hash, Name, Version, Bundle.ToBytes());

    private Storage.DefinitionRecord? _stored;

    /// <summary>The constraints as JSON (computed once), as expressions see them in <c>job.constraints</c>.</summary>
    public JsonElement ConstraintsJson => _constraintsJson ??= Constraints.ToJson();

    private JsonElement? _constraintsJson;

    /// <summary>The first step.</summary>
    public StepDefinition Entry => Steps[0];

    /// <summary>Finds a step by id.</summary>
    public StepDefinition? FindStep(string id) => _stepsById.GetValueOrDefault(id);

    /// <summary>Finds a step by id.</summary>
    /// <exception cref="KeyNotFoundException">No such step.</exception>
    public StepDefinition GetStep(string id)
        => _stepsById.TryGetValue(id, out var s) ? s : throw new KeyNotFoundException($"Workflow {Ref} has no step '{id}'.");
}

/// <summary>Limits a job runs under.</summary>
public sealed record JobConstraints
{
    /// <summary>No limits.</summary>
    public static JobConstraints None { get; } = new();

    /// <summary>Wall time from submission.</summary>
    public TimeSpan? Deadline { get; init; }
    /// <summary>Model cost in USD.</summary>
    public decimal? MaxCost { get; init; }
    /// <summary>Model tokens.</summary>
    public long? MaxTokens { get; init; }
    /// <summary>Tool calls.</summary>
    public int? MaxToolCalls { get; init; }
    /// <summary>Data boundaries (<c>no_web</c>, …), visible to policies as <c>job.constraints</c>.</summary>
    public IReadOnlyDictionary<string, bool> Flags { get; init; } = new Dictionary<string, bool>();
    /// <summary>What happens when a budget runs out: <c>fail</c> (default) or <c>escalate</c>.</summary>
    public string OnExceeded { get; init; } = "fail";

    /// <summary>The constraints as JSON, for expressions and events.</summary>
    public JsonElement ToJson()
    {
        var o = new System.Text.Json.Nodes.JsonObject();
        if (Deadline is { } d) o["deadline"] = Durations.Format(d);
        if (MaxCost is { } c) o["max_cost"] = c;
        if (MaxTokens is { } t) o["max_tokens"] = t;
        if (MaxToolCalls is { } n) o["max_tool_calls"] = n;
        foreach (var (k, v) in Flags) o[k] = v;
        return JsonElementFactory.FromNode(o);
    }
}

/// <summary>A named artifact type: the contract between the step that produces it and the steps that read it.</summary>
public sealed class ArtifactType
{
    /// <summary>The name.</summary>
    public required string Name { get; init; }
    /// <summary>The schema its values must satisfy.</summary>
    public JsonSchemaContract? Schema { get; init; }
    /// <summary>Whether a value without evidence is rejected.</summary>
    public bool EvidenceRequired { get; init; }
    /// <summary>Below this confidence a value is quarantined.</summary>
    public double? MinConfidence { get; init; }
    /// <summary>Fields that must equal what a named tool returned in the job (field → tool).</summary>
    public IReadOnlyDictionary<string, string> Authoritative { get; init; } = new Dictionary<string, string>();
    /// <summary>What it holds.</summary>
    public string? Description { get; init; }
}

/// <summary>The kinds of agents.</summary>
public enum AgentKind
{
    /// <summary>Backed by a model through <c>IChatClient</c>.</summary>
    Llm,
    /// <summary>Plain code registered in C# or loaded from a plugin.</summary>
    Code,
    /// <summary>A remote agent called over HTTP.</summary>
    Http,
}

/// <summary>An agent: a stateless worker with a versioned contract.</summary>
public sealed class AgentDefinition
{
    /// <summary>The name.</summary>
    public required string Name { get; init; }
    /// <summary>The kind.</summary>
    public required AgentKind Kind { get; init; }
    /// <summary>The version, stamped on every event it causes.</summary>
    public int Version { get; init; } = 1;
    /// <summary>The model tier (llm agents).</summary>
    public string? Tier { get; init; }
    /// <summary>The prompt (llm agents).</summary>
    public PromptDefinition? Prompt { get; init; }
    /// <summary>The artifact its output becomes, if any.</summary>
    public string? Output { get; init; }
    /// <summary>The tools it may request.</summary>
    public IReadOnlyList<string> Tools { get; init; } = [];
    /// <summary>The implementing type (code agents).</summary>
    public string? Type { get; init; }
    /// <summary>The endpoint (http agents).</summary>
    public string? Url { get; init; }
    /// <summary>Whether its outputs feed critical decisions (stricter verification).</summary>
    public bool Critical { get; init; }
    /// <summary>What it does.</summary>
    public string? Description { get; init; }
    /// <summary>
    /// For an <c>llm</c> agent with tools: the most rounds of tool calls one step may run (each round is one model answer
    /// asking for calls, and those calls). Default: <see cref="DefaultMaxToolRounds"/>.
    /// </summary>
    public int MaxToolRounds { get; init; } = DefaultMaxToolRounds;

    /// <summary>For an <c>http</c> agent: how long one call may take. Default: 60 s.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>The default of <see cref="Timeout"/>: 60 s.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The default of <see cref="MaxToolRounds"/>: 8.</summary>
    public const int DefaultMaxToolRounds = 8;

    /// <summary>The largest <c>max_tool_rounds</c> accepted: 100.</summary>
    public const int MaxToolRoundsCeiling = 100;

    /// <summary><c>name@version</c>.</summary>
    public string Ref => $"{Name}@{Version}";
}

/// <summary>A prompt file: versioned by its front matter, identified by the hash of its content.</summary>
public sealed class PromptDefinition
{
    /// <summary>The prompt name (file name without <c>.md</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The <c>version:</c> of its front matter.</summary>
    public string? Version { get; init; }
    /// <summary><c>sha256:</c> of the whole file content.</summary>
    public required string Hash { get; init; }
    /// <summary>The text after the front matter, with <c>${ … }</c> interpolation.</summary>
    public required Expressions.TextTemplate Body { get; init; }
}

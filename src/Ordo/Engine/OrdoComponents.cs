using Ordo.Agents;
using Ordo.Agents.Models;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Tools;

namespace Ordo.Engine;

/// <summary>The parts a runtime is assembled from. Defaults suit embedded use; the DI extensions fill these from the container.</summary>
public sealed class OrdoComponents
{
    /// <summary>Code agents and code tools.</summary>
    public CodeRegistry Code { get; init; } = new();

    /// <summary>Connection factories for <c>sql</c> tools (the SQLite one comes with Ordo.Sqlite).</summary>
    public IList<ISqlConnectionFactory> SqlConnections { get; init; } = [];

    /// <summary>More tool executors (by kind), beside the built-in <c>sql</c> and <c>code</c> ones.</summary>
    public IList<IToolExecutor> ToolExecutors { get; init; } = [];

    /// <summary>
    /// Handlers added to the tool gateway's pipeline, in order: they run after the gateway's own checks (tool, allowlists,
    /// arguments, kill switches, budgets, policies) and before its rate limit, cache, recording and resilience.
    /// </summary>
    public IList<Gateway.IToolCallHandler> ToolCallHandlers { get; init; } = [];

    /// <summary>
    /// The sessions with MCP servers that <c>mcp</c> tools use; null: the runtime makes its own and stops its servers when
    /// disposed (one given here is the giver's to dispose, so a host can share it with other users of <see cref="Tools.Mcp.IMcpToolCatalog"/>).
    /// </summary>
    public Tools.Mcp.McpServerPool? McpServers { get; init; }

    /// <summary>More step handlers (by kind).</summary>
    public IList<IStepHandler> StepHandlers { get; init; } = [];

    /// <summary>Creates model clients; null uses the built-in factory (scripted and OpenAI-compatible providers).</summary>
    public Func<ExpressionEvaluator, ModelClientFactory>? Models { get; init; }

    /// <summary>
    /// The HTTP client for http agents. http tools do not use it: their connections follow no redirect by themselves
    /// and refuse link-local and cloud metadata addresses when they connect (a tool executor of kind <c>http</c> in
    /// <see cref="ToolExecutors"/> replaces them).
    /// </summary>
    public HttpClient? Http { get; init; }

    /// <summary>
    /// The container's factory, whose <c>ordo-tools</c> client <c>AddOrdoHttpClients</c> registered; http tools share its
    /// connections. Null: the runtime makes its own, with the same rules.
    /// </summary>
    internal IHttpClientFactory? HttpClients { get; init; }

    /// <summary>Expression sandbox limits.</summary>
    public ExpressionOptions Expressions { get; init; } = new();

    /// <summary>Services handed to code agents and tools.</summary>
    public IServiceProvider? Services { get; init; }

    /// <summary>Policies written in C#, evaluated after the rules of the policy files.</summary>
    public IList<Policies.IPolicy> Policies { get; init; } = [];

    /// <summary>Resolves <c>${secret:NAME}</c>; the default reads the environment and the file named by <c>ORDO_SECRETS_FILE</c>.</summary>
    public Gateway.SecretResolver? Secrets { get; init; }

    /// <summary>Workflows built in code that this process can run.</summary>
    public WorkflowRegistry Workflows { get; init; } = new();
}

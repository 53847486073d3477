using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Ordo.Agents.Models;
using Ordo.Agents;
using Ordo.Engine.Commits;
using Ordo.Engine.Jobs;
using Ordo.Engine.Running;
using Ordo.Engine.Workers;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.Queue;
using Ordo.State;
using Ordo.Steps;
using Ordo.Storage;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>Options of one submission.</summary>
public sealed record SubmitOptions
{
    /// <summary>The tenant. Default: <c>default</c>.</summary>
    public string Tenant { get; init; } = "default";
    /// <summary>Who submits. Default: <c>system</c>.</summary>
    public string Submitter { get; init; } = "system";
    /// <summary>Higher runs first. Default: 0.</summary>
    public int Priority { get; init; }
    /// <summary>Where the input came from, named in validation errors. Default: <c>input</c>.</summary>
    public string InputName { get; init; } = "input";
    /// <summary>Use this id instead of a new one.</summary>
    public JobId? JobId { get; init; }
    /// <summary>
    /// Run the job in dry run: <c>write</c> and <c>irreversible</c> tool calls are recorded and skipped, in whichever
    /// process runs the job and in its child jobs. Default: false.
    /// </summary>
    public bool DryRun { get; init; }

    /// <summary>
    /// Submit a shadow job of this production job: it runs in dry run (implied), never counts toward the tenant's
    /// quotas, and ends at the first approval it would ask for instead of asking. Default: null (a production job).
    /// </summary>
    public JobId? ShadowOf { get; init; }
}

/// <summary>What a run of the workers should do.</summary>
public sealed record RunRequest
{
    /// <summary>
    /// Only work of this job's tree: the top job of the tree it belongs to and every job under that one (a child job's
    /// parent must go on when the child ends, so resuming a child resumes its tree); null for all work.
    /// </summary>
    public JobId? RootJobId { get; init; }
    /// <summary>
    /// Return when no work is left: nothing ready, waiting for its time (a retry's backoff) or leased, and no worker busy;
    /// a job waiting for a human does not keep the run going (its approval's expiry counts only once it is due).
    /// Otherwise run until cancelled.
    /// </summary>
    public bool UntilIdle { get; init; } = true;
    /// <summary>Workers for this run; null uses <see cref="OrdoRuntimeOptions.Workers"/>.</summary>
    public int? Workers { get; init; }
}

/// <summary>What a run did.</summary>
/// <param name="StepsExecuted">Step attempts executed.</param>
/// <param name="Stopped">Whether it was stopped before the work ran out.</param>
public sealed record RunSummary(long StepsExecuted, bool Stopped);

/// <summary>
/// The Ordo runtime: submits jobs, and runs workers that claim work items, execute steps and commit each step's
/// result, successors and acknowledgement in one transaction. It is assembled from parts with one job each: a
/// job client (submit, cancel, wait), approvals, a worker pool (dispatcher, workers, lease keeper), a step runner and a
/// step committer; see docs/architecture.md.
/// </summary>
/// <remarks>Thread-safe. One instance per store per process is enough; <see cref="RunAsync"/> may be called once at a time per request scope.</remarks>
public sealed class OrdoRuntime : IAsyncDisposable
{
    private readonly EngineContext _ctx;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly HttpToolExecutor _httpTools;
    private readonly Tools.Mcp.McpServerPool _mcp;
    private readonly bool _ownsMcp;
    private readonly KillSwitches.KillSwitchCache _killSwitches;
    private readonly JobClient _jobs;
    private readonly Approvals _approvals;
    private readonly WorkerPool _pool;

    /// <summary>Creates a runtime over a store.</summary>
    public OrdoRuntime(IOrdoStore store, OrdoRuntimeOptions? options = null, OrdoComponents? components = null, ILogger<OrdoRuntime>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        options ??= new OrdoRuntimeOptions();
        options.Validate();
        components ??= new OrdoComponents();
        var time = options.TimeProvider;
        _ownsHttp = components.Http is null;
        _http = components.Http ?? DefaultHttp();
        var evaluator = new ExpressionEvaluator(Microsoft.Extensions.Options.Options.Create(components.Expressions));
        var worker = WorkerIdentity.Create();
        Secrets = components.Secrets ?? new SecretResolver();
        // http tools follow no redirect by themselves and check addresses when they connect: on the container's
        // ordo-tools client when there is one (AddOrdo registers it), else on connections of their own with the same rules.
        _httpTools = components.HttpClients is { } clients ? new HttpToolExecutor(clients) : new HttpToolExecutor();
        _ownsMcp = components.McpServers is null;
        _mcp = components.McpServers ?? new Tools.Mcp.McpServerPool();
        var executors = new List<IToolExecutor> { new SqlToolExecutor(components.SqlConnections, time), new CodeToolExecutor(components.Code, components.Services), _httpTools, new Tools.Mcp.McpToolExecutor(_mcp) };
        executors.AddRange(components.ToolExecutors);
        var policyEngine = new Policies.PolicyEngine(evaluator, components.Policies);
        _killSwitches = new KillSwitches.KillSwitchCache(store, time, options.KillSwitchRefresh);
        var governance = new Governance(policyEngine, _killSwitches, time);
        var gateway = new ToolGateway(executors.GroupBy(e => e.Kind).Select(g => g.Last()), time, governance, Secrets, handlers: components.ToolCallHandlers);
        var models = components.Models?.Invoke(evaluator) ?? new ModelClientFactory(evaluator, Secrets, time);
        var agents = new AgentInvoker(components.Code, models, gateway, _http, time, components.Services, governance, _mcp);
        _ctx = new EngineContext
        {
            Store = store,
            Options = options,
            Components = components,
            Logger = (ILogger?)logger ?? NullLogger.Instance,
            Worker = worker,
            States = new JobStates(store),
            WorkAvailable = new AsyncSignal(time),
            Evaluator = evaluator,
            Governance = governance,
            Gateway = gateway,
            Agents = agents,
            Handlers = BuiltInSteps.Handlers(agents, gateway, components.Code, time, components.StepHandlers),
            Planner = new CommitPlanner(options, evaluator, new Verification.ArtifactVerifier(policyEngine), policyEngine, worker),
        };
        var commits = new JobCommits(_ctx);
        _jobs = new JobClient(_ctx, commits, _killSwitches);
        _approvals = new Approvals(_ctx, commits);
        var runner = new StepRunner(_ctx, commits, new StepCommitter(_ctx, commits), new SystemItemRunner(_ctx, commits, _jobs, _approvals));
        _pool = new WorkerPool(_ctx, runner);
    }

    /// <summary>The store.</summary>
    public IOrdoStore Store => _ctx.Store;

    /// <summary>This runtime's worker name (<c>host/pid/instance</c>): the owner of the leases it takes.</summary>
    public string Worker => _ctx.Worker;

    /// <summary>The sessions with MCP servers (started on first use), and the tools those servers offer.</summary>
    public Tools.Mcp.McpServerPool McpServers => _mcp;

    /// <summary>The expression evaluator.</summary>
    public ExpressionEvaluator Evaluator => _ctx.Evaluator;

    /// <summary>The tool gateway.</summary>
    public ToolGateway Gateway => _ctx.Gateway;

    /// <summary>Runs agents of any kind.</summary>
    public AgentInvoker Agents => _ctx.Agents;

    /// <summary>Workflows known to this process.</summary>
    public WorkflowRegistry Workflows => _ctx.Components.Workflows;

    /// <summary>Options checked against registered code when definitions are loaded.</summary>
    public WorkflowLoadOptions LoadOptions => _ctx.LoadOptions;

    /// <summary>Resolves secrets for the gateway and the model clients.</summary>
    public SecretResolver Secrets { get; }

    /// <summary>The step kinds this runtime can run.</summary>
    public IEnumerable<string> StepKinds => _ctx.Handlers.Kinds;

    /// <summary>The step kinds every runtime runs without extra handlers.</summary>
    public static IReadOnlyList<string> BuiltInStepKinds => BuiltInSteps.Kinds;

    /// <summary>Problems for the steps of a workflow that no handler can run (checked before anything is created).</summary>
    public static IReadOnlyList<ValidationProblem> UnsupportedSteps(WorkflowDefinition workflow, IEnumerable<string> kinds)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        var known = kinds.ToHashSet(StringComparer.Ordinal);
        return workflow.Steps.Where(step => !known.Contains(step.Kind)).Select(step => new ValidationProblem(
            step.Location.File, step.Location.Line, step.Location.Column, step.Location.Path.Length > 0 ? step.Location.Path : $"steps[{step.Id}]",
            $"step '{step.Id}' is a {step.Kind} step, which this runtime cannot run yet (it runs: {string.Join(", ", known.Order(StringComparer.Ordinal))})")).ToList();
    }

    /// <summary>Validates the input and creates a job: its first events and first work item, in one transaction.</summary>
    /// <exception cref="OrdoValidationException">The input does not match the workflow's input schema; nothing was created.</exception>
    /// <exception cref="QuotaExceededException">The tenant is over its quota; nothing was created.</exception>
    public Task<JobRecord> SubmitAsync(WorkflowDefinition workflow, JsonElement? input, SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        return _jobs.SubmitAsync(workflow, input, options ?? new SubmitOptions(), cancellationToken);
    }

    /// <summary>
    /// Runs workers: claims work items, executes their steps and commits the results, until no work is left
    /// (<see cref="RunRequest.UntilIdle"/>) or until cancelled. Cancelling is a graceful stop: no new step starts,
    /// running steps get <see cref="OrdoRuntimeOptions.ShutdownGrace"/> to finish, then they are interrupted and their
    /// leases released, so another worker (or <c>ordo resume</c>) picks them up without waiting for the leases to expire.
    /// </summary>
    public Task<RunSummary> RunAsync(RunRequest? request = null, CancellationToken cancellationToken = default)
        => _pool.RunAsync(request ?? new RunRequest(), cancellationToken);

    /// <summary>Waits until a job ends or pauses for a human, and returns its state. Work done by other processes is noticed by polling.</summary>
    public Task<JobState> WaitAsync(JobId jobId, CancellationToken cancellationToken = default) => _jobs.WaitAsync(jobId, cancellationToken);

    /// <summary>Reads a job's current state from the store (snapshot plus events since).</summary>
    public async Task<JobState?> GetStateAsync(JobId jobId, CancellationToken cancellationToken = default)
        => await _ctx.States.LoadAsync(jobId, cancellationToken).ConfigureAwait(false);

    /// <summary>Cancels a job: appends JobCancelled and removes its pending work; running steps stop at their commit.</summary>
    /// <returns>False when the job had already ended.</returns>
    /// <exception cref="OrdoException">The job does not exist.</exception>
    public Task<bool> CancelAsync(JobId jobId, string reason, string by, CancellationToken cancellationToken = default)
        => _jobs.CancelAsync(jobId, reason, by, cancellationToken);

    /// <summary>
    /// Records a human decision on a pending approval. An approval needs <c>count</c> distinct approvers, each holding
    /// its role (when the tenant has roles configured) and none of them the job's submitter; one deny ends it. When
    /// it is approved, the paused work is scheduled again (run <see cref="RunAsync"/> or <c>ordo resume</c> to continue);
    /// when it is denied, the job fails with the reason.
    /// </summary>
    /// <param name="jobId">The job.</param>
    /// <param name="approvalId">The approval; may be omitted when the job has exactly one pending approval.</param>
    /// <param name="identity">Who decides.</param>
    /// <param name="approve">Approve or deny.</param>
    /// <param name="reason">Why (recorded).</param>
    /// <param name="cancellationToken">Cancels the decision.</param>
    /// <exception cref="ApprovalException">The decision is not allowed; nothing was recorded.</exception>
    /// <exception cref="JobDefinitionChangedException">The job's stored definition was changed in the database: the job was failed with <c>definition_changed</c>; the decision was not recorded.</exception>
    public Task<ApprovalOutcome> DecideAsync(JobId jobId, string? approvalId, string identity, bool approve, string? reason, CancellationToken cancellationToken = default)
        => _approvals.DecideAsync(jobId, approvalId, identity, approve, reason, cancellationToken);

    /// <summary>
    /// The HTTP client of a runtime whose host gives none (for http agents): one for the runtime's life (never one per
    /// call), on the connections of http tools — no redirect followed, no cookies kept, link-local and cloud metadata
    /// addresses refused when connecting — whose pooled connections are renewed every few minutes so that DNS changes
    /// are seen.
    /// </summary>
    private static HttpClient DefaultHttp()
    {
#pragma warning disable RS0030 // This is the one place a client is made, and only when the host gives none.
        return new HttpClient(Tools.HttpToolConnections.CreateHandler(Tools.HttpAddressRules.Default, null), disposeHandler: true);
#pragma warning restore RS0030
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }

        _httpTools.Dispose();
        // Stops the MCP server processes this runtime started: none outlives it.
        if (_ownsMcp)
        {
            await _mcp.DisposeAsync().ConfigureAwait(false);
        }

        _killSwitches.Dispose();
        _ctx.Gateway.Dispose();
    }
}

using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Ordo.Agents.Models;
using Ordo.Events;
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
}

/// <summary>What a run of the workers should do.</summary>
public sealed record RunRequest
{
    /// <summary>Only work of this job and its sub-jobs; null for all work.</summary>
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
/// result, successors and acknowledgement in one transaction.
/// </summary>
/// <remarks>Thread-safe. One instance per store per process is enough; <see cref="RunAsync"/> may be called once at a time per request scope.</remarks>
public sealed partial class OrdoRuntime : IAsyncDisposable
{
    private readonly IOrdoStore _store;
    private readonly OrdoRuntimeOptions _options;
    private readonly OrdoComponents _components;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly JobStates _states;
    private readonly StepHandlers _handlers;
    private readonly AsyncSignal _workAvailable;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly KillSwitches.KillSwitchCache _killSwitches;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<JobId, TaskCompletionSource<JobState>> _watchers = new();
    private RunContext? _localRun;
    private readonly CommitLane<FinishedStep>[] _commitLanes = [.. Enumerable.Range(0, 1024).Select(_ => new CommitLane<FinishedStep>())];

    /// <summary>Creates a runtime over a store.</summary>
    public OrdoRuntime(IOrdoStore store, OrdoRuntimeOptions? options = null, OrdoComponents? components = null, ILogger<OrdoRuntime>? logger = null)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _options = options ?? new OrdoRuntimeOptions();
        _options.Validate();
        _components = components ?? new OrdoComponents();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = _options.TimeProvider;
        _states = new JobStates(store);
        _workAvailable = new AsyncSignal(_time);
        _ownsHttp = _components.Http is null;
        _http = _components.Http ?? new HttpClient();
        Evaluator = new ExpressionEvaluator(Microsoft.Extensions.Options.Options.Create(_components.Expressions));
        Worker = WorkerIdentity.Create();
        Secrets = _components.Secrets ?? new SecretResolver();
        var executors = new List<IToolExecutor> { new SqlToolExecutor(_components.SqlConnections), new CodeToolExecutor(_components.Code, _components.Services), new HttpToolExecutor(_http) };
        executors.AddRange(_components.ToolExecutors);
        var policyEngine = new Policies.PolicyEngine(Evaluator, _components.Policies);
        _killSwitches = new KillSwitches.KillSwitchCache(store, _time, _options.KillSwitchRefresh);
        Governance = new Governance(policyEngine, _killSwitches, _time);
        Gateway = new ToolGateway(executors.GroupBy(e => e.Kind).Select(g => g.Last()), _time, Governance, Secrets);
        var models = _components.Models?.Invoke(Evaluator) ?? new ModelClientFactory(Evaluator, Secrets);
        Agents = new AgentInvoker(_components.Code, models, Gateway, _http, _time, _components.Services);
        var handlers = new List<IStepHandler>
        {
            new AgentStepHandler(Agents), new ToolStepHandler(Gateway), new TransformStepHandler(), new CodeStepHandler(), new GateStepHandler(Agents, _components.Code),
            new Patterns.ApprovalStepHandler(_time), new Patterns.ParallelStepHandler(), new Patterns.ForeachStepHandler(), new Patterns.SubWorkflowStepHandler(),
            new Patterns.PlanStepHandler(Agents), new Patterns.SuperviseStepHandler(Agents), new Patterns.BoardStepHandler(Agents), new Patterns.AuctionStepHandler(Agents),
        };
        handlers.AddRange(_components.StepHandlers);
        _handlers = new StepHandlers(handlers.GroupBy(h => h.Kind).Select(g => g.Last()));
        Planner = new CommitPlanner(_options, Evaluator, new Verification.ArtifactVerifier(policyEngine), policyEngine, Worker);
    }

    /// <summary>The store.</summary>
    public IOrdoStore Store => _store;

    /// <summary>This runtime's worker name (<c>host/pid/start/instance</c>).</summary>
    public string Worker { get; }

    /// <summary>The expression evaluator.</summary>
    public ExpressionEvaluator Evaluator { get; }

    /// <summary>The tool gateway.</summary>
    public ToolGateway Gateway { get; }

    /// <summary>Runs agents of any kind.</summary>
    public AgentInvoker Agents { get; }

    /// <summary>Workflows known to this process.</summary>
    public WorkflowRegistry Workflows => _components.Workflows;

    /// <summary>Options checked against registered code when definitions are loaded.</summary>
    public WorkflowLoadOptions LoadOptions => new()
    {
        CodeAgentExists = _components.Code.HasAgent,
        CodeToolExists = _components.Code.HasTool,
        ProjectLoaded = project => _components.Code.LoadPlugins(project.Plugins),
    };

    internal CommitPlanner Planner { get; }

    internal Governance Governance { get; }

    /// <summary>Resolves secrets for the gateway and the model clients.</summary>
    public SecretResolver Secrets { get; }

    /// <summary>The step kinds this runtime can run.</summary>
    public IEnumerable<string> StepKinds => _handlers.Kinds;

    /// <summary>The step kinds every runtime runs without extra handlers.</summary>
    public static IReadOnlyList<string> BuiltInStepKinds { get; } = ["agent", "tool", "transform", "code", "gate", "approval", "parallel", "foreach", "workflow", "plan", "supervise", "board", "auction"];

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
    public async Task<JobRecord> SubmitAsync(WorkflowDefinition workflow, JsonElement? input, SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        options ??= new SubmitOptions();
        var value = input ?? JsonElementFactory.EmptyObject;
        if (workflow.InputSchema is { } schema && schema.Validate(value) is { Count: > 0 } errors)
        {
            throw new OrdoValidationException(errors.Select(e => new ValidationProblem(options.InputName, 0, 0, e.Split(':')[0], $"does not match the input schema of {workflow.Ref}: {e[(e.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()}")).ToList());
        }

        if (UnsupportedSteps(workflow, _handlers.Kinds) is { Count: > 0 } unsupported)
        {
            throw new OrdoValidationException(unsupported);
        }

        if (string.IsNullOrEmpty(workflow.Hash) || workflow.Bundle is null)
        {
            throw new ArgumentException("The definition has no stored form: build it with WorkflowBuilder or load it with WorkflowLoader.", nameof(workflow));
        }

        Register(workflow);
        var now = _time.GetUtcNow();
        var jobId = options.JobId ?? JobId.New(now);
        var traceId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        var entry = new StepRef(workflow.Entry.Id, 1, 1);

        // When this process runs workers and one is free, the entry step is created leased to it and handed over
        // directly: no claim transaction, no dispatcher round trip. Otherwise it waits in the queue like any item.
        var local = Volatile.Read(ref _localRun);
        var leaseHere = local is not null && local.HasFreeWorker;
        List<NewEvent> first =
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload(workflow.Name, workflow.Version, workflow.Hash, options.Tenant, options.Submitter, value, workflow.ConstraintsJson, null, null, traceId, options.Priority)
            {
                DryRun = options.DryRun ? true : null,
            }, now),
            EventFactory.Step(EventTypes.StepScheduled, entry, new StepScheduledPayload(workflow.Entry.Kind, "entry", null, null), now),
        ];
        if (leaseHere)
        {
            first.Add(StoreEvents.StepStarted(entry, Worker, 1, now));
        }

        var events = EventChain.Seal(jobId, 0, EventChain.GenesisHash, first);
        var initial = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
        var record = await _store.SubmitAsync(new NewJob
        {
            JobId = jobId,
            Workflow = workflow.Name,
            Version = workflow.Version,
            Tenant = options.Tenant,
            Submitter = options.Submitter,
            Definition = workflow.StoredDefinition,
            TraceId = traceId,
            Priority = options.Priority,
            CreatedAt = now,
            Events = events,
            Status = initial.Status,
            WorkItems = [leaseHere
                ? new NewWorkItem { Step = entry, AvailableAt = now, Priority = options.Priority, LeaseOwner = Worker, LeaseExpiresAt = now + _options.LeaseDuration }
                : new NewWorkItem { Step = entry, AvailableAt = now, Priority = options.Priority }],
            Quota = workflow.Project.Tenants.TryGetValue(options.Tenant, out var tenant) && (tenant.ConcurrentJobs is not null || tenant.JobsPerMinute is not null)
                ? new TenantQuota(tenant.ConcurrentJobs, tenant.JobsPerMinute)
                : null,
        }, cancellationToken).ConfigureAwait(false);
        foreach (var policy in workflow.Project.Policies.Where(p => p.KillSwitches.Count > 0))
        {
            await _store.SeedKillSwitchesAsync(policy.Ref, policy.KillSwitches.Select(t => new KillSwitches.KillSwitch(t, $"initial switch of policy {policy.Ref}", policy.Ref, now)).ToList(), cancellationToken).ConfigureAwait(false);
            _killSwitches.Invalidate();
        }

        _states.Remember(initial);
        Notify(initial, events);
        if (local is not null && record.LeasedItems.Count > 0)
        {
            var item = record.LeasedItems[0];
            local.Track(item);
            if (!local.Channel.Writer.TryWrite(new Dispatched(item, initial)))
            {
                // The run stopped or filled up meanwhile: put the item back in the queue for whoever claims next.
                await ReleaseAsync(item, local).ConfigureAwait(false);
                _workAvailable.Set();
            }
        }
        else
        {
            _workAvailable.Set();
        }

        return record;
    }

    /// <summary>Makes a definition and the sub-workflows pinned with it known to this process's workers.</summary>
    private void Register(WorkflowDefinition workflow)
    {
        _components.Workflows.Register(workflow);
        foreach (var child in workflow.SubWorkflows.Values)
        {
            Register(child);
        }
    }

    /// <summary>Reads a job's current state from the store (snapshot plus events since).</summary>
    public async Task<JobState?> GetStateAsync(JobId jobId, CancellationToken cancellationToken = default)
        => await _states.LoadAsync(jobId, cancellationToken).ConfigureAwait(false);

    /// <summary>Cancels a job: appends JobCancelled and removes its pending work; running steps stop at their commit.</summary>
    /// <returns>False when the job had already ended.</returns>
    /// <exception cref="OrdoException">The job does not exist.</exception>
    public async Task<bool> CancelAsync(JobId jobId, string reason, string by, CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < 100; i++)
        {
            var state = await _states.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
            if (state.Status.IsTerminal())
            {
                return false;
            }

            var events = EventChain.Seal(jobId, state.Seq, state.HeadHash, [EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload(reason, by), _time.GetUtcNow())]);
            var post = JobStateReducer.Apply(state, events);
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = jobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = events,
                DropPendingWork = true, Status = post.Status, Reason = post.Reason,
                NotifyJobs = WithParentNotice(ChildStops(state), post),
            }, cancellationToken).ConfigureAwait(false);
            if (result.Outcome == CommitOutcome.Committed)
            {
                _states.Remember(post);
                Notify(post, events);
                _workAvailable.Set();
                return true;
            }
        }

        throw new OrdoException($"job {jobId} kept changing while it was being cancelled; try again");
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }

        _killSwitches.Dispose();
        Gateway.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Notify(JobState state, IReadOnlyList<EventEnvelope> events)
    {
        if (IsSettled(state) && _watchers.TryGetValue(state.JobId, out var watcher))
        {
            watcher.TrySetResult(state);
        }

        foreach (var observer in _options.Observers)
        {
            try
            {
                observer.OnCommitted(state, events);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.ObserverFailed(_logger, e, state.JobId);
            }
        }
    }
}

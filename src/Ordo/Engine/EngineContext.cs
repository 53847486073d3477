using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Ordo.Agents;
using Ordo.Engine.Commits;
using Ordo.Engine.Jobs;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.State;
using Ordo.Steps;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>
/// What the parts of the engine share: the store, the options, the clock, this process's worker name and its cache of
/// job states, the signal that wakes the dispatcher, and the step machinery (handlers, governance, gateway, planner).
/// Each part (job client, dispatcher, worker pool, step runner, step committer) gets this and nothing global.
/// </summary>
internal sealed class EngineContext
{
    private readonly ConcurrentDictionary<JobId, TaskCompletionSource<JobState>> _watchers = new();

    /// <summary>The run of this process that takes work for every job, if one is running: a submission hands its entry step straight to it.</summary>
    public Workers.WorkerRun? LocalRun;

    public required IOrdoStore Store { get; init; }

    public required OrdoRuntimeOptions Options { get; init; }

    public required OrdoComponents Components { get; init; }

    public required ILogger Logger { get; init; }

    public TimeProvider Time => Options.TimeProvider;

    /// <summary>This process's worker name: the owner of every lease it takes.</summary>
    public required string Worker { get; init; }

    public required JobStates States { get; init; }

    /// <summary>Set when work may have become available (a commit enqueued some, a worker freed up, a job ended).</summary>
    public required AsyncSignal WorkAvailable { get; init; }

    public required ExpressionEvaluator Evaluator { get; init; }

    public required Governance Governance { get; init; }

    public required ToolGateway Gateway { get; init; }

    public required AgentInvoker Agents { get; init; }

    public required StepHandlers Handlers { get; init; }

    public required CommitPlanner Planner { get; init; }

    /// <summary>Options checked against registered code when stored definitions are loaded.</summary>
    public WorkflowLoadOptions LoadOptions => new()
    {
        CodeAgentExists = Components.Code.HasAgent,
        CodeToolExists = Components.Code.HasTool,
        ProjectLoaded = project => Components.Code.LoadPlugins(project.Plugins),
        SecretTooShort = Gateway.Secrets.IsTooShort,
    };

    /// <summary>The definition a job is pinned to.</summary>
    /// <exception cref="OrdoException">It is not in the store, or cannot be used in this process.</exception>
    public Task<WorkflowDefinition> DefinitionAsync(JobState state, CancellationToken cancellationToken)
        => Components.Workflows.GetAsync(Store, state.DefinitionHash, LoadOptions, cancellationToken);

    /// <summary>After a commit: the new state is remembered, announced to observers and waiters, and (when asked) the dispatcher woken.</summary>
    public void Published(JobState post, IReadOnlyList<EventEnvelope> events, long? snapshotSeq = null, bool wake = true)
    {
        States.Remember(post, snapshotSeq);
        if (IsSettled(post) && _watchers.TryGetValue(post.JobId, out var watcher))
        {
            watcher.TrySetResult(post);
        }

        foreach (var observer in Options.Observers)
        {
            try
            {
                observer.OnCommitted(post, events);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.ObserverFailed(Logger, e, post.JobId);
            }
        }

        if (wake)
        {
            WorkAvailable.Set();
        }
    }

    /// <summary>A waiter for a job's next settled state (ended, or paused for a human), seen by this process; dispose the registration when done.</summary>
    public (Task<JobState> Settled, Action Unregister) Watch(JobId jobId)
    {
        var watcher = _watchers.GetOrAdd(jobId, _ => new TaskCompletionSource<JobState>(TaskCreationOptions.RunContinuationsAsynchronously));
        return (watcher.Task, () => _watchers.TryRemove(KeyValuePair.Create(jobId, watcher)));
    }

    /// <summary>Whether a job has ended or waits for a human.</summary>
    public static bool IsSettled(JobState state) => state.Status.IsTerminal() || state.Status == JobStatus.WaitingApproval;

    /// <summary>Whether a work item is still what its job is waiting for (the job runs, and the item's step attempt is open).</summary>
    public static bool IsCurrent(JobState state, Queue.WorkItem item)
        => !state.Status.IsTerminal()
           && state.Open.TryGetValue(item.Step.WorkKey, out var open)
           && open.Attempt == item.Step.Attempt;

    /// <summary><paramref name="state"/>, or the job's state this process has seen committed since, if newer.</summary>
    public JobState NewestKnown(JobState state)
        => States.Cached(state.JobId) is { } cached && cached.Seq > state.Seq ? cached : state;
}

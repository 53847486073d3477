using Microsoft.Extensions.Logging;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine;

public sealed partial class OrdoRuntime
{
    private const int MaxCommitRetries = 50;

    /// <summary>Executes one work item and commits its result; returns the job's state after the commit and the successor leased to this worker, if any.</summary>
    private async Task<(JobState? State, WorkItem? Next)> ExecuteItemAsync(WorkItem item, JobState? known, RunContext run)
    {
        if (SystemItems.IsSystem(item.Step.StepId))
        {
            await RunSystemItemAsync(item).ConfigureAwait(false);
            return (null, null);
        }

        JobState? state;
        if (known is not null && known.JobId == item.JobId)
        {
            state = known;
        }
        else
        {
            // Events written since this process last saw the job (the claim's StepStarted, other workers' commits) reach observers too.
            var caughtUp = _options.Observers.Count > 0 ? new List<EventEnvelope>() : null;
            state = await _states.LoadAsync(item.JobId, CancellationToken.None, caughtUp).ConfigureAwait(false);
            if (state is not null && caughtUp is { Count: > 0 })
            {
                Notify(state, caughtUp);
            }
        }

        if (state is null)
        {
            RuntimeLog.OrphanItem(_logger, item.Step.WorkKey, item.JobId);
            return (null, null);
        }

        if (!IsCurrent(state, item))
        {
            await DiscardAsync(item, state).ConfigureAwait(false);
            return (state, null);
        }

        WorkflowDefinition workflow;
        try
        {
            workflow = await _components.Workflows.GetAsync(_store, state.DefinitionHash, LoadOptions, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OrdoException e)
        {
            var failure = StepOutcome.Failure("definition_unavailable", e.Message, retryable: false);
            return await CommitFailureWithoutDefinitionAsync(item, state, failure, run).ConfigureAwait(false);
        }

        var step = workflow.FindStep(item.Step.StepId);
        StepOutcome? outcome;
        var execution = new StepExecution(item, workflow, step ?? workflow.Entry, state, _options.DryRun, Evaluator, AppendNowAsync);
        var started = _time.GetTimestamp();
        if (step is null)
        {
            outcome = StepOutcome.Failure("config_error", $"workflow {workflow.Ref} has no step '{item.Step.StepId}'", retryable: false);
        }
        else if (item.Deliveries > _options.MaxDeliveries)
        {
            outcome = StepOutcome.Failure("abandoned", $"the step was handed to a worker {item.Deliveries} times without finishing (each worker stopped or died first)", retryable: false);
        }
        else if (_handlers.Find(step.Kind) is not { } handler)
        {
            outcome = StepOutcome.Failure("unsupported_step", $"step kind '{step.Kind}' cannot run in this process (handled kinds: {string.Join(", ", _handlers.Kinds)})", retryable: false);
        }
        else
        {
            outcome = await Governance.BeforeStepAsync(execution, CancellationToken.None).ConfigureAwait(false)
                ?? await RunHandlerAsync(handler, execution, step, run).ConfigureAwait(false);
            if (outcome is not null)
            {
                outcome = execution.PendingInterrupt is { } interrupt && outcome.Interrupt is null
                    ? outcome with { Interrupt = interrupt }
                    : Governance.AfterStep(execution, outcome) ?? outcome;
            }
        }

        if (outcome is null)
        {
            await ReleaseAsync(item, run).ConfigureAwait(false);
            return (null, null);
        }

        Interlocked.Increment(ref run.StepsExecuted);
        var duration = _time.GetElapsedTime(started).TotalMilliseconds;
        return await CommitOutcomeAsync(item, execution.State, workflow, outcome, execution.Events, duration, run).ConfigureAwait(false);
    }

    private static bool IsCurrent(JobState state, WorkItem item)
        => !state.Status.IsTerminal()
           && state.Open.TryGetValue(item.Step.WorkKey, out var open)
           && open.Attempt == item.Step.Attempt;

    private async Task<StepOutcome?> RunHandlerAsync(Steps.IStepHandler handler, StepExecution execution, StepDefinition step, RunContext run)
    {
        using var timeout = step.Timeout is { } t ? new CancellationTokenSource(t, _time) : null;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(run.HardStop, timeout?.Token ?? CancellationToken.None);
        try
        {
            return await handler.ExecuteAsync(execution, linked.Token).AsTask().WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout?.IsCancellationRequested == true && !run.HardStop.IsCancellationRequested)
        {
            return StepOutcome.Failure("timeout", $"the step did not finish within {Durations.Format(step.Timeout!.Value)}", retryable: true);
        }
        catch (OperationCanceledException) when (run.HardStop.IsCancellationRequested)
        {
            return null;
        }
        catch (StepAbortedException e)
        {
            RuntimeLog.StepAborted(_logger, execution.Step.WorkKey, execution.JobId, e.Message);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            RuntimeLog.StepThrew(_logger, e, execution.Step.WorkKey, execution.JobId);
            return StepOutcome.Failure("exception", $"{e.GetType().Name}: {e.Message}", retryable: true);
        }
    }

    private async Task<(JobState?, WorkItem?)> CommitOutcomeAsync(WorkItem item, JobState state, WorkflowDefinition workflow, StepOutcome outcome, IReadOnlyList<NewEvent> recorded, double durationMs, RunContext run)
    {
        // Workers of this process commit one job's steps one at a time (branches of a parallel step finish together):
        // each plans on the state the previous one committed, instead of losing a write to a conflict.
        var gate = _commitGates[(int)((uint)item.JobId.GetHashCode() % (uint)_commitGates.Length)];
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_states.Cached(item.JobId) is { } newer && newer.Seq > state.Seq)
            {
                if (!IsCurrent(newer, item))
                {
                    await DiscardAsync(item, newer).ConfigureAwait(false);
                    return (newer, null);
                }

                state = newer;
            }

            return await CommitOutcomeCoreAsync(item, state, workflow, outcome, recorded, durationMs, run).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<(JobState?, WorkItem?)> CommitOutcomeCoreAsync(WorkItem item, JobState state, WorkflowDefinition workflow, StepOutcome outcome, IReadOnlyList<NewEvent> recorded, double durationMs, RunContext run)
    {
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var plan = await Planner.PlanAsync(state, workflow, item, outcome, recorded, durationMs, run.Stopping ? 0 : _options.ClaimBatchSize, CancellationToken.None).ConfigureAwait(false);
            var sealedEvents = EventChain.Seal(item.JobId, state.Seq, state.HeadHash, plan.Events);
            var post = JobStateReducer.Apply(state, sealedEvents);
            var snapshot = _states.SnapshotDue(state, post, _options.SnapshotEvery) ? StateSnapshotCodec.Encode(post) : null;
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = item.JobId,
                ExpectedSeq = state.Seq,
                ExpectedHeadHash = state.HeadHash,
                Events = sealedEvents,
                Ack = item.Lease,
                Enqueue = plan.Enqueue,
                DropPendingWork = plan.DropPendingWork,
                DropScopes = plan.DropScopes,
                StartJobs = plan.StartJobs,
                NotifyJobs = WithParentNotice(plan.NotifyJobs, post),
                Status = post.Status,
                Reason = post.Reason,
                Snapshot = snapshot,
            }, CancellationToken.None).ConfigureAwait(false);

            switch (result.Outcome)
            {
                case CommitOutcome.Committed:
                    _states.Remember(post, snapshot?.Seq);
                    Notify(post, sealedEvents);
                    if (plan.Enqueue.Any(w => w.LeaseOwner is null) || plan.StartJobs.Count > 0 || plan.NotifyJobs.Count > 0 || (post.Status.IsTerminal() && post.ParentJobId is not null))
                    {
                        _workAvailable.Set();
                    }

                    // The first successor leased to this worker runs next on it; the others go to this process's idle workers.
                    for (var k = 1; k < result.LeasedItems.Count; k++)
                    {
                        var extra = result.LeasedItems[k];
                        run.Track(extra);
                        if (!run.Channel.Writer.TryWrite(new Dispatched(extra, post)))
                        {
                            await ReleaseAsync(extra, run).ConfigureAwait(false);
                            _workAvailable.Set();
                        }
                    }

                    return (post, result.LeasedItems.Count > 0 ? result.LeasedItems[0] : null);
                case CommitOutcome.Conflict:
                    // Another worker of this process usually made the conflicting commit: its state is cached already.
                    var reloaded = _states.Cached(item.JobId) is { } newer && newer.Seq > state.Seq
                        ? newer
                        : await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
                    if (reloaded is null || !IsCurrent(reloaded, item))
                    {
                        if (reloaded is not null)
                        {
                            await DiscardAsync(item, reloaded).ConfigureAwait(false);
                        }

                        return (reloaded, null);
                    }

                    state = reloaded;
                    continue;
                default:
                    RuntimeLog.ResultDiscarded(_logger, item.Step.WorkKey, item.JobId, result.Outcome);
                    return (null, null);
            }
        }

        throw new OrdoException($"job {item.JobId} kept changing while step {item.Step.WorkKey} was committing");
    }

    private async Task<(JobState?, WorkItem?)> CommitFailureWithoutDefinitionAsync(WorkItem item, JobState state, StepOutcome failure, RunContext run)
    {
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var now = _time.GetUtcNow();
            var events = EventChain.Seal(item.JobId, state.Seq, state.HeadHash,
            [
                EventFactory.Step(EventTypes.StepFailed, item.Step, new StepFailedPayload(failure.Error!, failure.Message!, false, false, null, 0, null), now),
                EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"step '{item.Step.StepId}' cannot run: {failure.Message}", item.Step.StepId, failure.Error), now),
            ]);
            var post = JobStateReducer.Apply(state, events);
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = item.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = events, Ack = item.Lease,
                DropPendingWork = true, Status = post.Status, Reason = post.Reason, NotifyJobs = WithParentNotice([], post),
            }, CancellationToken.None).ConfigureAwait(false);
            if (result.Outcome == CommitOutcome.Committed)
            {
                _states.Remember(post);
                Notify(post, events);
                _workAvailable.Set();
                return (post, null);
            }

            if (result.Outcome != CommitOutcome.Conflict)
            {
                return (null, null);
            }

            state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
            if (!IsCurrent(state, item))
            {
                await DiscardAsync(item, state).ConfigureAwait(false);
                return (state, null);
            }
        }

        _ = run;
        return (null, null);
    }

    /// <summary>Acknowledges a work item that has nothing left to do (a duplicate delivery, or its job ended).</summary>
    private async Task DiscardAsync(WorkItem item, JobState state)
    {
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = item.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = [], Ack = item.Lease, Status = state.Status, Reason = state.Reason,
            }, CancellationToken.None).ConfigureAwait(false);
            if (result.Outcome != CommitOutcome.Conflict)
            {
                RuntimeLog.ItemDiscarded(_logger, item.Step.WorkKey, item.JobId);
                return;
            }

            state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
        }
    }

    /// <summary>Commits events in the middle of a step (the intent of a side effect), keeping the work item leased.</summary>
    private async ValueTask<JobState> AppendNowAsync(StepExecution execution, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken)
    {
        var state = execution.State;
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var sealedEvents = EventChain.Seal(execution.JobId, state.Seq, state.HeadHash, events);
            var post = JobStateReducer.Apply(state, sealedEvents);
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = execution.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = sealedEvents,
                Ack = execution.Item.Lease, KeepWorkItem = true, Status = post.Status, Reason = post.Reason,
            }, cancellationToken).ConfigureAwait(false);
            switch (result.Outcome)
            {
                case CommitOutcome.Committed:
                    _states.Remember(post);
                    Notify(post, sealedEvents);
                    return post;
                case CommitOutcome.Conflict:
                    state = await _states.LoadAsync(execution.JobId, cancellationToken).ConfigureAwait(false) ?? throw new StepAbortedException("the job disappeared");
                    if (!IsCurrent(state, execution.Item))
                    {
                        throw new StepAbortedException(state.Status.IsTerminal() ? $"the job is {state.Status.ToWire()}" : "the step was superseded");
                    }

                    execution.AdoptState(state);
                    continue;
                default:
                    throw new StepAbortedException("another worker took the step over");
            }
        }

        throw new StepAbortedException("the job kept changing");
    }
}

/// <summary>The step must stop without committing: its lease was lost or its job ended meanwhile.</summary>
internal sealed class StepAbortedException(string message) : Exception(message);

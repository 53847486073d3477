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
    private async Task<Executed> ExecuteItemAsync(WorkItem item, JobState? known, RunContext run)
    {
        if (SystemItems.IsSystem(item.Step.StepId))
        {
            try
            {
                await RunSystemItemAsync(item).ConfigureAwait(false);
            }
            catch (DefinitionUnavailableException e)
            {
                // Handing the item back would only have it fail again at once, in this process and every like it.
                if (await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) is { } current && !current.Status.IsTerminal())
                {
                    await CommitFailureWithoutDefinitionAsync(item, current, StepOutcome.Failure("definition_unavailable", e.Message, retryable: false)).ConfigureAwait(false);
                }
            }

            return new(null, null);
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
            return new(null, null);
        }

        if (!IsCurrent(state, item))
        {
            await DiscardAsync(item, state).ConfigureAwait(false);
            return new(state, null);
        }

        WorkflowDefinition workflow;
        try
        {
            workflow = await _components.Workflows.GetAsync(_store, state.DefinitionHash, LoadOptions, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OrdoException e)
        {
            var failure = StepOutcome.Failure("definition_unavailable", e.Message, retryable: false);
            return await CommitFailureWithoutDefinitionAsync(item, state, failure).ConfigureAwait(false);
        }

        var step = workflow.FindStep(item.Step.StepId);
        StepOutcome? outcome;
        var execution = new StepExecution(item, workflow, step ?? workflow.Entry, state, _options.DryRun || state.DryRun, Evaluator, AppendNowAsync);
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
                outcome = AfterStep(execution, outcome);
            }
        }

        if (outcome is null)
        {
            await ReleaseAsync(item, run).ConfigureAwait(false);
            return new(null, null);
        }

        Interlocked.Increment(ref run.StepsExecuted);
        var duration = _time.GetElapsedTime(started).TotalMilliseconds;
        return await CommitOutcomeAsync(item, execution.State, workflow, outcome, execution.Events, duration, run).ConfigureAwait(false);
    }

    /// <summary>A step's outcome as governance leaves it: an interrupt the step raised, or the checks on its result.</summary>
    private StepOutcome AfterStep(StepExecution execution, StepOutcome outcome)
        => execution.PendingInterrupt is { } interrupt && outcome.Interrupt is null
            ? outcome with { Interrupt = interrupt }
            : Governance.AfterStep(execution, outcome) ?? outcome;

    /// <summary><paramref name="state"/>, or the job's state this process has seen committed since, if newer.</summary>
    private JobState NewestKnown(JobState state)
        => _states.Cached(state.JobId) is { } cached && cached.Seq > state.Seq ? cached : state;

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

    private async Task<Executed> CommitOutcomeAsync(WorkItem item, JobState state, WorkflowDefinition workflow, StepOutcome outcome, IReadOnlyList<NewEvent> recorded, double durationMs, RunContext run)
    {
        // Workers of this process commit one job's steps one at a time (branches of a parallel step finish together):
        // each plans on the state the previous one committed, instead of losing a write to a conflict. A worker that
        // finds the job's lane busy leaves its step to the worker holding it and moves on.
        var finished = new FinishedStep(item, state, workflow, outcome, recorded, durationMs, run);
        var lane = _commitLanes[(int)((uint)item.JobId.GetHashCode() % (uint)_commitLanes.Length)];
        if (!lane.TryEnter(finished))
        {
            return new(null, null, Queued: true);
        }

        // A step with siblings still open (a branch, a foreach item) has no successor to run next before they end: when
        // other work is waiting for this worker, the lane is written in the background and the worker goes on.
        if (state.Open.Count > 1 && run.Channel.Reader.Count > 0)
        {
            run.Detach(DrainLaneAsync(lane, finished));
            return new(null, null, Queued: true);
        }

        try
        {
            return await CommitFinishedAsync(finished).ConfigureAwait(false);
        }
        finally
        {
            await LeaveLaneAsync(lane).ConfigureAwait(false);
        }
    }

    /// <summary>Commits a step in the background, then whatever other workers leave in its lane meanwhile.</summary>
    private async Task DrainLaneAsync(CommitLane<FinishedStep> lane, FinishedStep first)
    {
        await Task.Yield();
        await CommitQueuedAsync([first, .. lane.Take()]).ConfigureAwait(false);
        await LeaveLaneAsync(lane).ConfigureAwait(false);
    }

    /// <summary>Commits what other workers left in the lane until it is empty, then frees it.</summary>
    private async Task LeaveLaneAsync(CommitLane<FinishedStep> lane)
    {
        while (lane.TakeOrLeave() is { } queued)
        {
            await CommitQueuedAsync(queued).ConfigureAwait(false);
        }
    }

    /// <summary>Commits one finished step on the newest state this process knows of its job.</summary>
    private async Task<Executed> CommitFinishedAsync(FinishedStep finished)
    {
        var (item, state) = (finished.Item, NewestKnown(finished.State));
        if (!IsCurrent(state, item))
        {
            await DiscardAsync(item, state).ConfigureAwait(false);
            return new(state, null);
        }

        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var prepared = await PrepareAsync(finished, state).ConfigureAwait(false);
            var result = await _store.CommitAsync(prepared.Commit, CancellationToken.None).ConfigureAwait(false);
            switch (result.Outcome)
            {
                case CommitOutcome.Committed:
                    var leased = await CommittedAsync(prepared, result, keepFirst: true).ConfigureAwait(false);
                    return new(prepared.Post, leased);
                case CommitOutcome.Conflict:
                    // Another worker of this process usually made the conflicting commit: its state is cached already.
                    var newer = NewestKnown(state);
                    var reloaded = newer.Seq > state.Seq ? newer : await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
                    if (reloaded is null || !IsCurrent(reloaded, item))
                    {
                        if (reloaded is not null)
                        {
                            await DiscardAsync(item, reloaded).ConfigureAwait(false);
                        }

                        return new(reloaded, null);
                    }

                    state = reloaded;
                    continue;
                default:
                    RuntimeLog.ResultDiscarded(_logger, item.Step.WorkKey, item.JobId, result.Outcome);
                    return new(null, null);
            }
        }

        throw new OrdoException($"job {item.JobId} kept changing while step {item.Step.WorkKey} was committing");
    }

    /// <summary>
    /// Commits the steps other workers left in a lane: each planned on the state the one before it leaves, all written
    /// together. A step whose commit is refused takes the one-by-one path; a step that cannot be committed at all is
    /// given back to the queue. Either way its worker has moved on, so successors leased to it go to idle workers.
    /// </summary>
    private async Task CommitQueuedAsync(List<FinishedStep> queued)
    {
        var prepared = new List<PreparedCommit>(queued.Count);
        var latest = new Dictionary<JobId, JobState>();
        var stale = new List<(FinishedStep Finished, JobState State)>();
        foreach (var finished in queued)
        {
            var jobId = finished.Item.JobId;
            var state = latest.TryGetValue(jobId, out var planned) ? planned : NewestKnown(finished.State);
            if (!IsCurrent(state, finished.Item))
            {
                stale.Add((finished, state));
                continue;
            }

            try
            {
                var p = await PrepareAsync(finished, state).ConfigureAwait(false);
                prepared.Add(p);
                latest[jobId] = p.Post;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await GiveBackAsync(finished, e).ConfigureAwait(false);
            }
        }

        IReadOnlyList<Task<CommitResult>> results;
        try
        {
            results = _store.CommitInOrder([.. prepared.Select(p => p.Commit)], CancellationToken.None);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Never leave the lane without its committer: each step is given back below.
            results = [.. prepared.Select(_ => Task.FromException<CommitResult>(e))];
        }

        for (var i = 0; i < prepared.Count; i++)
        {
            var p = prepared[i];
            try
            {
                var result = await results[i].ConfigureAwait(false);
                switch (result.Outcome)
                {
                    case CommitOutcome.Committed:
                        await CommittedAsync(p, result, keepFirst: false).ConfigureAwait(false);
                        break;
                    case CommitOutcome.Conflict:
                        var again = await CommitFinishedAsync(p.Finished).ConfigureAwait(false);
                        if (again.Next is { } next)
                        {
                            await HandOverAsync(next, again.State, p.Finished.Run).ConfigureAwait(false);
                        }

                        break;
                    default:
                        RuntimeLog.ResultDiscarded(_logger, p.Finished.Item.Step.WorkKey, p.Finished.Item.JobId, result.Outcome);
                        break;
                }

                p.Finished.Run.Untrack(p.Finished.Item);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await GiveBackAsync(p.Finished, e).ConfigureAwait(false);
            }
        }

        foreach (var (finished, state) in stale)
        {
            try
            {
                // Written after the batch: a state planned in it is committed by now, or the discard reloads.
                await DiscardAsync(finished.Item, state).ConfigureAwait(false);
                finished.Run.Untrack(finished.Item);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await GiveBackAsync(finished, e).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Plans a finished step's commit on <paramref name="state"/>: its events sealed onto the log, the state after them, a snapshot when due.</summary>
    private async Task<PreparedCommit> PrepareAsync(FinishedStep f, JobState state)
    {
        var item = f.Item;
        var plan = await Planner.PlanAsync(state, f.Workflow, item, f.Outcome, f.Recorded, f.DurationMs, f.Run.Stopping ? 0 : _options.ClaimBatchSize, CancellationToken.None).ConfigureAwait(false);
        try
        {
            plan = await StartCoordinatorInlineAsync(f, state, plan).ConfigureAwait(false) ?? plan;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Started the usual way then, as its own work item, where whatever failed here is handled like any step's failure.
            RuntimeLog.StepThrew(_logger, e, item.Step.WorkKey, item.JobId);
        }

        var sealedEvents = EventChain.Seal(item.JobId, state.Seq, state.HeadHash, plan.Events);
        // The plan's own preview is the state after its events (content does not depend on sequence numbers or hashes).
        var post = sealedEvents.Length == 0 ? state : plan.Preview(state) with { Seq = sealedEvents[^1].Seq, HeadHash = sealedEvents[^1].Hash, UpdatedAt = sealedEvents[^1].Timestamp };
        var snapshot = _states.SnapshotDue(state, post, _options.SnapshotEvery) ? StateSnapshotCodec.Encode(post) : null;
        var commit = new JobCommit
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
        };
        return new PreparedCommit(f, plan, sealedEvents, post, snapshot?.Seq, commit);
    }

    /// <summary>
    /// When the step's only successor is a <c>parallel</c> or <c>foreach</c> step leased to this worker, starts it in the same
    /// commit instead of the next one. Starting one has no effect outside the log (it evaluates the step and plans its
    /// branches), so it may run on the state this commit leads to before that state is written: if the commit is
    /// refused, both are planned again. The successor goes through the same governance, handler and planner as
    /// any step (a kill switch, a policy or a budget stops it the same way); its events follow the step's in the log,
    /// exactly as if it had been committed on its own, and its work item is never written. Returns null when the
    /// successor is not such a step or the commit does more than route to it.
    /// </summary>
    private async Task<PlannedCommit?> StartCoordinatorInlineAsync(FinishedStep f, JobState state, PlannedCommit plan)
    {
        if (plan.Enqueue.Count != 1 || plan.Enqueue[0] is not { LeaseOwner: { } owner } next || owner != Worker
            || plan.DropPendingWork || plan.DropScopes.Count > 0 || plan.StartJobs.Count > 0 || plan.NotifyJobs.Count > 0
            || f.Workflow.FindStep(next.Step.StepId) is not { } step || step is not (ParallelStep or ForeachStep) || _handlers.Find(step.Kind) is not { } handler)
        {
            return null;
        }

        var started = plan.Preview(state);
        var item = new WorkItem { JobId = f.Item.JobId, Step = next.Step, Tenant = started.Tenant, Priority = next.Priority, Deliveries = 1, Lease = default };
        var execution = new StepExecution(item, f.Workflow, step, started, _options.DryRun || started.DryRun, Evaluator, AppendNowAsync);
        var outcome = await Governance.BeforeStepAsync(execution, CancellationToken.None).ConfigureAwait(false)
            ?? await handler.ExecuteAsync(execution, CancellationToken.None).ConfigureAwait(false);
        outcome = AfterStep(execution, outcome);
        var then = await Planner.PlanAsync(started, f.Workflow, item, outcome, execution.Events, 0, plan.InlineLimit, CancellationToken.None).ConfigureAwait(false);
        Interlocked.Increment(ref f.Run.StepsExecuted);

        var merged = new PlannedCommit { InlineLimit = plan.InlineLimit, DropPendingWork = then.DropPendingWork };
        merged.Events.AddRange(plan.Events);
        merged.Events.AddRange(then.Events);
        merged.Enqueue.AddRange(then.Enqueue);
        merged.DropScopes.AddRange(then.DropScopes);
        merged.StartJobs.AddRange(then.StartJobs);
        merged.NotifyJobs.AddRange(then.NotifyJobs);
        return merged;
    }

    /// <summary>
    /// After a commit: remembers and announces the new state, and hands the successors leased to this process to its
    /// idle workers, all of them or all but the first (which the committing worker runs next, returned).
    /// </summary>
    private async Task<WorkItem?> CommittedAsync(PreparedCommit p, CommitResult result, bool keepFirst)
    {
        var (plan, post, run) = (p.Plan, p.Post, p.Finished.Run);
        _states.Remember(post, p.SnapshotSeq);
        Notify(post, p.Sealed);
        if (plan.Enqueue.Any(w => w.LeaseOwner is null) || plan.StartJobs.Count > 0 || plan.NotifyJobs.Count > 0 || (post.Status.IsTerminal() && post.ParentJobId is not null))
        {
            _workAvailable.Set();
        }

        for (var k = keepFirst ? 1 : 0; k < result.LeasedItems.Count; k++)
        {
            await HandOverAsync(result.LeasedItems[k], post, run).ConfigureAwait(false);
        }

        return keepFirst && result.LeasedItems.Count > 0 ? result.LeasedItems[0] : null;
    }

    /// <summary>Gives a work item leased to this process to its idle workers, or back to the queue when the run is closing.</summary>
    private async Task HandOverAsync(WorkItem item, JobState? state, RunContext run)
    {
        run.Track(item);
        if (!run.Channel.Writer.TryWrite(new Dispatched(item, state)))
        {
            await ReleaseAsync(item, run).ConfigureAwait(false);
            _workAvailable.Set();
        }
    }

    /// <summary>A queued step could not be committed: logged, and its item released so that it runs again.</summary>
    private async Task GiveBackAsync(FinishedStep finished, Exception e)
    {
        RuntimeLog.WorkerFailed(_logger, e, finished.Item.JobId, finished.Item.Step.WorkKey);
        await ReleaseAsync(finished.Item, finished.Run).ConfigureAwait(false);
    }

    /// <summary>A step that ran to an outcome, waiting for its commit.</summary>
    private sealed record FinishedStep(WorkItem Item, JobState State, WorkflowDefinition Workflow, StepOutcome Outcome, IReadOnlyList<NewEvent> Recorded, double DurationMs, RunContext Run);

    /// <summary>A finished step's commit, planned on a known state.</summary>
    private sealed record PreparedCommit(FinishedStep Finished, PlannedCommit Plan, IReadOnlyList<EventEnvelope> Sealed, JobState Post, long? SnapshotSeq, JobCommit Commit);

    /// <summary>What became of a work item: the job's state after its commit and the successor leased to this worker; or <see cref="Queued"/>, its commit left to the worker holding the job's lane.</summary>
    private readonly record struct Executed(JobState? State, WorkItem? Next, bool Queued = false);

    private async Task<Executed> CommitFailureWithoutDefinitionAsync(WorkItem item, JobState state, StepOutcome failure)
    {
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var now = _time.GetUtcNow();
            var system = SystemItems.IsSystem(item.Step.StepId);
            List<NewEvent> failed = system
                ? [EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"the job cannot continue: {failure.Message}", null, failure.Error), now)]
                :
                [
                    EventFactory.Step(EventTypes.StepFailed, item.Step, new StepFailedPayload(failure.Error!, failure.Message!, false, false, null, 0, null), now),
                    EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"step '{item.Step.StepId}' cannot run: {failure.Message}", item.Step.StepId, failure.Error), now),
                ];
            var events = EventChain.Seal(item.JobId, state.Seq, state.HeadHash, failed);
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
                return new(post, null);
            }

            if (result.Outcome != CommitOutcome.Conflict)
            {
                return new(null, null);
            }

            state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
            if (!IsCurrent(state, item))
            {
                await DiscardAsync(item, state).ConfigureAwait(false);
                return new(state, null);
            }
        }

        return new(null, null);
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

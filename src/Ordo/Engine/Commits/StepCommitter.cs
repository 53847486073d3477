using Ordo.Engine.Running;
using Ordo.Engine.Workers;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine.Commits;

/// <summary>A step that ran to an outcome, waiting for its commit.</summary>
/// <remarks><see cref="Span"/> is the context of the step attempt's span (default when none was recorded): the events its commit plans are stamped with it.</remarks>
internal sealed record FinishedStep(WorkItem Item, JobState State, WorkflowDefinition Workflow, StepOutcome Outcome, IReadOnlyList<NewEvent> Recorded, double DurationMs, WorkerRun Run)
{
    public System.Diagnostics.ActivityContext Span { get; init; }
}

/// <summary>A finished step's commit, planned on a known state; <c>Promised</c>: the successors this process promised itself for it (<see cref="Workers.WorkerRun.PromiseInline"/>) until they are handed over.</summary>
internal sealed record PreparedCommit(FinishedStep Finished, PlannedCommit Plan, IReadOnlyList<EventEnvelope> Sealed, JobState Post, long? SnapshotSeq, JobCommit Commit, int Promised)
{
    /// <summary>The steps the commit writes: the finished one and the pure steps run with it (<see cref="PureStepGroups"/>).</summary>
    public int Steps { get; init; } = 1;
}

/// <summary>
/// What became of a work item: the job's state after its commit and the successor leased to this worker; or
/// <see cref="Queued"/>, its commit left to the worker holding the job's lane. With <see cref="Pending"/>, the commit is
/// still being written: <see cref="State"/> is the state it leads to and <see cref="Next"/> the successor it leases,
/// without its lease yet (see <see cref="EarlyStart"/>); <see cref="Pending"/> gives the leased item once it is
/// written, or null when the successor must not run here after all.
/// </summary>
/// <remarks>
/// <see cref="After"/>, with <see cref="Pending"/>: the commit before the one being written, when that one was itself sent
/// ahead (<see cref="StepCommitter.CommitAheadAsync"/>): once it is written, the commit being written holds the job's
/// row at the store, and the successor's own commit may be sent ahead behind it. <see cref="Steps"/>: the steps the commit
/// writes, the one run and the pure steps run with it (<see cref="PureStepGroups"/>).
/// </remarks>
internal readonly record struct Executed(JobState? State, WorkItem? Next, bool Queued = false, Task<WorkItem?>? Pending = null, Task<WorkItem?>? After = null, int Steps = 1);

/// <summary>
/// A successor started while the commit that leases it is being written (<see cref="OrdoRuntimeOptions.StartStepsEarly"/>):
/// when the commit is planned, <see cref="Started"/> gives the worker the state it leads to and the successor to run;
/// when it is written, <see cref="Confirmed"/> gives the successor's leased item, or null (the commit was refused or
/// planned again, and its successor, if any, went to the queue): the step that started early is then dropped unwritten.
/// </summary>
internal sealed class EarlyStart
{
    private readonly TaskCompletionSource<(JobState Post, WorkItem Next, int Steps)> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Completed last by the commit's writer, whose work is done then: the step waiting for it continues on its thread.
    private readonly TaskCompletionSource<WorkItem?> _confirmed = new();
    private WorkItem? _next;

    /// <summary>Completed when the successor may start.</summary>
    public Task<(JobState Post, WorkItem Next, int Steps)> Started => _started.Task;

    /// <summary>The successor's leased item once the commit is written; null when the early start is void.</summary>
    public Task<WorkItem?> Confirmed => _confirmed.Task;

    public bool IsStarted => _started.Task.IsCompleted;

    /// <summary>Whether the first planning of the commit was the one written.</summary>
    public bool WrittenAsPlanned { get; set; }

    public void Start(PreparedCommit prepared, WorkItem next)
    {
        _next = next;
        _started.TrySetResult((prepared.Post, next, prepared.Steps));
    }

    /// <summary>Whether <paramref name="leased"/> is the item of the successor that started early, leased by the commit planned first.</summary>
    public bool Keeps(WorkItem leased) => WrittenAsPlanned && _next is { } n && leased.JobId == n.JobId && leased.Step == n.Step;

    public void Confirm(WorkItem? leased) => _confirmed.TrySetResult(leased);
}

/// <summary>
/// Commits what steps did: each finished step's events, successors and acknowledgement in one transaction, planned by
/// the <see cref="CommitPlanner"/>. Workers of this process commit one job's steps one at a time, through the job's
/// commit lane: the worker that finds the lane free commits its own step, then those other workers left there
/// meanwhile, planned one after the other and written together. Also appends events in the middle of a step (the
/// intent of a side effect, before the effect), and fails a job whose definition this process cannot load.
/// </summary>
internal sealed class StepCommitter(EngineContext ctx, JobCommits commits)
{
    private readonly PureStepGroups _pure = new(ctx);
    private readonly CommitLane<FinishedStep>[] _lanes = [.. Enumerable.Range(0, 1024).Select(_ => new CommitLane<FinishedStep>())];

    /// <summary>
    /// Commits a finished step (or leaves it to the worker holding its job's lane). With <paramref name="mayStartNext"/>
    /// (the worker runs the successor next), a successor that may start early returns as soon as the commit is planned,
    /// with <see cref="Executed.Pending"/>.
    /// </summary>
    public async Task<Executed> CommitOutcomeAsync(FinishedStep finished, bool mayStartNext = false)
    {
        var (item, state, run) = (finished.Item, finished.State, finished.Run);
        var lane = _lanes[(int)((uint)item.JobId.GetHashCode() % (uint)_lanes.Length)];
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

        if (!mayStartNext || !ctx.Options.StartStepsEarly)
        {
            try
            {
                return await CommitFinishedAsync(finished).ConfigureAwait(false);
            }
            finally
            {
                await LeaveLaneAsync(lane).ConfigureAwait(false);
            }
        }

        var early = new EarlyStart();
        var writing = CommitStartingEarlyAsync(lane, finished, early);
        await Task.WhenAny(early.Started, writing).ConfigureAwait(false);
        if (!early.IsStarted)
        {
            return await writing.ConfigureAwait(false);
        }

        finished.Run.Detach(writing);
        var (post, next, steps) = await early.Started.ConfigureAwait(false);
        return new(post, next, Pending: early.Confirmed, Steps: steps);
    }

    /// <summary>
    /// Commits a finished step whose successor may start before the commit is written (<see cref="EarlyStart"/>), then
    /// leaves the lane. Once the successor has started, what becomes of the commit is told through the early start: its
    /// leased successor when the commit was written as first planned, else null (a successor planned again goes to the
    /// idle workers; a commit that failed gives its step back to the queue).
    /// </summary>
    private async Task<Executed> CommitStartingEarlyAsync(CommitLane<FinishedStep> lane, FinishedStep finished, EarlyStart early)
    {
        WorkItem? kept = null;
        try
        {
            var executed = await CommitFinishedAsync(finished, early).ConfigureAwait(false);
            if (early.IsStarted) kept = await WrittenAfterEarlyStartAsync(finished, executed, early).ConfigureAwait(false);
            return executed;
        }
        catch (Exception e) when (e is not OutOfMemoryException && early.IsStarted)
        {
            // The worker has gone on: the step is given back here, as when a queued commit fails.
            await GiveBackAsync(finished, e).ConfigureAwait(false);
            return default;
        }
        finally
        {
            try
            {
                await LeaveLaneAsync(lane).ConfigureAwait(false);
            }
            finally
            {
                // Last: the successor's own commit, which waits for this, then finds the lane free.
                early.Confirm(kept);
            }
        }
    }

    /// <summary>
    /// After a commit whose successor started early: the worker has gone on, so the committed item's lease is let go of
    /// here, and the leased successor is returned when it is the one that started (else handed to the idle workers).
    /// </summary>
    private static async Task<WorkItem?> WrittenAfterEarlyStartAsync(FinishedStep finished, Executed executed, EarlyStart early)
    {
        finished.Run.Untrack(finished.Item);
        if (executed.Next is not { } next) return null;
        if (early.Keeps(next)) return next;
        await finished.Run.HandOverAsync(next, executed.State).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// The successor a planned commit leases to this worker (<see cref="MayStartEarly"/>), as the worker starts it: with the
    /// lease it will have when the store continues the acknowledged item's row for it (the same item id, the next token;
    /// see <see cref="IJobJournal.CanCommitAhead"/>), which its own commit may then use before this one is written.
    /// </summary>
    private static WorkItem Successor(PreparedCommit p)
    {
        var next = p.Plan.Enqueue[0];
        var ack = p.Commit.Ack!.Value;
        return new WorkItem
        {
            JobId = p.Commit.JobId, Step = next.Step, Tenant = p.Post.Tenant, Priority = next.Priority, Deliveries = 1,
            Lease = new WorkItemLease(ack.ItemId, next.LeaseOwner!, ack.Token + 1, next.LeaseExpiresAt),
        };
    }

    /// <summary>
    /// Commits a step that started early without waiting for the commit before it (<paramref name="before"/>, which leased
    /// its item): the store writes it right after that one (<see cref="IJobJournal.CanCommitAhead"/>), so the job's
    /// next commit is waiting at the store when the one before ends. <paramref name="finished"/>'s item carries the lease
    /// that commit gives it (<see cref="Successor"/>). When the store refuses it, the step is committed the usual way once
    /// the commit before is written, or dropped if that one was not. Either way the new state is published only after the
    /// one before it. With <paramref name="mayStartNext"/> its own successor may start early in turn.
    /// </summary>
    public async Task<Executed> CommitAheadAsync(FinishedStep finished, Task<WorkItem?> before, bool mayStartNext)
    {
        var prepared = await PrepareAsync(finished, finished.State).ConfigureAwait(false);
        EarlyStart? early = null;
        if (mayStartNext && ctx.Options.StartStepsEarly && MayStartEarly(prepared))
        {
            early = new EarlyStart();
            early.Start(prepared, Successor(prepared));
        }

        var writing = WriteAheadAsync(prepared, before, early);
        if (early is null)
        {
            return await writing.ConfigureAwait(false);
        }

        finished.Run.Detach(writing);
        var (post, next, steps) = await early.Started.ConfigureAwait(false);
        return new(post, next, Pending: early.Confirmed, After: before, Steps: steps);
    }

    /// <summary>How many times a commit is sent ahead while the commit before it is still being written.</summary>
    private const int MaxAheadTries = 3;

    private async Task<Executed> WriteAheadAsync(PreparedCommit p, Task<WorkItem?> before, EarlyStart? early)
    {
        var run = p.Finished.Run;
        WorkItem? kept = null;
        var promised = p.Promised;
        try
        {
            CommitResult result;
            var ahead = p.Commit with { Ahead = true };
            run.Committing(p.Finished.Item, true);
            var tries = 0;
            try
            {
                // Refused when it reached the server before the commit it follows took the job's row: sent again while that
                // one is still being written (a second try usually finds it there).
                do result = await ctx.Store.CommitAsync(ahead, CancellationToken.None).ConfigureAwait(false);
                while (result.Outcome != CommitOutcome.Committed && !before.IsCompleted && ++tries < MaxAheadTries);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Committed the usual way below, where a store that keeps failing is handled as for any commit.
                RuntimeLog.CommitAheadFailed(ctx.Logger, e, p.Finished.Item.Step.WorkKey, p.Finished.Item.JobId);
                result = CommitResult.Failed(CommitOutcome.Conflict);
            }

            // The commit before is published first (and had to be written for this one to be).
            var leasedBefore = await before.ConfigureAwait(false);
            if (result.Outcome != CommitOutcome.Committed && leasedBefore is not null)
            {
                // Written as planned (else it would not lease this step's item): this commit still continues it. It was
                // refused only for reaching the server before it; now it goes the usual way.
                result = await ctx.Store.CommitAsync(p.Commit, CancellationToken.None).ConfigureAwait(false);
            }

            Executed executed;
            if (result.Outcome == CommitOutcome.Committed)
            {
                if (early is not null) early.WrittenAsPlanned = true;
                var leased = await CommittedAsync(p, result, keepFirst: true).ConfigureAwait(false);
                executed = new(p.Post, leased, Steps: p.Steps);
            }
            else
            {
                run.Fulfilled(promised);
                promised = 0;
                if (leasedBefore is null)
                {
                    // The commit before was refused: the step had no lease, and is dropped unwritten.
                    RuntimeLog.EarlyStartDropped(ctx.Logger, p.Finished.Item.Step.WorkKey, p.Finished.Item.JobId);
                    return new(null, null);
                }

                // The job changed meanwhile: planned again on it, the usual way.
                executed = await CommitOutcomeAsync(p.Finished with { Item = leasedBefore }).ConfigureAwait(false);
            }

            if (early is { IsStarted: true }) kept = await WrittenAfterEarlyStartAsync(p.Finished, executed, early).ConfigureAwait(false);
            return executed;
        }
        catch (Exception e) when (e is not OutOfMemoryException && early is { IsStarted: true })
        {
            // The worker has gone on: the step is given back here (if it ever had its lease), as when a queued commit fails.
            if (before.IsCompletedSuccessfully && await before.ConfigureAwait(false) is { } leased) await GiveBackAsync(p.Finished with { Item = leased }, e).ConfigureAwait(false);
            return default;
        }
        finally
        {
            run.Fulfilled(promised);
            early?.Confirm(kept);
        }
    }

    /// <summary>
    /// Whether a planned commit's successor may start before the commit is written: the commit only hands the job on to
    /// one step, leased to this worker, that reaches nothing outside its job's state (a <c>transform</c>, or <c>code</c>
    /// declared <see cref="CodeStep.Pure"/>), so that a run dropped because the commit was refused leaves no trace anywhere.
    /// </summary>
    private bool MayStartEarly(PreparedCommit p)
    {
        return p.Plan.SoleSuccessor(ctx.Worker) is { } next && !p.Post.Status.IsTerminal() && !p.Finished.Run.Stopping
            && PureStepGroups.IsPure(p.Finished.Workflow.FindStep(next.Step.StepId));
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

    /// <summary>Commits one finished step on the newest state this process knows of its job, planning it again after a conflict.</summary>
    private async Task<Executed> CommitFinishedAsync(FinishedStep finished, EarlyStart? early = null)
    {
        var item = finished.Item;
        var state = ctx.NewestKnown(finished.State);
        return await commits.RetryAsync($"committing {item.Step.WorkKey} of job {item.JobId}", async attempt =>
        {
            if (attempt > 0)
            {
                // Another worker of this process usually made the conflicting commit: its state is cached already.
                var newer = ctx.NewestKnown(state);
                var reloaded = newer.Seq > state.Seq ? newer : await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
                if (reloaded is null) return (true, new Executed(null, null));
                state = reloaded;
            }

            if (!EngineContext.IsCurrent(state, item))
            {
                await commits.DiscardAsync(item, state, finished.Recorded).ConfigureAwait(false);
                return (true, new Executed(state, null));
            }

            var prepared = await PrepareAsync(finished, state).ConfigureAwait(false);
            if (attempt == 0 && early is not null && MayStartEarly(prepared))
            {
                early.Start(prepared, Successor(prepared));
            }

            try
            {
                CommitResult result;
                finished.Run.Committing(item, true);
                try
                {
                    result = await ctx.Store.CommitAsync(prepared.Commit, CancellationToken.None).ConfigureAwait(false);
                }
                catch
                {
                    finished.Run.Committing(item, false);
                    throw;
                }

                // Committed, the lease is acknowledged: nothing can lose it any more. Otherwise it is held as before.
                if (result.Outcome != CommitOutcome.Committed) finished.Run.Committing(item, false);

                switch (result.Outcome)
                {
                    case CommitOutcome.Committed:
                        if (early is not null) early.WrittenAsPlanned = attempt == 0;
                        var leased = await CommittedAsync(prepared, result, keepFirst: true).ConfigureAwait(false);
                        return (true, new Executed(prepared.Post, leased, Steps: prepared.Steps));
                    case CommitOutcome.Conflict:
                        return (false, default);
                    default:
                        RuntimeLog.ResultDiscarded(ctx.Logger, item.Step.WorkKey, item.JobId, result.Outcome);
                        await commits.RecordCallsAsync(item.JobId, state, finished.Recorded).ConfigureAwait(false);
                        return (true, new Executed(null, null));
                }
            }
            finally
            {
                // Handed over by now, or never leased: the channel counts them from here on.
                finished.Run.Fulfilled(prepared.Promised);
            }
        }, CancellationToken.None).ConfigureAwait(false);
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
            var state = latest.TryGetValue(jobId, out var planned) ? planned : ctx.NewestKnown(finished.State);
            if (!EngineContext.IsCurrent(state, finished.Item))
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
        foreach (var p in prepared) p.Finished.Run.Committing(p.Finished.Item, true);
        try
        {
            results = ctx.Store.CommitInOrder([.. prepared.Select(p => p.Commit)], CancellationToken.None);
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
                CommitResult result;
                try
                {
                    result = await results[i].ConfigureAwait(false);
                }
                catch
                {
                    p.Finished.Run.Committing(p.Finished.Item, false);
                    throw;
                }

                if (result.Outcome != CommitOutcome.Committed) p.Finished.Run.Committing(p.Finished.Item, false);

                switch (result.Outcome)
                {
                    case CommitOutcome.Committed:
                        await CommittedAsync(p, result, keepFirst: false).ConfigureAwait(false);
                        break;
                    case CommitOutcome.Conflict:
                        var again = await CommitFinishedAsync(p.Finished).ConfigureAwait(false);
                        if (again.Next is { } next)
                        {
                            await p.Finished.Run.HandOverAsync(next, again.State).ConfigureAwait(false);
                        }

                        break;
                    default:
                        RuntimeLog.ResultDiscarded(ctx.Logger, p.Finished.Item.Step.WorkKey, p.Finished.Item.JobId, result.Outcome);
                        await commits.RecordCallsAsync(p.Finished.Item.JobId, p.Finished.State, p.Finished.Recorded).ConfigureAwait(false);
                        break;
                }

                p.Finished.Run.Untrack(p.Finished.Item);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                await GiveBackAsync(p.Finished, e).ConfigureAwait(false);
            }
            finally
            {
                p.Finished.Run.Fulfilled(p.Promised);
            }
        }

        foreach (var (finished, state) in stale)
        {
            try
            {
                // Written after the batch: a state planned in it is committed by now, or the discard reloads.
                await commits.DiscardAsync(finished.Item, state, finished.Recorded).ConfigureAwait(false);
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
        var promised = f.Run.PromiseInline(ctx.Options.ClaimBatchSize);
        try
        {
            return await PrepareAsync(f, state, promised).ConfigureAwait(false);
        }
        catch
        {
            f.Run.Fulfilled(promised);
            throw;
        }
    }

    private async Task<PreparedCommit> PrepareAsync(FinishedStep f, JobState state, int promised)
    {
        var item = f.Item;
        var plan = await ctx.Planner.PlanAsync(state, f.Workflow, item, f.Outcome, f.Recorded, f.DurationMs, promised, CancellationToken.None).ConfigureAwait(false);
        try
        {
            plan = await StartCoordinatorInlineAsync(f, state, plan).ConfigureAwait(false) ?? plan;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Started the usual way then, as its own work item, where whatever failed here is handled like any step's failure.
            RuntimeLog.StepThrew(ctx.Logger, e, item.Step.WorkKey, item.JobId);
        }

        if (f.Span != default)
        {
            // Planned here, perhaps by another worker of the process, the events still belong to the step's span.
            foreach (var e in plan.Events) Telemetry.OrdoSpans.Stamp(e, f.Span);
        }

        // Pure successors run now and are written by this commit too; each stamps its events with its own span.
        var grouped = await _pure.ExtendAsync(f, state, plan).ConfigureAwait(false);

        var sealedEvents = EventChain.Seal(item.JobId, state.Seq, state.HeadHash, plan.Events);
        // The plan's own preview is the state after its events (content does not depend on sequence numbers or hashes).
        var post = sealedEvents.Length == 0 ? state : plan.Preview(state) with { Seq = sealedEvents[^1].Seq, HeadHash = sealedEvents[^1].Hash, UpdatedAt = sealedEvents[^1].Timestamp };
        var snapshot = ctx.States.SnapshotDue(state, post, ctx.Options.SnapshotEvery) ? StateSnapshotCodec.Encode(post) : null;
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
            NotifyJobs = JobCommits.WithParentNotice(plan.NotifyJobs, post),
            Status = post.Status,
            Reason = post.Reason,
            Snapshot = snapshot,
        };
        return new PreparedCommit(f, plan, sealedEvents, post, snapshot?.Seq, commit, promised) { Steps = 1 + grouped };
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
        if (plan.SoleSuccessor(ctx.Worker) is not { } next || plan.NotifyJobs.Count > 0
            || f.Workflow.FindStep(next.Step.StepId) is not { } step || step is not (ParallelStep or ForeachStep) || ctx.Handlers.Find(step.Kind) is not { } handler)
        {
            return null;
        }

        var started = plan.Preview(state);
        var item = new WorkItem { JobId = f.Item.JobId, Step = next.Step, Tenant = started.Tenant, Priority = next.Priority, Deliveries = 1, Lease = default };
        var execution = new StepExecution(item, f.Workflow, step, started, ctx.Options.DryRun || started.DryRun, ctx.Evaluator, AppendNowAsync);
        var outcome = await ctx.Governance.BeforeStepAsync(execution, CancellationToken.None).ConfigureAwait(false)
            ?? await handler.ExecuteAsync(execution, CancellationToken.None).ConfigureAwait(false);
        outcome = StepRunner.AfterStep(ctx, execution, outcome);
        var then = await ctx.Planner.PlanAsync(started, f.Workflow, item, outcome, execution.Events, 0, plan.InlineLimit, CancellationToken.None).ConfigureAwait(false);
        Interlocked.Increment(ref f.Run.StepsExecuted);

        plan.Absorb(then);
        return plan;
    }

    /// <summary>
    /// After a commit: remembers and announces the new state, and hands the successors leased to this process to its
    /// idle workers, all of them or all but the first (which the committing worker runs next, returned).
    /// </summary>
    private async Task<WorkItem?> CommittedAsync(PreparedCommit p, CommitResult result, bool keepFirst)
    {
        var (plan, post, run) = (p.Plan, p.Post, p.Finished.Run);
        var wake = plan.Enqueue.Any(w => w.LeaseOwner is null) || plan.StartJobs.Count > 0 || plan.NotifyJobs.Count > 0 || (post.Status.IsTerminal() && post.ParentJobId is not null);
        Telemetry.OrdoMetrics.Committed(post, p.Sealed);
        ctx.Published(post, p.Sealed, p.SnapshotSeq, wake);
        for (var k = keepFirst ? 1 : 0; k < result.LeasedItems.Count; k++)
        {
            await run.HandOverAsync(result.LeasedItems[k], post).ConfigureAwait(false);
        }

        return keepFirst && result.LeasedItems.Count > 0 ? result.LeasedItems[0] : null;
    }

    /// <summary>
    /// A queued step could not be committed: the calls it made (they reached their tools and providers) are recorded on
    /// their own, and its item goes back to the queue so that it runs again.
    /// </summary>
    private async Task GiveBackAsync(FinishedStep finished, Exception e)
    {
        if (e is not Storage.StoreUnavailableException)
        {
            try
            {
                await commits.RecordCallsAsync(finished.Item.JobId, finished.State, finished.Recorded).ConfigureAwait(false);
            }
            catch (Exception recording) when (recording is not OutOfMemoryException)
            {
                RuntimeLog.StepThrew(ctx.Logger, recording, finished.Item.Step.WorkKey, finished.Item.JobId);
            }
        }

        await finished.Run.GiveBackAsync(finished.Item, e).ConfigureAwait(false);
    }

    /// <summary>
    /// Commits events in the middle of a step (the intent of a side effect, a budget reservation), keeping the work item
    /// leased. When <paramref name="refusal"/> is set, it is asked on the job as this commit finds it (again after each
    /// conflict) with all but the last event applied; a non-null answer means nothing is written.
    /// </summary>
    public async ValueTask<(JobState State, object? Refusal)> AppendNowAsync(StepExecution execution, IReadOnlyList<NewEvent> events, Func<JobState, object?>? refusal, CancellationToken cancellationToken)
    {
        var state = execution.State;
        return await commits.RetryAsync($"recording {execution.Step.WorkKey} of job {execution.JobId}", async attempt =>
        {
            if (refusal is not null)
            {
                if (attempt == 0)
                {
                    // Decided on the job as it is now, not as the step last saw it: another step may have changed it.
                    state = await ctx.States.LoadAsync(execution.JobId, cancellationToken).ConfigureAwait(false) ?? throw new StepAbortedException("the job disappeared");
                    if (!EngineContext.IsCurrent(state, execution.Item))
                    {
                        throw new StepAbortedException(state.Status.IsTerminal() ? $"the job is {state.Status.ToWire()}" : "the step was superseded");
                    }

                    execution.AdoptState(state);
                }

                if (refusal(JobStateReducer.Preview(state, events.Take(events.Count - 1))) is { } refused)
                {
                    return (true, (state, (object?)refused));
                }
            }

            var plan = new PlannedCommit();
            plan.Events.AddRange(events);
            var (result, post, _) = await commits.CommitAsync(state, plan, execution.Item.Lease, cancellationToken, keepItem: true, wake: false).ConfigureAwait(false);
            switch (result.Outcome)
            {
                case CommitOutcome.Committed:
                    return (true, (post, (object?)null));
                case CommitOutcome.Conflict:
                    state = await ctx.States.LoadAsync(execution.JobId, cancellationToken).ConfigureAwait(false) ?? throw new StepAbortedException("the job disappeared");
                    if (!EngineContext.IsCurrent(state, execution.Item))
                    {
                        throw new StepAbortedException(state.Status.IsTerminal() ? $"the job is {state.Status.ToWire()}" : "the step was superseded");
                    }

                    execution.AdoptState(state);
                    return (false, (state, (object?)null));
                default:
                    throw new StepAbortedException("another worker took the step over");
            }
        }, cancellationToken).ConfigureAwait(false);
    }
}

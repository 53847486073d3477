using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine.Commits;

/// <summary>
/// How every change to a job is written: a plan's events sealed onto the job's log, its queue changes and the
/// acknowledgement of the work item that caused it, in one conditional commit; and the one way to try again when
/// another writer got there first (decide again on the newer state, pausing a little longer each time after the first
/// few tries, so that writers that collide do not spin).
/// </summary>
internal sealed class JobCommits(EngineContext ctx)
{
    /// <summary>The most times a change is decided again after conflicts before it gives up.</summary>
    public const int MaxAttempts = 50;

    /// <summary>
    /// Runs <paramref name="attempt"/> (given the attempt number, from 0) until it says it is done, and returns its value.
    /// An attempt that lost a conflict returns <c>(false, _)</c> and is run again after a pause that grows from the third try.
    /// </summary>
    /// <exception cref="OrdoException">The job kept changing for <see cref="MaxAttempts"/> attempts.</exception>
    public async Task<T> RetryAsync<T>(string what, Func<int, Task<(bool Done, T Value)>> attempt, CancellationToken cancellationToken)
    {
        for (var i = 0; i < MaxAttempts; i++)
        {
            if (i >= 2)
            {
                await Task.Delay(Backoff(i), ctx.Time, cancellationToken).ConfigureAwait(false);
            }

            var (done, value) = await attempt(i).ConfigureAwait(false);
            if (done) return value;
        }

        throw new OrdoException($"{what}: the job kept changing while this was being recorded; try again");
    }

    /// <summary>1 ms, 2 ms, 4 ms… up to 100 ms, with jitter: colliding writers drift apart instead of colliding again.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(100.0, Math.Pow(2, attempt - 2));
        double r;
        lock (ctx.Options.Random)
        {
            r = ctx.Options.Random.NextDouble();
        }

        return TimeSpan.FromMilliseconds(ceiling * (0.5 + (r / 2)));
    }

    /// <summary>
    /// Commits a plan on <paramref name="state"/> (acknowledging <paramref name="ack"/>, or only checking it is still held
    /// when <paramref name="keepItem"/>), and publishes the new state when it is written.
    /// </summary>
    public async Task<(CommitResult Result, JobState Post, IReadOnlyList<EventEnvelope> Events)> CommitAsync(
        JobState state, PlannedCommit plan, WorkItemLease? ack, CancellationToken cancellationToken, bool keepItem = false, bool wake = true)
    {
        var events = EventChain.Seal(state.JobId, state.Seq, state.HeadHash, plan.Events);
        var post = events.Length == 0 ? state : plan.Preview(state) with { Seq = events[^1].Seq, HeadHash = events[^1].Hash, UpdatedAt = events[^1].Timestamp };
        var result = await ctx.Store.CommitAsync(new JobCommit
        {
            JobId = state.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = events, Ack = ack, KeepWorkItem = keepItem,
            Enqueue = plan.Enqueue, DropPendingWork = plan.DropPendingWork, DropScopes = plan.DropScopes, StartJobs = plan.StartJobs,
            NotifyJobs = WithParentNotice(plan.NotifyJobs, post), Status = post.Status, Reason = post.Reason,
        }, cancellationToken).ConfigureAwait(false);
        if (result.Outcome == CommitOutcome.Committed && events.Length > 0)
        {
            Telemetry.OrdoMetrics.Committed(post, events);
            ctx.Published(post, events, wake: wake);
        }

        return (result, post, events);
    }

    /// <summary>
    /// Acknowledges a work item that has nothing left to do (a duplicate delivery, or its job ended). The calls its step
    /// made (<paramref name="recorded"/>) are written with it: whatever becomes of a step, every call that reached a tool
    /// or a model provider is in the job's log.
    /// </summary>
    public Task DiscardAsync(WorkItem item, JobState state, IReadOnlyList<NewEvent>? recorded = null)
        => RetryAsync($"discarding {item.Step.WorkKey} of job {item.JobId}", async _ =>
        {
            var plan = new PlannedCommit();
            plan.Events.AddRange(CallRecords(recorded));
            var (result, _, _) = await CommitAsync(state, plan, item.Lease, CancellationToken.None).ConfigureAwait(false);
            if (result.Outcome != CommitOutcome.Conflict)
            {
                RuntimeLog.ItemDiscarded(ctx.Logger, item.Step.WorkKey, item.JobId);
                return (true, 0);
            }

            state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
            return (false, 0);
        }, CancellationToken.None);

    /// <summary>
    /// Writes the calls a step made that no commit of the step will carry (the run stopped, its lease was lost, the step
    /// was stopped after the job changed under it): every call that reached a tool or a model provider is in the log,
    /// whatever happens after. The work item is left as it is.
    /// </summary>
    public async Task RecordCallsAsync(JobId jobId, JobState known, IReadOnlyList<NewEvent> recorded)
    {
        var calls = CallRecords(recorded);
        if (calls.Count == 0) return;
        var state = ctx.NewestKnown(known);
        await RetryAsync($"recording the calls of a stopped step of job {jobId}", async attempt =>
        {
            if (attempt > 0)
            {
                var reloaded = await ctx.States.LoadAsync(jobId, CancellationToken.None).ConfigureAwait(false);
                if (reloaded is null) return (true, 0);
                state = reloaded;
            }

            var plan = new PlannedCommit();
            plan.Events.AddRange(calls);
            var (result, _, _) = await CommitAsync(state, plan, null, CancellationToken.None).ConfigureAwait(false);
            return (result.Outcome != CommitOutcome.Conflict, 0);
        }, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The events of a step that record calls to tools and model providers.</summary>
    private static List<NewEvent> CallRecords(IReadOnlyList<NewEvent>? recorded)
        => recorded is null ? [] : [.. recorded.Where(e => e.Type is EventTypes.ToolCallRequested or EventTypes.ToolCallSucceeded or EventTypes.ToolCallFailed
            or EventTypes.ModelCallRequested or EventTypes.ModelCallSucceeded or EventTypes.ModelCallFailed)];

    /// <summary>Fails a job because one of its items cannot be handled in this process (its definition needs what the process lacks); returns the state after.</summary>
    public async Task<JobState?> FailAsync(WorkItem item, JobState state, StepOutcome failure)
    {
        return await RetryAsync($"failing job {item.JobId}", async attempt =>
        {
            if (attempt > 0)
            {
                state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
                if (state.Status.IsTerminal() || (!SystemItems.IsSystem(item.Step.StepId) && !EngineContext.IsCurrent(state, item)))
                {
                    await DiscardAsync(item, state).ConfigureAwait(false);
                    return (true, (JobState?)state);
                }
            }

            var now = ctx.Time.GetUtcNow();
            var plan = new PlannedCommit { DropPendingWork = true };
            if (SystemItems.IsSystem(item.Step.StepId))
            {
                plan.Events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"the job cannot continue: {failure.Message}", null, failure.Error), now));
            }
            else
            {
                plan.Events.Add(EventFactory.Step(EventTypes.StepFailed, item.Step, new StepFailedPayload(failure.Error!, failure.Message!, false, false, null, 0, null), now));
                plan.Events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"step '{item.Step.StepId}' cannot run: {failure.Message}", item.Step.StepId, failure.Error), now));
            }

            var (result, post, _) = await CommitAsync(state, plan, item.Lease, CancellationToken.None).ConfigureAwait(false);
            return result.Outcome switch
            {
                CommitOutcome.Committed => (true, (JobState?)post),
                CommitOutcome.Conflict => (false, null),
                _ => (true, null),
            };
        }, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// When a child job ends, the commit that ends it also puts a <c>$child-ended</c> item on its parent's queue (in the
    /// same transaction): the parent can never miss its child's end, even if a process dies in between.
    /// </summary>
    public static IReadOnlyList<OtherJobWork> WithParentNotice(IReadOnlyList<OtherJobWork> others, JobState post)
    {
        if (!post.Status.IsTerminal() || post.ParentJobId is null || post.ParentBranch is null)
        {
            return others;
        }

        var notice = new OtherJobWork(new JobId(post.ParentJobId), new NewWorkItem
        {
            Step = new StepRef(SystemItems.ChildEnded, 1, 1, post.ParentBranch),
            AvailableAt = post.UpdatedAt,
        });
        return [.. others, notice];
    }

    /// <summary>Stop requests for the running child jobs of a job that is being cancelled.</summary>
    public static List<OtherJobWork> ChildStops(JobState state)
        => [.. state.Patterns.Values
            .SelectMany(p => p.Branches.Values)
            .Where(b => b.Status == "running" && b.ChildJobId is not null)
            .Select(b => CommitPlanner.CancelRequest(b.ChildJobId!, state.JobId, state.UpdatedAt))];
}

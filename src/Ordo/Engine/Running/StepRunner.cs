using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Ordo.Engine.Commits;
using Ordo.Engine.Workers;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Steps;
using Ordo.Telemetry;
using Ordo.Workflows;

namespace Ordo.Engine.Running;

/// <summary>The step must stop without committing: its lease was lost, it timed out, or its job ended meanwhile.</summary>
internal sealed class StepAbortedException(string message) : Exception(message);

/// <summary>
/// Runs one work item: brings its job's state up to date, loads the definition the job is pinned to, checks governance
/// (kill switches, budgets, step policies), runs the step's handler under its timeout — and stops it when the run stops
/// hard or the item's lease is lost — then gives the outcome to the <see cref="StepCommitter"/>. A handler that times
/// out is cancelled and awaited, and its execution closed first: nothing it does afterwards reaches the log.
/// </summary>
internal sealed class StepRunner(EngineContext ctx, JobCommits commits, StepCommitter committer, SystemItemRunner system)
{
    /// <summary>
    /// Runs an item and commits its result; returns the job's state after the commit and the successor leased to this
    /// worker, if any. With <paramref name="predecessor"/>, the item started before the commit that leases it was
    /// written (<see cref="EarlyStart"/>): it has no lease until that commit is; nothing of it is written before, and
    /// nothing at all when the commit was refused. <paramref name="mayStartNext"/>: the worker runs the successor next,
    /// so the successor may start early in turn. <paramref name="after"/>: see <see cref="Executed.After"/>.
    /// </summary>
    public async Task<Executed> ExecuteAsync(WorkItem item, JobState? known, WorkerRun run, Task<WorkItem?>? predecessor = null, bool mayStartNext = false, Task<WorkItem?>? after = null)
    {
        if (predecessor is not null)
        {
            return await ExecuteEarlyAsync(item, known, run, predecessor, mayStartNext, after).ConfigureAwait(false);
        }

        return await ExecuteCoreAsync(item, known, run, null, mayStartNext).ConfigureAwait(false);
    }

    /// <summary>Runs an item that started before the commit leasing it was written, and lets go of its lease after its own commit.</summary>
    private async Task<Executed> ExecuteEarlyAsync(WorkItem item, JobState? known, WorkerRun run, Task<WorkItem?> predecessor, bool mayStartNext, Task<WorkItem?>? after)
    {
        var leased = new Leased(predecessor, run) { After = after };
        // Held (renewed) from the moment the commit before is written, however long the step still runs.
        leased.TrackWhenLeased();
        Executed executed;
        try
        {
            executed = await ExecuteCoreAsync(item, known, run, leased, mayStartNext).ConfigureAwait(false);
        }
        catch
        {
            leased.Stop(untrack: false);
            throw;
        }

        // Let go of here once committed; a queued commit, or one still being written for a successor that started
        // early, lets go of it itself.
        leased.Stop(untrack: !executed.Queued && executed.Pending is null);
        return executed;
    }

    /// <summary>The lease of an item that started early: known once the commit leasing it is written, and held from then on until <see cref="Stop"/>.</summary>
    private sealed class Leased(Task<WorkItem?> predecessor, WorkerRun run)
    {
        private readonly Lock _lock = new();
        private bool _stopped;

        public WorkItem? Item { get; private set; }

        /// <summary>The commit before the item: its leased item once written, or null.</summary>
        public Task<WorkItem?> Before => predecessor;

        /// <summary>Whether that commit has been written (or refused) already.</summary>
        public bool Known => predecessor.IsCompleted;

        /// <summary>The commit before that one, when that one was sent ahead (<see cref="Executed.After"/>).</summary>
        public Task<WorkItem?>? After { get; init; }

        /// <summary>Starts holding the item as soon as the commit before it is written (unless stopped by then).</summary>
        public void TrackWhenLeased() => _ = HoldWhenLeasedAsync();

        private async Task HoldWhenLeasedAsync() => Hold(await predecessor.ConfigureAwait(false));

        private void Hold(WorkItem? item)
        {
            lock (_lock)
            {
                if (item is null || _stopped || Item is not null) return;
                run.Track(item);
                Item = item;
            }
        }

        /// <summary>Waits for the commit before the item; the item as leased (and held), or null when it must not be written.</summary>
        public async ValueTask<WorkItem?> WaitAsync()
        {
            var item = await predecessor.ConfigureAwait(false);
            Hold(item);
            return item;
        }

        /// <summary>Stops taking the item up; lets go of it when <paramref name="untrack"/>.</summary>
        public void Stop(bool untrack)
        {
            lock (_lock)
            {
                _stopped = true;
                if (untrack && Item is { } held) run.Untrack(held);
            }
        }
    }

    private async Task<Executed> ExecuteCoreAsync(WorkItem item, JobState? known, WorkerRun run, Leased? early, bool mayStartNext)
    {
        if (SystemItems.IsSystem(item.Step.StepId))
        {
            await system.RunAsync(item).ConfigureAwait(false);
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
            var caughtUp = ctx.Options.Observers.Count > 0 ? new List<EventEnvelope>() : null;
            state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None, caughtUp).ConfigureAwait(false);
            if (state is not null && caughtUp is { Count: > 0 })
            {
                ctx.Published(state, caughtUp, wake: false);
            }
        }

        if (state is null)
        {
            RuntimeLog.OrphanItem(ctx.Logger, item.Step.WorkKey, item.JobId);
            return new(null, null);
        }

        if (!EngineContext.IsCurrent(state, item))
        {
            if (early is not null)
            {
                if (await early.WaitAsync().ConfigureAwait(false) is not { } leased) return new(null, null);
                item = leased;
            }

            await commits.DiscardAsync(item, state).ConfigureAwait(false);
            return new(state, null);
        }

        WorkflowDefinition workflow;
        try
        {
            workflow = await ctx.DefinitionAsync(state, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OrdoException e)
        {
            if (early is not null)
            {
                if (await early.WaitAsync().ConfigureAwait(false) is not { } leased) return new(null, null);
                item = leased;
            }

            var code = e is Audit.DefinitionChangedException ? "definition_changed" : "definition_unavailable";
            return new(await commits.FailAsync(item, state, StepOutcome.Failure(code, e.Message, retryable: false)).ConfigureAwait(false), null);
        }

        var step = workflow.FindStep(item.Step.StepId);
        using var span = OrdoSpans.StartStep(state, item, step?.Kind, ctx.Worker);
        using var logScope = ctx.Logger.IsEnabled(LogLevel.Critical)
            ? RuntimeLog.StepScope(ctx.Logger, item.JobId.Value, item.Step.WorkKey, item.Step.Attempt, span?.TraceId.ToHexString(), span?.SpanId.ToHexString())
            : null;
        if (item.Step.Attempt > 1 && OrdoMetrics.StepRetries.Enabled)
        {
            OrdoMetrics.StepRetries.Add(1, new TagList { { "ordo.workflow", workflow.Name }, { "ordo.step.kind", step?.Kind } });
        }

        StepOutcome? outcome;
        var execution = new StepExecution(item, workflow, step ?? workflow.Entry, state, ctx.Options.DryRun || state.DryRun, ctx.Evaluator, committer.AppendNowAsync,
            async ct =>
            {
                var events = new List<Events.EventEnvelope>();
                await foreach (var e in ctx.Store.ReadEventsAsync(item.JobId, 0, ct).ConfigureAwait(false)) events.Add(e);
                return events;
            });
        if (early is not null)
        {
            // Whatever would write to the log or read it mid-step waits for the commit before the step first.
            execution.StartsBefore(early.WaitAsync);
        }

        var started = ctx.Time.GetTimestamp();
        if (step is null)
        {
            outcome = StepOutcome.Failure("config_error", $"workflow {workflow.Ref} has no step '{item.Step.StepId}'", retryable: false);
        }
        else if (item.LostDeliveries > ctx.Options.MaxDeliveries)
        {
            outcome = StepOutcome.Failure("abandoned",
                $"the step's lease was lost {item.LostDeliveries} times without it finishing (its workers died or stopped renewing; {(item.LostOwners.Count < item.LostDeliveries ? $"the last {item.LostOwners.Count}" : "they were")}: {string.Join(", ", item.LostOwners)})", retryable: false);
        }
        else if (run.GivenBack(item) is { Count: >= WorkerRun.MaxGiveBacks, Last: { } last })
        {
            outcome = StepOutcome.Failure("step_crashed",
                $"running or committing the step failed {WorkerRun.MaxGiveBacks} times in this process for an unexpected reason; the last: {last.GetType().Name}: {last.Message}", retryable: false);
        }
        else if (ctx.Handlers.Find(step.Kind) is not { } handler)
        {
            outcome = StepOutcome.Failure("unsupported_step", $"step kind '{step.Kind}' cannot run in this process (handled kinds: {string.Join(", ", ctx.Handlers.Kinds)})", retryable: false);
        }
        else
        {
            outcome = await ctx.Governance.BeforeStepAsync(execution, CancellationToken.None).ConfigureAwait(false)
                ?? await RunHandlerAsync(handler, execution, step, run).ConfigureAwait(false);
            if (outcome is not null)
            {
                outcome = AfterStep(ctx, execution, outcome);
            }
        }

        // A step that started early may have its commit sent at once, to be written right after the one before it; or its
        // outcome is written only after that one, and not at all when that one was refused.
        var ahead = false;
        if (early is not null && outcome is not null && !early.Known)
        {
            // Behind a commit that was itself sent ahead, only once that one holds the job's row at the store (the commit
            // before it is written): sent sooner, this one would often reach the row first, and be refused.
            if (early.After is { } after) await after.ConfigureAwait(false);
            ahead = !early.Known && ctx.Store.CanCommitAhead;
        }

        if (early is not null && !ahead)
        {
            if (await early.WaitAsync().ConfigureAwait(false) is not { } leased)
            {
                RuntimeLog.EarlyStartDropped(ctx.Logger, item.Step.WorkKey, item.JobId);
                return new(null, null);
            }

            item = leased;
            execution.AdoptItem(leased);
        }

        if (outcome is null)
        {
            // Stopped without an outcome (the run stopped, the lease was lost, the job changed under the step): the step
            // runs again or not at all, but the calls it made happened, and are recorded.
            try
            {
                await commits.RecordCallsAsync(item.JobId, execution.State, execution.Events).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.StepThrew(ctx.Logger, e, item.Step.WorkKey, item.JobId);
            }

            await run.ReleaseAsync(item).ConfigureAwait(false);
            return new(null, null);
        }

        Interlocked.Increment(ref run.StepsExecuted);
        outcome = StepOutcomes.Recordable(ctx, outcome);
        var duration = ctx.Time.GetElapsedTime(started).TotalMilliseconds;
        var result = outcome.Interrupt is not null ? "interrupted" : outcome.Succeeded ? "succeeded" : "failed";
        OrdoMetrics.StepRan(workflow.Name, step?.Kind, result, duration);

        if (span is not null)
        {
            span.SetTag("ordo.step.outcome", result);
            if (!outcome.Succeeded) OrdoSpans.Failed(span, outcome.Error ?? result, outcome.Message);
        }

        var committing = ctx.Time.GetTimestamp();
        var finished = new FinishedStep(item, execution.State, workflow, outcome, execution.Events, duration, run) { Span = span?.Context ?? default };
        var executed = ahead
            ? await committer.CommitAheadAsync(finished, early!.Before, mayStartNext).ConfigureAwait(false)
            : await committer.CommitOutcomeAsync(finished, mayStartNext).ConfigureAwait(false);
        if (OrdoMetrics.CommitDuration.Enabled && !executed.Queued && executed.Pending is null)
        {
            OrdoMetrics.CommitDuration.Record(ctx.Time.GetElapsedTime(committing).TotalSeconds, new TagList { { "ordo.workflow", workflow.Name } });
        }

        return executed;
    }

    /// <summary>A step's outcome as governance leaves it: an interrupt the step raised, or the checks on its result.</summary>
    public static StepOutcome AfterStep(EngineContext ctx, StepExecution execution, StepOutcome outcome)
        => execution.PendingInterrupt is { } interrupt && outcome.Interrupt is null
            ? outcome with { Interrupt = interrupt }
            : ctx.Governance.AfterStep(execution, outcome) ?? outcome;

    /// <summary>
    /// Runs the handler until it ends, its timeout passes, the run stops hard or the item's lease is lost. In the last
    /// three cases the execution is closed, the handler cancelled and awaited (at most the shutdown grace; a handler that
    /// ignores cancellation longer can no longer record anything), and the outcome is a timeout failure — or none, and
    /// the item is released (hard stop) or left to the worker that holds it now (lease lost).
    /// </summary>
    private async Task<StepOutcome?> RunHandlerAsync(IStepHandler handler, StepExecution execution, StepDefinition step, WorkerRun run)
    {
        using var timeout = step.Timeout is { } t ? new CancellationTokenSource(t, ctx.Time) : null;
        var lost = run.LostToken(execution.Item);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(run.HardStop, lost, timeout?.Token ?? CancellationToken.None);
        var task = RunAsync(handler, execution, offThread: timeout is not null, linked.Token);
        try
        {
            return await task.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            var why = lost.IsCancellationRequested ? "its lease was lost to another worker"
                : run.HardStop.IsCancellationRequested ? "the run stopped"
                : $"the step did not finish within {Durations.Format(step.Timeout!.Value)}";
            execution.Close($"the step was stopped: {why}");

            // A hard stop comes after the run's grace has passed already: the process does not wait a second one.
            if (!run.HardStop.IsCancellationRequested) await EndedOrGraceAsync(task).ConfigureAwait(false);
            if (lost.IsCancellationRequested)
            {
                RuntimeLog.StepAborted(ctx.Logger, execution.Step.WorkKey, execution.JobId, why);
                return null;
            }

            return run.HardStop.IsCancellationRequested ? null : StepOutcome.Failure("timeout", why, retryable: true);
        }
        catch (StepAbortedException e)
        {
            RuntimeLog.StepAborted(ctx.Logger, execution.Step.WorkKey, execution.JobId, e.Message);
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            RuntimeLog.StepThrew(ctx.Logger, e, execution.Step.WorkKey, execution.JobId);
            return StepOutcome.Failure("exception", $"{e.GetType().Name}: {e.Message}", retryable: true);
        }
    }

    private static async Task<StepOutcome> RunAsync(IStepHandler handler, StepExecution execution, bool offThread, CancellationToken cancellationToken)
    {
        if (offThread)
        {
            // A step with a timeout starts off the worker's thread: one that blocks before its first await still times out.
            await Task.Yield();
        }

        return await handler.ExecuteAsync(execution, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits for a cancelled handler to end, at most the shutdown grace; whatever it ends with is of no use any more.</summary>
    private async Task EndedOrGraceAsync(Task task)
    {
        try
        {
            await task.WaitAsync(ctx.Options.ShutdownGrace, ctx.Time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Cancelled, failed, or still running past the grace (its execution is closed: nothing it does is recorded).
        }
    }
}

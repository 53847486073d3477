using Ordo.Engine.Running;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Steps;
using Ordo.Telemetry;
using Ordo.Workflows;

namespace Ordo.Engine.Commits;

/// <summary>
/// Writes consecutive pure steps with one commit (<see cref="OrdoRuntimeOptions.PureStepsPerCommit"/>): while a pure
/// step's commit is planned, its only successor, when pure too and leased to this worker, runs on the state the plan
/// leads to, and its own plan is absorbed into it; then the next, within the count and time the options allow.
/// </summary>
/// <remarks>
/// Nothing changes in the log: each step's events are those its own commit would write, in the same order. Only steps
/// that reach nothing outside their job's state are run this way, after a step of the same kind, so a commit that is
/// refused, or never written because the process stopped, leaves nothing to undo: the steps are planned, or run, again.
/// A step that would touch the log mid-step, fails, throws, is held by governance or declares a timeout is not run
/// here: the group ends before it, and it runs as its own work item, where all of that is handled as for any step.
/// </remarks>
internal sealed class PureStepGroups(EngineContext ctx)
{
    /// <summary>Whether a step reaches nothing outside its job's state: a <c>transform</c>, or <c>code</c> declared <see cref="CodeStep.Pure"/>.</summary>
    public static bool IsPure(StepDefinition? step) => step is TransformStep or CodeStep { Pure: true };

    /// <summary>
    /// Runs the pure successors of <paramref name="finished"/> that its commit may write too, absorbing their plans into
    /// <paramref name="plan"/>; returns how many ran.
    /// </summary>
    public async Task<int> ExtendAsync(FinishedStep finished, JobState state, PlannedCommit plan)
    {
        var options = ctx.Options;
        if (options.PureStepsPerCommit <= 1 || !finished.Outcome.Succeeded || finished.Outcome.Interrupt is not null || finished.Run.Stopping
            || !IsPure(finished.Workflow.FindStep(finished.Item.Step.StepId)))
        {
            return 0;
        }

        var started = ctx.Time.GetTimestamp();
        var steps = 1;
        for (; steps < options.PureStepsPerCommit && ctx.Time.GetElapsedTime(started) < options.PureStepsCommitWithin; steps++)
        {
            PlannedCommit? then;
            try
            {
                then = await RunSuccessorAsync(finished, state, plan).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Planning it failed: it runs on its own, where a failure to plan is handled as for any step.
                RuntimeLog.StepThrew(ctx.Logger, e, finished.Item.Step.WorkKey, finished.Item.JobId);
                break;
            }

            if (then is null) break;
            plan.Absorb(then);
        }

        return steps - 1;
    }

    /// <summary>Runs the plan's only successor when it may join the commit; its plan, or null when it runs on its own.</summary>
    private async Task<PlannedCommit?> RunSuccessorAsync(FinishedStep finished, JobState state, PlannedCommit plan)
    {
        if (plan.SoleSuccessor(ctx.Worker) is not { } next || plan.NotifyJobs.Count > 0
            || finished.Workflow.FindStep(next.Step.StepId) is not { Timeout: null } step || !IsPure(step)
            || ctx.Handlers.Find(step.Kind) is not { } handler || finished.Run.Stopping)
        {
            return null;
        }

        var before = plan.Preview(state);
        if (before.Status.IsTerminal()) return null;
        var item = new WorkItem { JobId = finished.Item.JobId, Step = next.Step, Tenant = before.Tenant, Priority = next.Priority, Deliveries = 1, Lease = default };
        using var span = OrdoSpans.StartStep(before, item, step.Kind, ctx.Worker);
        var execution = new StepExecution(item, finished.Workflow, step, before, ctx.Options.DryRun || before.DryRun, ctx.Evaluator, NotWrittenYet, NotWrittenYet);
        var t0 = ctx.Time.GetTimestamp();
        StepOutcome outcome;
        try
        {
            if (await ctx.Governance.BeforeStepAsync(execution, CancellationToken.None).ConfigureAwait(false) is not null) return null;
            outcome = await handler.ExecuteAsync(execution, finished.Run.HardStop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever it was, the step runs again on its own, where it is handled (retried, failed, recorded) as usual.
            return null;
        }

        outcome = StepOutcomes.Recordable(ctx, StepRunner.AfterStep(ctx, execution, outcome));
        if (!outcome.Succeeded || outcome.Interrupt is not null) return null;

        var duration = ctx.Time.GetElapsedTime(t0).TotalMilliseconds;
        var then = await ctx.Planner.PlanAsync(before, finished.Workflow, item, outcome, execution.Events, duration, plan.InlineLimit, CancellationToken.None).ConfigureAwait(false);
        foreach (var e in then.Events) OrdoSpans.Stamp(e, span);
        span?.SetTag("ordo.step.outcome", "succeeded");
        OrdoMetrics.StepRan(finished.Workflow.Name, step.Kind, "succeeded", duration);

        Interlocked.Increment(ref finished.Run.StepsExecuted);
        return then;
    }

    /// <summary>A step of a group has no commit of its own to write or read mid-step: it stops, and runs on its own instead.</summary>
    private static ValueTask<(JobState State, object? Refusal)> NotWrittenYet(StepExecution execution, IReadOnlyList<NewEvent> events, Func<JobState, object?>? refusal, CancellationToken cancellationToken)
        => throw new StepAbortedException("a step written with the pure steps before it cannot write to the log mid-step");

    private static ValueTask<IReadOnlyList<EventEnvelope>> NotWrittenYet(CancellationToken cancellationToken)
        => throw new StepAbortedException("a step written with the pure steps before it cannot read the log mid-step");
}

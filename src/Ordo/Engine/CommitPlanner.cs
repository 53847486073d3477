using Ordo.Events;
using Ordo.Expressions;
using Ordo.Queue;
using Ordo.State;
using Ordo.Verification;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>What a step's commit will write: events, successors, and whether the job's other work is dropped.</summary>
internal sealed class PlannedCommit
{
    public List<NewEvent> Events { get; } = [];

    public List<NewWorkItem> Enqueue { get; } = [];

    public bool DropPendingWork { get; set; }
}

/// <summary>
/// Decides, from a job's state and a step attempt's outcome, everything the commit writes: the recorded events,
/// artifact verdicts, the route taken, retries with backoff, loop bounds, and the end of the job. Pure: the same
/// inputs give the same plan, so after a conflict the plan is simply made again on the newer state.
/// </summary>
internal sealed class CommitPlanner(OrdoRuntimeOptions options, ExpressionEvaluator evaluator, string worker)
{
    private readonly Lock _randomGate = new();

    public PlannedCommit Plan(JobState state, WorkflowDefinition workflow, WorkItem item, StepOutcome outcome, IReadOnlyList<NewEvent> recorded, double durationMs, bool allowInline)
    {
        var now = options.TimeProvider.GetUtcNow();
        var step = workflow.GetStep(item.Step.StepId);
        var plan = new PlannedCommit();
        plan.Events.AddRange(recorded);

        if (outcome.Succeeded)
        {
            var verdict = ArtifactVerifier.Verify(workflow, state, item.Step, outcome, now);
            plan.Events.AddRange(verdict.Events);
            if (verdict.Rejection is not null)
            {
                var retryable = step is AgentStep or ToolStep or CodeStep;
                var violation = StepOutcome.Failure("contract_violation", verdict.Rejection, retryable) with { Agent = outcome.Agent, PromptHash = outcome.PromptHash, Model = outcome.Model };
                PlanFailure(plan, state, workflow, step, item, violation, durationMs, now, allowInline);
                return plan;
            }

            PlanSuccess(plan, state, workflow, step, item, outcome, durationMs, now, allowInline);
            return plan;
        }

        PlanFailure(plan, state, workflow, step, item, outcome, durationMs, now, allowInline);
        return plan;
    }

    private void PlanSuccess(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepDefinition step, WorkItem item, StepOutcome outcome, double durationMs, DateTimeOffset now, bool allowInline)
    {
        var stamps = (outcome.Agent, outcome.PromptHash, outcome.Model);
        var provisional = EventFactory.Step(EventTypes.StepSucceeded, item.Step, new StepSucceededPayload(outcome.Output, durationMs, null, outcome.Input), now, stamps.Agent, stamps.PromptHash, stamps.Model);
        var preview = JobStateReducer.Preview(state, plan.Events.Append(provisional));

        Route? chosen = null;
        string? routeError = null;
        var scope = new ExpressionScope { State = preview, Attempt = item.Step.Attempt, IncludeQuarantined = step.AcceptsQuarantined, Constraints = workflow.ConstraintsJson };
        foreach (var route in step.Next)
        {
            if (route.When is null)
            {
                chosen = route;
                break;
            }

            try
            {
                if (evaluator.EvaluateBoolean(route.When, scope))
                {
                    chosen = route;
                    break;
                }
            }
            catch (ExpressionEvaluationException e)
            {
                routeError = $"step '{step.Id}': the route condition failed: {e.Message}";
                break;
            }
        }

        var target = chosen?.Target;
        plan.Events.Add(EventFactory.Step(EventTypes.StepSucceeded, item.Step,
            new StepSucceededPayload(outcome.Output, durationMs, target is null ? [] : [target], outcome.Input), now, stamps.Agent, stamps.PromptHash, stamps.Model));

        if (routeError is not null)
        {
            FailJob(plan, routeError, step.Id, "route_error", now);
            return;
        }

        switch (target)
        {
            case null or Route.End:
                if (item.Step.Scope is null && preview.Open.Keys.All(k => k == item.Step.WorkKey))
                {
                    plan.Events.Add(EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload((now - state.CreatedAt).TotalMilliseconds), now));
                    plan.DropPendingWork = true;
                }

                break;
            case Route.Fail:
                FailJob(plan, $"step '{step.Id}' routed to 'fail'", step.Id, "routed_to_fail", now);
                break;
            default:
                ScheduleVisit(plan, preview, workflow, target, item, "route", now, allowInline);
                break;
        }
    }

    private void ScheduleVisit(PlannedCommit plan, JobState preview, WorkflowDefinition workflow, string target, WorkItem from, string reason, DateTimeOffset now, bool allowInline)
    {
        var next = workflow.GetStep(target);
        var scope = from.Step.Scope;
        var visit = preview.VisitsOf(scope, target) + 1;
        var limit = next.MaxIterations ?? 1;
        if (visit > limit)
        {
            FailJob(plan, next.MaxIterations is null
                ? $"step '{target}' would run a second time, but it declares no 'loop: {{ max_iterations: N }}'"
                : $"step '{target}' reached loop.max_iterations ({limit}); it would run a {Ordinal(visit)} time", target, "loop_limit", now);
            return;
        }

        var nextRef = new StepRef(target, visit, 1, scope);
        plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, nextRef, new StepScheduledPayload(next.Kind, reason, from.Step.StepId, null), now));
        Enqueue(plan, nextRef, now, from.Priority, allowInline);
    }

    private void Enqueue(PlannedCommit plan, StepRef step, DateTimeOffset availableAt, int priority, bool inline)
    {
        var now = options.TimeProvider.GetUtcNow();
        if (inline && availableAt <= now)
        {
            plan.Events.Add(StoreEvents.StepStarted(step, worker, 1, now));
            plan.Enqueue.Add(new NewWorkItem { Step = step, AvailableAt = now, Priority = priority, LeaseOwner = worker, LeaseExpiresAt = now + options.LeaseDuration });
        }
        else
        {
            plan.Enqueue.Add(new NewWorkItem { Step = step, AvailableAt = availableAt, Priority = priority });
        }
    }

    private void PlanFailure(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepDefinition step, WorkItem item, StepOutcome outcome, double durationMs, DateTimeOffset now, bool allowInline)
    {
        var attempt = item.Step.Attempt;
        var willRetry = outcome.Retryable && attempt < step.Retry.MaxAttempts;
        var delay = TimeSpan.Zero;
        if (willRetry)
        {
            double r;
            lock (_randomGate)
            {
                r = options.Random.NextDouble();
            }

            delay = step.Retry.DelayBefore(attempt + 1, r);
        }

        plan.Events.Add(EventFactory.Step(EventTypes.StepFailed, item.Step,
            new StepFailedPayload(outcome.Error ?? "error", outcome.Message ?? "the step failed", outcome.Retryable, willRetry, willRetry ? delay.TotalMilliseconds : null, durationMs, outcome.Details),
            now, outcome.Agent, outcome.PromptHash, outcome.Model));

        if (willRetry)
        {
            var nextRef = item.Step with { Attempt = attempt + 1 };
            var availableAt = now + delay;
            plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, nextRef, new StepScheduledPayload(step.Kind, "retry", step.Id, delay > TimeSpan.Zero ? availableAt : null), now));
            Enqueue(plan, nextRef, availableAt, item.Priority, allowInline);
            return;
        }

        var attempts = attempt == 1 ? "1 attempt" : $"{attempt} attempts";
        FailJob(plan, $"step '{step.Id}' failed after {attempts}: {outcome.Message}", step.Id, outcome.Error ?? "error", now);
        _ = state;
        _ = workflow;
    }

    private static void FailJob(PlannedCommit plan, string reason, string? step, string error, DateTimeOffset now)
    {
        plan.Events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload(reason, step, error), now));
        plan.DropPendingWork = true;
    }

    private static string Ordinal(int n) => (n % 100) switch
    {
        11 or 12 or 13 => $"{n}th",
        _ => (n % 10) switch { 1 => $"{n}st", 2 => $"{n}nd", 3 => $"{n}rd", _ => $"{n}th" },
    };
}

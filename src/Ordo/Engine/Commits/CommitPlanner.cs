using Ordo.Events;
using Ordo.Expressions;
using Ordo.Policies;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Verification;
using Ordo.Workflows;

namespace Ordo.Engine.Commits;

/// <summary>What a step's commit will write: events, successors, and whether the job's other work is dropped.</summary>
internal sealed class PlannedCommit
{
    public List<NewEvent> Events { get; } = [];

    public List<NewWorkItem> Enqueue { get; } = [];

    public bool DropPendingWork { get; set; }

    /// <summary>Scopes of cancelled branches and items, whose queued work is removed.</summary>
    public List<string> DropScopes { get; } = [];

    /// <summary>Child jobs created in the same transaction.</summary>
    public List<NewJob> StartJobs { get; } = [];

    /// <summary>Work for other jobs (a child asked to stop).</summary>
    public List<OtherJobWork> NotifyJobs { get; } = [];

    /// <summary>Successors leased to this worker in this commit so far.</summary>
    public int Inline { get; set; }

    /// <summary>The most successors leased to this worker in one commit: none unless the plan is made for a worker (then up to what idle workers of its process can take).</summary>
    public int InlineLimit { get; init; }

    /// <summary>
    /// The plan's only successor when it hands the job on to nothing else: one item, leased to <paramref name="worker"/>,
    /// and no work dropped or child job started. Null otherwise.
    /// </summary>
    public NewWorkItem? SoleSuccessor(string worker)
        => Enqueue.Count == 1 && Enqueue[0].LeaseOwner == worker && !DropPendingWork && DropScopes.Count == 0 && StartJobs.Count == 0 ? Enqueue[0] : null;

    /// <summary>
    /// Takes over the plan of this plan's only successor, run before this plan is written (a coordinator started in the
    /// same commit, or pure steps written together): its events follow this plan's, and its successors, drops, child
    /// jobs and notices replace this plan's, whose only successor is never written as a work item.
    /// </summary>
    public void Absorb(PlannedCommit then)
    {
        Events.AddRange(then.Events);
        Enqueue.Clear();
        Enqueue.AddRange(then.Enqueue);
        DropPendingWork = then.DropPendingWork;
        DropScopes.Clear();
        DropScopes.AddRange(then.DropScopes);
        StartJobs.Clear();
        StartJobs.AddRange(then.StartJobs);
        NotifyJobs.Clear();
        NotifyJobs.AddRange(then.NotifyJobs);
        Inline = then.Inline;
    }

    private JobState? _previewBase;
    private JobState? _preview;
    private int _previewed;

    /// <summary>
    /// What <paramref name="state"/> becomes with the events planned so far (sequence number and head hash unchanged).
    /// Events are only ever appended to a plan, so each call applies only those added since the last one.
    /// </summary>
    public JobState Preview(JobState state)
    {
        if (!ReferenceEquals(_previewBase, state) || _previewed > Events.Count)
        {
            (_previewBase, _preview, _previewed) = (state, state, 0);
        }

        for (; _previewed < Events.Count; _previewed++)
        {
            _preview = JobStateReducer.Preview(_preview!, Events[_previewed]);
        }

        return _preview!;
    }
}

/// <summary>
/// Decides, from a job's state and a step attempt's outcome, everything the commit writes: the recorded events,
/// artifact verdicts, the route taken, retries with backoff and variations, loop bounds, approvals, escalations and
/// the end of the job. The same inputs give the same plan, so after a conflict the plan is made again on the newer state.
/// </summary>
internal sealed partial class CommitPlanner(OrdoRuntimeOptions options, ExpressionEvaluator evaluator, ArtifactVerifier verifier, PolicyEngine policies, string worker)
{
    private readonly Lock _randomGate = new();

    // inlineLimit: how many ready successors may be leased to this worker in the commit (the first it runs itself,
    // the others go to this process's idle workers); 0 when stopping.
    public async ValueTask<PlannedCommit> PlanAsync(JobState state, WorkflowDefinition workflow, WorkItem item, StepOutcome outcome, IReadOnlyList<NewEvent> recorded, double durationMs, int inlineLimit, CancellationToken cancellationToken)
    {
        var now = options.TimeProvider.GetUtcNow();
        var step = workflow.GetStep(item.Step.StepId);
        var plan = new PlannedCommit { InlineLimit = inlineLimit };
        plan.Events.AddRange(recorded);

        if (outcome.Interrupt is { } interrupt)
        {
            PlanInterrupt(plan, state, item, interrupt, now);
            return plan;
        }

        if (!outcome.Succeeded)
        {
            await PlanFailureAsync(plan, state, workflow, step, item, outcome, durationMs, now, cancellationToken).ConfigureAwait(false);
            return plan;
        }

        if (outcome.Start is { } start)
        {
            await PlanStartAsync(plan, state, workflow, item, start, now, cancellationToken).ConfigureAwait(false);
            return plan;
        }

        // The step's own tool calls count for evidence and authoritative fields.
        var withCalls = plan.Preview(state);
        var verdict = await verifier.VerifyAsync(workflow, withCalls, item.Step, outcome, now, cancellationToken).ConfigureAwait(false);
        plan.Events.AddRange(verdict.Events);
        if (outcome.Progress is { } unit)
        {
            PlanProgress(plan, state, item, outcome, unit, verdict, now);
            return plan;
        }

        if (verdict.Rejection is not null)
        {
            var retryable = verdict.RejectionError != "policy_denied" && step is AgentStep or ToolStep or CodeStep;
            var violation = StepOutcome.Failure(verdict.RejectionError ?? "contract_violation", verdict.Rejection, retryable) with { Agent = outcome.Agent, PromptHash = outcome.PromptHash, Model = outcome.Model };
            await PlanFailureAsync(plan, state, workflow, step, item, violation, durationMs, now, cancellationToken).ConfigureAwait(false);
            return plan;
        }

        foreach (var v in outcome.Verdicts)
        {
            var type = v.Status == "verified" ? EventTypes.ArtifactVerified : EventTypes.ArtifactRejected;
            plan.Events.Add(EventFactory.Step(type, item.Step, new ArtifactVerdictPayload(v.Name, v.Version, v.Status, v.Reason, null), now, outcome.Agent));
        }

        if (verdict.Approvals.Count > 0)
        {
            // An artifact a policy holds for approval: the step has succeeded, but nothing downstream runs (and the job
            // does not complete) until it is approved; its route is chosen then, with the artifact verified.
            plan.Events.Add(EventFactory.Step(EventTypes.StepSucceeded, item.Step, new StepSucceededPayload(outcome.Output, durationMs, [], outcome.Input)
            {
                HeldBy = [.. verdict.Approvals.Select(a => a.Id)],
            }, now, outcome.Agent, outcome.PromptHash, outcome.Model));
            foreach (var approval in verdict.Approvals)
            {
                RequestApproval(plan, plan.Preview(state), item.Step, approval, now);
            }

            return plan;
        }

        await PlanSuccessAsync(plan, state, workflow, step, item, outcome, durationMs, now, cancellationToken).ConfigureAwait(false);
        return plan;
    }

    /// <summary>The approvals holding a step's route were granted: the route is chosen now, on the state with the artifacts verified.</summary>
    internal async ValueTask RouteHeldStepAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepRef stepRef, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var step = workflow.GetStep(stepRef.StepId);
        var item = new WorkItem { JobId = state.JobId, Step = stepRef, Tenant = state.Tenant, Lease = default };
        var (target, routeError) = ChooseRoute(workflow, step, null, () => plan.Preview(state), item);
        await FollowRouteAsync(plan, state, workflow, step, item, target, routeError, null, now, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask PlanSuccessAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepDefinition step, WorkItem item, StepOutcome outcome, double durationMs, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stamps = (outcome.Agent, outcome.PromptHash, outcome.Model);
        // The state route conditions are evaluated on: with the step's success, route not yet known. Only built when a
        // route has a condition; a successor is scheduled from the plan's own preview (its visit count is all it reads).
        var (target, routeError) = ChooseRoute(workflow, step, outcome.RouteTo, () => JobStateReducer.Preview(plan.Preview(state),
            EventFactory.Step(EventTypes.StepSucceeded, item.Step, new StepSucceededPayload(outcome.Output, durationMs, null, outcome.Input), now, stamps.Agent, stamps.PromptHash, stamps.Model)), item);

        plan.Events.Add(EventFactory.Step(EventTypes.StepSucceeded, item.Step,
            new StepSucceededPayload(outcome.Output, durationMs, target is null ? [] : [target], outcome.Input), now, stamps.Agent, stamps.PromptHash, stamps.Model));
        await FollowRouteAsync(plan, state, workflow, step, item, target, routeError, outcome, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The route a step takes: the outcome's own (a gate's on_reject, a plan's fallback), else the first <c>next</c> entry whose condition holds.</summary>
    private (string? Target, string? Error) ChooseRoute(WorkflowDefinition workflow, StepDefinition step, string? routeTo, Func<JobState> stateForConditions, WorkItem item)
    {
        if (routeTo is not null) return (routeTo, null);
        ExpressionScope? scope = null;
        foreach (var route in step.Next)
        {
            if (route.When is null) return (route.Target, null);
            try
            {
                scope ??= new ExpressionScope { State = stateForConditions(), Attempt = item.Step.Attempt, IncludeQuarantined = step.AcceptsQuarantined, Constraints = workflow.ConstraintsJson, StepScope = item.Step.Scope };
                if (evaluator.EvaluateBoolean(route.When, scope)) return (route.Target, null);
            }
            catch (ExpressionEvaluationException e)
            {
                return (null, $"step '{step.Id}': the route condition failed: {e.Message}");
            }
        }

        return (null, null);
    }

    /// <summary>Goes where the route leads: the end of the flow, <c>fail</c>, or the next step's visit.</summary>
    private async ValueTask FollowRouteAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepDefinition step, WorkItem item, string? target, string? routeError, StepOutcome? outcome, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (routeError is not null)
        {
            await FailFlowAsync(plan, state, workflow, item, routeError, step.Id, "route_error", now, cancellationToken).ConfigureAwait(false);
            return;
        }

        switch (target)
        {
            case null or Route.End:
                await EndOfFlowAsync(plan, state, workflow, item, outcome?.Output ?? plan.Preview(state).StepIn(item.Step.Scope, step.Id)?.Output, now, cancellationToken).ConfigureAwait(false);
                break;
            case Route.Fail:
                await FailFlowAsync(plan, state, workflow, item, outcome?.RouteReason ?? $"step '{step.Id}' routed to 'fail'", step.Id, outcome?.RouteTo is null ? "routed_to_fail" : "rejected", now, cancellationToken).ConfigureAwait(false);
                break;
            default:
                ScheduleVisit(plan, plan.Preview(state), workflow, target, item, "route", now);
                break;
        }
    }

    /// <summary>
    /// A flow reached its end: at top level the job completes (once nothing else is open); inside a branch or an item,
    /// the branch ends with the output of its last step and its coordinating step decides what follows.
    /// </summary>
    private async ValueTask EndOfFlowAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, WorkItem item, System.Text.Json.JsonElement? output, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (item.Step.Scope is { } scope)
        {
            await EndBranchAsync(plan, state, workflow, scope, "succeeded", output, null, item.Priority, now, cancellationToken).ConfigureAwait(false);
            return;
        }

        var preview = plan.Preview(state);
        if (preview.Open.IsEmpty && !preview.HasPendingApprovals && !preview.Status.IsTerminal())
        {
            await CompleteJobAsync(plan, preview, workflow, now, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A flow failed for good: at top level the job fails; inside a branch or an item, the branch fails.</summary>
    private async ValueTask FailFlowAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, WorkItem item, string reason, string? stepId, string error, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (item.Step.Scope is { } scope)
        {
            await EndBranchAsync(plan, state, workflow, scope, "failed", null, reason, item.Priority, now, cancellationToken).ConfigureAwait(false);
            return;
        }

        FailJob(plan, reason, stepId, error, now);
    }

    /// <summary>Completes the job, unless an <c>on: job_complete</c> policy denies it or asks for approval first.</summary>
    internal async ValueTask CompleteJobAsync(PlannedCommit plan, JobState preview, WorkflowDefinition workflow, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var sets = workflow.Project.Policies;
        if (policies.HasRules(sets, PolicyPoint.JobComplete))
        {
            var scope = new ExpressionScope { State = preview, Constraints = workflow.ConstraintsJson };
            var decision = await policies.EvaluateAsync(sets, new PolicyContext(PolicyPoint.JobComplete, scope, preview.JobId.Value), cancellationToken).ConfigureAwait(false);
            if (decision.Deciding is { } d)
            {
                plan.Events.Add(Governance.PolicyEvent(null, PolicyPoint.JobComplete, preview.JobId.Value, decision, now));
                if (decision.Effect == PolicyEffect.Deny)
                {
                    FailJob(plan, $"completion denied by policy {d.Policy} rule '{d.Rule}': {d.Reason}", null, "policy_denied", now);
                    return;
                }

                if (decision.Effect == PolicyEffect.RequireApproval)
                {
                    var approved = preview.Approvals.TryGetValue("job.complete", out var a) && a.Status == "approved";
                    if (!approved)
                    {
                        var req = d.Approval ?? new ApprovalRequirement("approver");
                        RequestApproval(plan, preview, null, new ApprovalRequest("job.complete", "job_complete", req.Role, req.Count, req.Expires is { } ex ? now + ex : null, "fail", d.Reason, d.Rule, d.Policy, "job", null), now);
                        return;
                    }
                }
            }
        }

        plan.Events.Add(EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload((now - preview.CreatedAt).TotalMilliseconds), now));
        plan.DropPendingWork = true;
    }

    internal void ScheduleVisit(PlannedCommit plan, JobState preview, WorkflowDefinition workflow, string target, WorkItem from, string reason, DateTimeOffset now)
    {
        var next = workflow.GetStep(target);
        var scope = from.Step.Scope;
        var visit = preview.VisitsOf(scope, target) + 1;
        var limit = next.MaxIterations ?? 1;
        if (visit > limit)
        {
            FailJob(plan, next.MaxIterations is null
                ? $"step '{target}' would run a second time, but it declares no 'loop: {{ max_iterations: N }}'"
                : $"step '{target}' reached loop.max_iterations ({limit}); it would run for the {Ordinal(visit)} time", target, "loop_limit", now);
            return;
        }

        var nextRef = new StepRef(target, visit, 1, scope);
        plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, nextRef, new StepScheduledPayload(next.Kind, reason, from.Step.StepId, null), now));
        Enqueue(plan, nextRef, now, from.Priority);
    }

    internal void Enqueue(PlannedCommit plan, StepRef step, DateTimeOffset availableAt, int priority)
    {
        var now = options.TimeProvider.GetUtcNow();
        if (availableAt <= now && plan.Inline < plan.InlineLimit)
        {
            plan.Inline++;
            plan.Events.Add(StoreEvents.StepStarted(step, worker, 1, now));
            plan.Enqueue.Add(new NewWorkItem { Step = step, AvailableAt = now, Priority = priority, LeaseOwner = worker, LeaseExpiresAt = now + options.LeaseDuration });
        }
        else
        {
            plan.Enqueue.Add(new NewWorkItem { Step = step, AvailableAt = availableAt, Priority = priority });
        }
    }

    private static void PlanInterrupt(PlannedCommit plan, JobState state, WorkItem item, StepInterrupt interrupt, DateTimeOffset now)
    {
        plan.Events.Add(EventFactory.Step(EventTypes.StepBlocked, item.Step, new StepBlockedPayload(interrupt.By, interrupt.Reason, interrupt.Rule, interrupt.Approval?.Id), now));
        if (interrupt.Approval is { } approval)
        {
            RequestApproval(plan, plan.Preview(state), item.Step, approval, now);
            return;
        }

        if (interrupt.EndStatus == JobStatus.Cancelled)
        {
            plan.Events.Add(EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload(interrupt.Reason, interrupt.By), now));
            plan.DropPendingWork = true;
            return;
        }

        FailJob(plan, interrupt.Reason, item.Step.StepId, interrupt.By switch { "budget" => "budget_exceeded", "policy" => "policy_denied", _ => interrupt.By }, now);
    }

    /// <summary>Asks for a human decision (once per approval id), with a timer for its expiry.</summary>
    internal static void RequestApproval(PlannedCommit plan, JobState preview, StepRef? step, ApprovalRequest approval, DateTimeOffset now)
    {
        if (preview.ShadowOf is not null)
        {
            // A shadow job never asks a human (nor holds production's approvers up): it ends where it would have asked.
            if (plan.Events.Any(e => e.Type == EventTypes.JobCancelled)) return;
            plan.Events.Add(EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload($"a shadow job never asks for approval: it ended at approval '{approval.Id}' ({approval.Kind})", "shadow"), now));
            plan.DropPendingWork = true;
            return;
        }

        if (preview.Approvals.TryGetValue(approval.Id, out var existing) && existing.IsPending)
        {
            return;
        }

        var payload = new ApprovalRequestedPayload(approval.Id, approval.Kind, approval.Role, approval.Count, approval.ExpiresAt, approval.OnExpire, approval.Reason, approval.Rule, approval.Policy, approval.Subject, approval.Show)
        {
            Holds = approval.Holds ? true : null,
        };
        plan.Events.Add(step is { } s ? EventFactory.Step(EventTypes.ApprovalRequested, s, payload, now, policy: approval.Policy) : EventFactory.Job(EventTypes.ApprovalRequested, payload, now, approval.Policy));
        if (approval.ExpiresAt is { } expires)
        {
            plan.Enqueue.Add(new NewWorkItem { Step = new StepRef(SystemItems.ApprovalExpiry, 1, 1, approval.Id), AvailableAt = expires });
        }
    }

    private async ValueTask PlanFailureAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, StepDefinition step, WorkItem item, StepOutcome outcome, double durationMs, DateTimeOffset now, CancellationToken cancellationToken)
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

            // A provider that said when to come back (Retry-After) is not asked sooner, nor later than the step allows.
            if (outcome.RetryAfter is { } after && after > delay)
            {
                delay = after < step.Retry.MaxBackoff ? after : (step.Retry.MaxBackoff > delay ? step.Retry.MaxBackoff : delay);
            }
        }

        plan.Events.Add(EventFactory.Step(EventTypes.StepFailed, item.Step,
            new StepFailedPayload(outcome.Error ?? "error", outcome.Message ?? "the step failed", outcome.Retryable, willRetry, willRetry ? delay.TotalMilliseconds : null, durationMs, outcome.Details),
            now, outcome.Agent, outcome.PromptHash, outcome.Model));

        if (willRetry)
        {
            var nextRef = item.Step with { Attempt = attempt + 1 };
            var availableAt = now + delay;
            plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, nextRef, new StepScheduledPayload(step.Kind, "retry", step.Id, delay > TimeSpan.Zero ? availableAt : null)
            {
                Variations = step.Retry.Vary.Count == 0 ? null : step.Retry.Vary,
            }, now));
            Enqueue(plan, nextRef, availableAt, item.Priority);
            return;
        }

        var attempts = attempt == 1 ? "1 attempt" : $"{attempt} attempts";
        var reason = $"step '{step.Id}' failed after {attempts}: {outcome.Message}";
        if (step.OnFailure == FailureAction.Escalate)
        {
            var id = $"{item.Step.WorkKey}.escalation{attempt}";
            plan.Events.Add(EventFactory.Step(EventTypes.Escalated, item.Step, new EscalatedPayload(reason, id, "step_failure"), now));
            RequestApproval(plan, plan.Preview(state), item.Step,
                new ApprovalRequest(id, "escalation", "operator", 1, null, "fail", reason, null, null, step.Id, Json.Of(new { step = step.Id, error = outcome.Error, message = outcome.Message })), now);
            return;
        }

        await FailFlowAsync(plan, state, workflow, item, reason, step.Id, outcome.Error ?? "error", now, cancellationToken).ConfigureAwait(false);
    }

    internal static void FailJob(PlannedCommit plan, string reason, string? step, string error, DateTimeOffset now)
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

using Ordo.Engine.Commits;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine.Jobs;

/// <summary>
/// Decisions on approvals: by people (<see cref="DecideAsync"/>, under the rules of roles, distinct approvers and no
/// self-approval) and by the clock (an expiry). A decision and what follows from it — the paused step scheduled again, a
/// held route taken, the job completed or failed — are one commit.
/// </summary>
internal sealed class Approvals(EngineContext ctx, JobCommits commits)
{
    /// <summary>Records a person's decision on a pending approval.</summary>
    /// <exception cref="ApprovalException">The decision is not allowed; nothing was recorded.</exception>
    /// <exception cref="JobDefinitionChangedException">The job's stored definition was changed in the database: the job was failed; the decision was not recorded.</exception>
    public Task<ApprovalOutcome> DecideAsync(JobId jobId, string? approvalId, string identity, bool approve, string? reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(identity);
        identity = Identities.Normalize(identity);
        return commits.RetryAsync($"deciding on job {jobId}", async _ =>
        {
            var state = await ctx.States.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new ApprovalException($"job {jobId} does not exist");
            var pending = state.Approvals.Values.Where(a => a.IsPending).OrderBy(a => a.RequestedAt).ToList();
            ApprovalState approval;
            if (approvalId is null)
            {
                approval = pending.Count switch
                {
                    0 => throw new ApprovalException($"job {jobId} has no pending approval (status {state.Status.ToWire()}){ChildHint(state)}"),
                    1 => pending[0],
                    _ => throw new ApprovalException($"job {jobId} has {pending.Count} pending approvals; choose one with --approval ({string.Join(", ", pending.Select(p => p.Id))})"),
                };
            }
            else if (!state.Approvals.TryGetValue(approvalId, out approval!))
            {
                throw new ApprovalException($"job {jobId} has no approval '{approvalId}'" + (pending.Count == 0 ? "" : $" (pending: {string.Join(", ", pending.Select(p => p.Id))})"));
            }

            if (!approval.IsPending)
            {
                throw new ApprovalException($"approval {approval.Id} of job {jobId} is already {approval.Status}");
            }

            if (state.Status.IsTerminal())
            {
                throw new ApprovalException($"job {jobId} has already ended ({state.Status.ToWire()})");
            }

            WorkflowDefinition workflow;
            try
            {
                workflow = await ctx.DefinitionAsync(state, cancellationToken).ConfigureAwait(false);
            }
            catch (Audit.DefinitionChangedException e)
            {
                // The roles and what follows the decision come from a definition that can no longer be trusted: the job
                // ends as it would have when its next step was about to run, and the decision is not recorded.
                if (!await FailChangedAsync(state, approval, e, cancellationToken).ConfigureAwait(false)) return (false, default(ApprovalOutcome)!);
                throw new JobDefinitionChangedException(jobId, e);
            }

            var now = ctx.Time.GetUtcNow();
            if (approval.ExpiresAt is { } expires && now >= expires)
            {
                var expired = await CommitDecisionAsync(state, workflow, approval, "expire", "system", $"expired at {expires:O}", null, null, cancellationToken).ConfigureAwait(false);
                if (expired is null) return (false, default(ApprovalOutcome)!);
                throw new ApprovalException($"approval {approval.Id} of job {jobId} expired at {expires:O}; on_expire: {approval.OnExpire} was applied (job {expired.JobStatus.ToWire()})");
            }

            // People are named in one form (Identities): "Alice " is alice, for the two-person rule as for roles.
            if (Identities.Same(identity, state.Submitter))
            {
                throw new ApprovalException($"{identity} submitted job {jobId} and may not approve or deny its own approvals");
            }

            var roles = RolesOf(workflow, state.Tenant, identity, approval.Role);
            if (approve && approval.Approvers.Any(a => Identities.Same(a, identity)))
            {
                throw new ApprovalException($"{identity} has already approved {approval.Id}; it needs {approval.Count} distinct approvers");
            }

            var outcome = await CommitDecisionAsync(state, workflow, approval, approve ? "approve" : "deny", identity, reason, roles, null, cancellationToken).ConfigureAwait(false);
            return (outcome is not null, outcome!);
        }, cancellationToken);
    }

    /// <summary>Applies an approval's expiry when its timer item fires; acknowledges the item either way.</summary>
    public Task ExpireAsync(WorkItem item)
        => commits.RetryAsync($"expiring {item.Step.Scope} of job {item.JobId}", async _ =>
        {
            var state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
            if (state is null) return (true, 0);
            if (item.Step.Scope is { } id && state.Approvals.TryGetValue(id, out var approval) && approval.IsPending && !state.Status.IsTerminal()
                && approval.ExpiresAt is { } expires && ctx.Time.GetUtcNow() >= expires)
            {
                var workflow = await ctx.DefinitionAsync(state, CancellationToken.None).ConfigureAwait(false);
                var outcome = await CommitDecisionAsync(state, workflow, approval, "expire", "system", $"expired at {expires:O}", null, item.Lease, CancellationToken.None).ConfigureAwait(false);
                return (outcome is not null, 0);
            }

            await commits.DiscardAsync(item, state).ConfigureAwait(false);
            return (true, 0);
        }, CancellationToken.None);

    /// <summary>
    /// Fails a job whose stored definition changed (<c>definition_changed</c>): the step the approval holds fails, then the
    /// job, and its pending work is dropped. False on a conflict (the caller reloads and decides again).
    /// </summary>
    private async Task<bool> FailChangedAsync(JobState state, ApprovalState approval, Audit.DefinitionChangedException changed, CancellationToken cancellationToken)
    {
        const string error = "definition_changed";
        var now = ctx.Time.GetUtcNow();
        var plan = new PlannedCommit { DropPendingWork = true };
        if (approval.StepId is { } stepId)
        {
            var step = new StepRef(stepId, approval.Visit ?? 1, approval.Attempt ?? 1, approval.Scope);
            plan.Events.Add(EventFactory.Step(EventTypes.StepFailed, step, new StepFailedPayload(error, changed.Message, false, false, null, 0, null), now));
            plan.Events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"step '{stepId}' cannot run: {changed.Message}", stepId, error), now));
        }
        else
        {
            plan.Events.Add(EventFactory.Job(EventTypes.JobFailed, new JobFailedPayload($"the job cannot continue: {changed.Message}", null, error), now));
        }

        plan.NotifyJobs.AddRange(JobCommits.ChildStops(state));
        var (result, _, _) = await commits.CommitAsync(state, plan, null, cancellationToken).ConfigureAwait(false);
        return result.Outcome switch
        {
            CommitOutcome.Committed => true,
            CommitOutcome.Conflict => false,
            _ => throw new ApprovalException($"job {state.JobId} could not be failed ({result.Outcome}): {changed.Message}"),
        };
    }

    /// <summary>For a job that waits on its child jobs: where the approvals may be.</summary>
    private static string ChildHint(JobState state)
    {
        var children = state.Patterns.Values.SelectMany(p => p.Branches.Values).Where(b => b.Status == "running" && b.ChildJobId is not null).Select(b => b.ChildJobId!).ToList();
        return children.Count == 0 ? "" : $"; it waits for its child job{(children.Count == 1 ? "" : "s")} {string.Join(", ", children)}, whose approvals are decided on the child (ordo show CHILD_ID)";
    }

    private static IReadOnlyList<string> RolesOf(WorkflowDefinition workflow, string tenant, string identity, string role)
    {
        var tenants = workflow.Project.Tenants;
        if (tenants.Count == 0)
        {
            // No tenants configured (embedded use): roles are not enforced.
            return [];
        }

        if (!tenants.TryGetValue(tenant, out var t))
        {
            throw new ApprovalException($"tenant '{tenant}' is not configured in ordo.yaml, so nobody holds role '{role}' for it");
        }

        var roles = t.Roles.FirstOrDefault(r => Identities.Same(r.Key, identity)).Value ?? [];
        if (!roles.Contains(role, StringComparer.Ordinal))
        {
            throw new ApprovalException($"{identity} does not hold role '{role}' in tenant '{tenant}'" + (roles.Count == 0 ? "" : $" (holds: {string.Join(", ", roles)})"));
        }

        return roles;
    }

    /// <summary>Commits a decision and what follows from it; returns null on a conflict (the caller reloads and tries again).</summary>
    private async Task<ApprovalOutcome?> CommitDecisionAsync(JobState state, WorkflowDefinition workflow, ApprovalState approval, string decision, string by, string? reason, IReadOnlyList<string>? roles, WorkItemLease? ack, CancellationToken cancellationToken)
    {
        var now = ctx.Time.GetUtcNow();
        var plan = new PlannedCommit();
        var approvers = approval.Approvers.Count() + (decision == "approve" ? 1 : 0);
        var status = decision switch
        {
            "deny" => "denied",
            "expire" => approval.OnExpire == "approve" ? "approved" : "expired",
            _ => approvers >= approval.Count ? "approved" : "pending",
        };
        var decided = EventFactory.Job(EventTypes.ApprovalDecided, new ApprovalDecidedPayload(approval.Id, decision, by, reason, status, roles), now);
        plan.Events.Add(approval.StepId is { } sid ? EventFactory.Step(EventTypes.ApprovalDecided, new StepRef(sid, approval.Visit ?? 1, approval.Attempt ?? 1, approval.Scope), new ApprovalDecidedPayload(approval.Id, decision, by, reason, status, roles), now) : decided);

        if (status == "approved")
        {
            await FollowApprovalAsync(plan, state, workflow, approval, now, cancellationToken).ConfigureAwait(false);
        }
        else if (status is "denied" or "expired")
        {
            var why = decision == "expire"
                ? $"approval {approval.Id} ({Describe(approval)}) expired"
                : $"approval {approval.Id} ({Describe(approval)}) denied by {by}{(reason is null ? "" : $": {reason}")}";
            if (decision == "expire" && approval.OnExpire is not ("fail" or "deny") && workflow.FindStep(approval.OnExpire) is not null && approval.StepId is { } from)
            {
                ctx.Planner.ScheduleVisit(plan, plan.Preview(state), workflow, approval.OnExpire,
                    new WorkItem { JobId = state.JobId, Step = new StepRef(from, approval.Visit ?? 1, approval.Attempt ?? 1, approval.Scope), Tenant = state.Tenant, Lease = default }, "expired", now);
            }
            else
            {
                CommitPlanner.FailJob(plan, why, approval.StepId, decision == "expire" ? "approval_expired" : "approval_denied", now);
            }
        }

        var (result, post, _) = await commits.CommitAsync(state, plan, ack, cancellationToken).ConfigureAwait(false);
        if (result.Outcome == CommitOutcome.Conflict) return null;
        if (result.Outcome != CommitOutcome.Committed) throw new ApprovalException($"the decision could not be recorded ({result.Outcome})");
        var remaining = status == "pending" ? approval.Count - approvers : 0;
        return new ApprovalOutcome(approval.Id, status, post.Status, remaining);
    }

    /// <summary>What an approval lets continue: the paused step, the escalated step, the completion, the artifact.</summary>
    private async Task FollowApprovalAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, ApprovalState approval, DateTimeOffset now, CancellationToken cancellationToken)
    {
        switch (approval.Kind)
        {
            case "job_complete":
                await ctx.Planner.CompleteJobAsync(plan, plan.Preview(state), workflow, now, cancellationToken).ConfigureAwait(false);
                return;
            case "artifact":
            {
                var at = approval.Subject?.LastIndexOf('@') ?? -1;
                if (at > 0 && int.TryParse(approval.Subject![(at + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var version))
                {
                    plan.Events.Add(EventFactory.Job(EventTypes.ArtifactVerified, new ArtifactVerdictPayload(approval.Subject[..at], version, "verified", $"approved ({approval.Id})", null), now));
                }

                if (approval.Holds && approval.StepId is { } held)
                {
                    // The step goes on once every approval holding it is granted: its route (it succeeded), or its next unit (it paused).
                    var after = plan.Preview(state);
                    if (after.Approvals.Values.Any(a => a.IsPending && a.Holds && a.StepId == held && a.Visit == approval.Visit && a.Scope == approval.Scope)) return;
                    var stepRef = new StepRef(held, approval.Visit ?? 1, approval.Attempt ?? 1, approval.Scope);
                    if (after.Steps.TryGetValue(WorkKeys.VisitKey(approval.Scope, held), out var st) && st.Status == "succeeded" && st.Visit == stepRef.Visit)
                    {
                        await ctx.Planner.RouteHeldStepAsync(plan, state, workflow, stepRef, now, cancellationToken).ConfigureAwait(false);
                    }
                    else if (workflow.FindStep(held) is { } paused)
                    {
                        plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, stepRef, new StepScheduledPayload(paused.Kind, "approved", approval.Id, null), now));
                        plan.Enqueue.Add(new NewWorkItem { Step = stepRef, AvailableAt = now });
                    }

                    return;
                }

                break;
            }

            default:
                if (approval.StepId is { } stepId && workflow.FindStep(stepId) is { } step)
                {
                    var attempt = (approval.Attempt ?? 1) + (approval.Kind == "escalation" ? 1 : 0);
                    var again = new StepRef(stepId, approval.Visit ?? 1, attempt, approval.Scope);
                    plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, again, new StepScheduledPayload(step.Kind, "approved", approval.Id, null), now));
                    plan.Enqueue.Add(new NewWorkItem { Step = again, AvailableAt = now });
                    return;
                }

                break;
        }

        // Nothing else to run and nobody else to wait for: the job is done.
        var preview = plan.Preview(state);
        if (preview.Open.IsEmpty && !preview.HasPendingApprovals && !preview.Status.IsTerminal() && !plan.Events.Any(e => e.Type is EventTypes.JobCompleted or EventTypes.JobFailed))
        {
            await ctx.Planner.CompleteJobAsync(plan, preview, workflow, now, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Describe(ApprovalState a) => a.Kind switch
    {
        "tool_call" => $"tool call {a.Subject}",
        "step" => $"step {a.Subject}",
        "artifact" => $"artifact {a.Subject}",
        "job_complete" => "job completion",
        "escalation" => $"escalation of step {a.Subject}",
        "budget" => $"budget {a.Subject}",
        _ => a.Subject ?? a.Kind,
    };
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Verification;
using Ordo.Workflows;

namespace Ordo.Engine.Commits;

/// <summary>
/// The coordination patterns' part of the plan: starting branches, items and child jobs; ending a branch and deciding,
/// from the join policy, whether the coordinating step succeeds, fails, or starts more items; recording units of
/// multi-phase steps. Every decision is an event, committed with the step that caused it.
/// </summary>
internal sealed partial class CommitPlanner
{
    /// <summary>A coordinating step starts its branches (parallel), its first items (foreach) or its child job (workflow), and waits.</summary>
    private async ValueTask PlanStartAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, WorkItem item, PatternStart start, DateTimeOffset now, CancellationToken cancellationToken)
    {
        plan.Events.Add(EventFactory.Step(EventTypes.PatternStarted, item.Step,
            new PatternStartedPayload(start.Kind, start.Count, start.Labels, start.Items, start.Join, start.Needed, start.MaxConcurrency, start.Do), now));
        if (start.Count == 0)
        {
            // Nothing to map over: the step succeeds at once with an empty result.
            var step = workflow.GetStep(item.Step.StepId);
            var empty = start.Kind == "foreach" ? JsonElementFactory.EmptyArray : JsonElementFactory.EmptyObject;
            await PlanSuccessAsync(plan, state, workflow, step, item, StepOutcome.Success(empty), 0, now, cancellationToken).ConfigureAwait(false);
            return;
        }

        var pattern = plan.Preview(state).Patterns[item.Step.WorkKey];
        var first = start.Kind == "foreach" ? Math.Min(start.Count, Math.Max(1, start.MaxConcurrency ?? start.Count)) : start.Count;
        for (var i = 0; i < first; i++)
        {
            StartBranch(plan, state, workflow, pattern, item.Step, LabelOf(pattern, i), item.Priority, now);
        }
    }

    /// <summary>The label of the i-th branch: the branch's first step (parallel), the index (foreach), <c>child</c> (workflow).</summary>
    private static string LabelOf(PatternState pattern, int i) => pattern.Kind switch
    {
        "parallel" => pattern.Labels[i],
        "workflow" => "child",
        _ => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private void StartBranch(PlannedCommit plan, JobState state, WorkflowDefinition workflow, PatternState pattern, StepRef owner, string label, int priority, DateTimeOffset now)
    {
        var scope = WorkKeys.BranchScope(owner.WorkKey, label);
        var childRef = pattern.Kind == "workflow" || (pattern.Do?.Contains('@', StringComparison.Ordinal) ?? false) ? pattern.Do : null;
        if (childRef is not null)
        {
            var child = workflow.SubWorkflows.TryGetValue(childRef, out var c) ? c : throw new OrdoException($"workflow {workflow.Ref} does not carry sub-workflow {childRef}");
            var index = pattern.Kind == "workflow" ? 0 : int.Parse(label, System.Globalization.CultureInfo.InvariantCulture);
            var input = pattern.Items is { ValueKind: JsonValueKind.Array } items && index < items.GetArrayLength() ? items[index] : JsonElementFactory.EmptyObject;
            var job = NewChildJob(state, child, input, scope, priority, now);
            plan.Events.Add(EventFactory.Step(EventTypes.BranchStarted, owner, new BranchStartedPayload(label, scope, job.JobId.Value, child.Ref), now));
            plan.StartJobs.Add(job);
            return;
        }

        // A branch of steps starts with its first step scheduled in the branch's scope (reason branch or item): that
        // event is the branch's start; only a child job gets a BranchStarted event of its own (it names the child).
        var entry = pattern.Kind == "parallel" ? label : pattern.Do!;
        var entryStep = workflow.GetStep(entry);
        var entryRef = new StepRef(entry, 1, 1, scope);
        plan.Events.Add(EventFactory.Step(EventTypes.StepScheduled, entryRef, new StepScheduledPayload(entryStep.Kind, pattern.Kind == "parallel" ? "branch" : "item", owner.StepId, null), now));
        Enqueue(plan, entryRef, now, priority);
    }

    /// <summary>The child job of a sub-workflow branch: created in the parent's commit, linked to the parent and its branch, sharing its trace.</summary>
    private static NewJob NewChildJob(JobState parent, WorkflowDefinition child, JsonElement input, string branchScope, int priority, DateTimeOffset now)
    {
        var id = JobId.New(now);
        var root = parent.RootJobId ?? parent.JobId.Value;
        var entry = new StepRef(child.Entry.Id, 1, 1);
        var events = EventChain.Seal(id, 0, EventChain.GenesisHash,
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload(child.Name, child.Version, child.Hash, parent.Tenant, parent.Submitter, input, child.ConstraintsJson, parent.JobId.Value, branchScope, parent.TraceId, priority)
            {
                RootJobId = root,
                DryRun = parent.DryRun ? true : null,
                ShadowOf = parent.ShadowOf,
            }, now),
            EventFactory.Step(EventTypes.StepScheduled, entry, new StepScheduledPayload(child.Entry.Kind, "entry", null, null), now),
        ]);
        return new NewJob
        {
            JobId = id, Workflow = child.Name, Version = child.Version, Tenant = parent.Tenant, Submitter = parent.Submitter,
            Definition = child.StoredDefinition, ParentJobId = parent.JobId, RootJobId = new JobId(root), TraceId = parent.TraceId,
            Priority = priority, CreatedAt = now, Events = events, Shadow = parent.ShadowOf is not null,
            WorkItems = [new NewWorkItem { Step = entry, AvailableAt = now, Priority = priority }],
        };
    }

    /// <summary>
    /// A branch, an item or a child job ended. Records it on the coordinating step, then applies the join policy:
    /// <c>all</c> fails on the first failure and succeeds when every branch did; <c>any</c> and <c>quorum(N)</c> succeed
    /// on the N-th success (the branches still running are cancelled, and say so) and fail once N successes are out
    /// of reach; a foreach starts the next items up to <c>max_concurrency</c>, fails on a failed item, and succeeds with
    /// every item's result in input order. A result for a branch that already ended (cancelled) changes nothing.
    /// </summary>
    internal async ValueTask EndBranchAsync(PlannedCommit plan, JobState state, WorkflowDefinition workflow, string branchScope, string status, JsonElement? output, string? reason, int priority, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (ownerKey, label) = WorkKeys.SplitScope(branchScope);
        var preview = plan.Preview(state);
        if (!preview.Patterns.TryGetValue(ownerKey, out var pattern) || pattern.Ended
            || !pattern.Branches.TryGetValue(label, out var branch) || branch.Status != "running")
        {
            return;
        }

        var ownerStep = workflow.GetStep(pattern.StepId);
        var ownerRef = new StepRef(pattern.StepId, pattern.Visit, pattern.Attempt, pattern.Scope);
        plan.Events.Add(EventFactory.Step(EventTypes.BranchEnded, ownerRef, new BranchEndedPayload(label, status, output, reason, branch.ChildJobId), now));
        pattern = plan.Preview(state).Patterns[ownerKey];
        var owner = new WorkItem { JobId = state.JobId, Step = ownerRef, Tenant = state.Tenant, Priority = priority, Lease = default };
        var what = Describe(pattern, label);

        string? failure = null;
        var succeed = false;
        switch (pattern.Kind)
        {
            case "parallel" when pattern.Join == "all":
                if (status == "failed") failure = $"{what} failed: {reason}";
                else succeed = pattern.Succeeded == pattern.Count;
                break;
            case "parallel":
                if (pattern.Succeeded >= pattern.Needed) succeed = true;
                else if (pattern.Count - pattern.Failed < pattern.Needed)
                    failure = $"{pattern.Failed} of {pattern.Count} branches failed, so join_policy {JoinName(pattern)} can no longer be met (last: {what}: {reason})";
                break;
            default:
                if (status == "failed") failure = $"{what} failed: {reason}";
                else if (pattern.Succeeded == pattern.Count) succeed = true;
                else
                {
                    var more = Math.Min(pattern.Count - pattern.Started, Math.Max(1, pattern.MaxConcurrency) - pattern.Running);
                    for (var i = 0; i < more; i++)
                    {
                        StartBranch(plan, state, workflow, pattern, ownerRef, LabelOf(pattern, pattern.Started + i), priority, now);
                    }
                }

                break;
        }

        if (failure is not null)
        {
            CancelRunning(plan, state, ownerKey, ownerRef, $"cancelled: {what} failed", now);
            var failed = StepOutcome.Failure("branch_failed", failure, retryable: false);
            await PlanFailureAsync(plan, state, workflow, ownerStep, owner, failed, 0, now, cancellationToken).ConfigureAwait(false);
        }
        else if (succeed)
        {
            CancelRunning(plan, state, ownerKey, ownerRef, $"cancelled: join_policy {JoinName(pattern)} was met", now);
            var result = ResultOf(plan.Preview(state).Patterns[ownerKey]);
            var outcome = StepOutcome.Success(result) with { RouteTo = ownerStep is ParallelStep { Join: { } join } ? join : null };
            await PlanSuccessAsync(plan, state, workflow, ownerStep, owner, outcome, 0, now, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string JoinName(PatternState p) => p.Join == "quorum" ? $"quorum({p.Needed})" : p.Join;

    private static string Describe(PatternState p, string label) => p.Kind switch
    {
        "parallel" => $"branch '{label}'",
        "workflow" => "the child job",
        _ => $"item {label}",
    };

    /// <summary>Cancels the branches still running: an event each, their queued work dropped, their child jobs asked to stop.</summary>
    private static void CancelRunning(PlannedCommit plan, JobState state, string ownerKey, StepRef ownerRef, string reason, DateTimeOffset now)
    {
        var preview = plan.Preview(state);
        var pattern = preview.Patterns[ownerKey];
        foreach (var (label, branch) in pattern.Branches.Where(b => b.Value.Status == "running").OrderBy(b => b.Key, StringComparer.Ordinal))
        {
            plan.Events.Add(EventFactory.Step(EventTypes.BranchEnded, ownerRef, new BranchEndedPayload(label, "cancelled", null, reason, branch.ChildJobId), now));
            plan.DropScopes.Add(branch.Scope);

            // The branch's own child job, and those of patterns running inside the branch (a sub-workflow step in a
            // parallel branch, a foreach of sub-workflows in it): each is asked to stop.
            var children = ChildJobsWithin(preview, branch.Scope);
            if (branch.ChildJobId is { } own) children.Insert(0, own);
            plan.NotifyJobs.AddRange(children.Distinct(StringComparer.Ordinal).Select(child => CancelRequest(child, state.JobId, now)));
        }
    }

    /// <summary>The <c>$cancel-requested</c> item that asks a child job to stop because <paramref name="parent"/> no longer needs it.</summary>
    internal static OtherJobWork CancelRequest(string childJobId, JobId parent, DateTimeOffset at)
        => new(new JobId(childJobId), new NewWorkItem { Step = new StepRef(SystemItems.CancelRequested, 1, 1, parent.Value), AvailableAt = at });

    /// <summary>The running child jobs of the patterns that run inside <paramref name="scope"/> (at any depth).</summary>
    private static List<string> ChildJobsWithin(JobState state, string scope)
    {
        return [.. state.Patterns.Values
            .Where(p => !p.Ended && WorkKeys.IsWithin(p.Scope, scope))
            .OrderBy(p => p.Scope, StringComparer.Ordinal).ThenBy(p => p.StepId, StringComparer.Ordinal)
            .SelectMany(p => p.Branches.Values.Where(b => b.Status == "running" && b.ChildJobId is not null).OrderBy(b => b.Scope, StringComparer.Ordinal))
            .Select(b => b.ChildJobId!)];
    }

    /// <summary>The coordinating step's output: branch outputs by branch (parallel), item results in input order (foreach), the child's result (workflow).</summary>
    private static JsonElement ResultOf(PatternState pattern)
    {
        switch (pattern.Kind)
        {
            case "parallel":
            {
                var o = new JsonObject();
                foreach (var label in pattern.Labels)
                {
                    if (pattern.Branches.TryGetValue(label, out var b) && b.Status == "succeeded") o[label] = b.Output is { } v ? JsonNode.Parse(v.GetRawText()) : null;
                }

                return JsonElementFactory.FromNode(o);
            }

            case "workflow":
                return pattern.Branches.TryGetValue("child", out var child) && child.Output is { } r ? r : JsonElementFactory.EmptyObject;
            default:
            {
                var buffer = new System.Buffers.ArrayBufferWriter<byte>();
                using (var w = new Utf8JsonWriter(buffer))
                {
                    w.WriteStartArray();
                    for (var i = 0; i < pattern.Count; i++)
                    {
                        if (pattern.Branches.TryGetValue(i.ToString(System.Globalization.CultureInfo.InvariantCulture), out var b) && b.Output is { } v) v.WriteTo(w);
                        else w.WriteNullValue();
                    }

                    w.WriteEndArray();
                }

                return JsonElementFactory.Parse(buffer.WrittenSpan);
            }
        }
    }

    /// <summary>
    /// A unit of a multi-phase step: recorded (with the verdict on its artifact), and the step runs again for the next
    /// unit — unless a policy holds the unit's artifact for approval: the unit is recorded as <c>held</c> (its output
    /// kept), the step pauses, and it runs its next unit once the approval is granted.
    /// </summary>
    private void PlanProgress(PlannedCommit plan, JobState state, WorkItem item, StepOutcome outcome, PatternUnit unit, VerificationResult verdict, DateTimeOffset now)
    {
        var data = unit.Data;
        var held = verdict.Rejection is null && verdict.Approvals.Count > 0;
        if (outcome.Artifacts.Count > 0)
        {
            var status = verdict.Rejection is not null ? "rejected" : held ? "held" : verdict.Events.Any(e => e.Type == EventTypes.ArtifactQuarantined) ? "quarantined" : "verified";
            var node = JsonNode.Parse(data.GetRawText()) as JsonObject ?? new JsonObject { ["value"] = JsonNode.Parse(data.GetRawText()) };
            node["verdict"] = status;
            if (verdict.Rejection is not null) node["verdict_reason"] = verdict.Rejection;
            else if (status == "quarantined") node["verdict_reason"] = verdict.Events.Where(e => e.Type == EventTypes.ArtifactQuarantined).Select(e => (e.TypedPayload as ArtifactVerdictPayload)?.Reason).FirstOrDefault();
            if (status is not ("verified" or "held")) node.Remove("output");
            data = JsonElementFactory.FromNode(node);
        }

        var number = state.Patterns.TryGetValue(item.Step.WorkKey, out var p) ? p.Progress.Count : 0;
        plan.Events.Add(EventFactory.Step(EventTypes.PatternProgressed, item.Step, new PatternProgressedPayload(unit.Kind, unit.Phase, number, data), now, outcome.Agent, outcome.PromptHash, outcome.Model));
        if (!held)
        {
            Enqueue(plan, item.Step, now, item.Priority);
            return;
        }

        var first = verdict.Approvals[0];
        plan.Events.Add(EventFactory.Step(EventTypes.StepBlocked, item.Step, new StepBlockedPayload("approval", $"artifact {first.Subject} needs approval: {first.Reason} (policy {first.Policy} rule '{first.Rule}')", first.Rule, first.Id), now));
        foreach (var approval in verdict.Approvals)
        {
            RequestApproval(plan, plan.Preview(state), item.Step, approval, now);
        }
    }
}

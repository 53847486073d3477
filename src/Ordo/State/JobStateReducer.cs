using System.Collections.Immutable;
using Ordo.Events;

namespace Ordo.State;

/// <summary>
/// Derives a job's state from its events, one event at a time. The cost of applying an event does not
/// depend on the length of the log: state is never rebuilt from the whole history per step.
/// </summary>
public static class JobStateReducer
{
    /// <summary>Creates the initial state from the job's first event, which must be <see cref="EventTypes.JobSubmitted"/>.</summary>
    /// <exception cref="InvalidDataException">The event is not a JobSubmitted event with sequence number 1.</exception>
    public static JobState Start(EventEnvelope submitted)
    {
        ArgumentNullException.ThrowIfNull(submitted);
        if (submitted.Type != EventTypes.JobSubmitted || submitted.Seq != 1)
        {
            throw new InvalidDataException($"Job {submitted.JobId}: the log must start with JobSubmitted at seq 1, found {submitted.Type} at seq {submitted.Seq}.");
        }

        var p = submitted.GetPayload<JobSubmittedPayload>();
        return new JobState
        {
            JobId = submitted.JobId,
            Workflow = p.Workflow,
            Version = p.Version,
            DefinitionHash = p.DefinitionHash,
            Tenant = p.Tenant,
            Submitter = p.Submitter,
            TraceId = p.TraceId,
            RootSpanId = p.SpanId,
            ParentJobId = p.ParentJobId,
            ParentBranch = p.ParentStepId,
            RootJobId = p.RootJobId,
            Input = p.Input,
            DryRun = p.DryRun == true,
            ShadowOf = p.ShadowOf,
            Seq = 1,
            HeadHash = submitted.Hash,
            Status = JobStatus.Queued,
            CreatedAt = submitted.Timestamp,
            UpdatedAt = submitted.Timestamp,
        };
    }

    /// <summary>Applies events in order.</summary>
    public static JobState Apply(JobState state, IEnumerable<EventEnvelope> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var e in events)
        {
            state = Apply(state, e);
        }

        return state;
    }

    /// <summary>Applies one event, which must be the next in sequence.</summary>
    /// <exception cref="InvalidDataException">The event is not the next one of this job's log.</exception>
    public static JobState Apply(JobState state, EventEnvelope e)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(e);
        if (e.Seq != state.Seq + 1 || e.JobId != state.JobId)
        {
            throw new InvalidDataException($"Job {state.JobId}: expected event seq {state.Seq + 1}, got {e.JobId} seq {e.Seq}.");
        }

        var next = Settle(Released(ApplyContent(state, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, e.Agent, e, e.Timestamp), e.Type, e.StepId, e.Visit, e.Scope));
        return next with { Seq = e.Seq, HeadHash = e.Hash, UpdatedAt = e.Timestamp };
    }

    /// <summary>
    /// Applies the content of events that are not yet sealed, to see what the state would become
    /// (used to evaluate routes over a step's own result before it is committed).
    /// Sequence number and head hash are left unchanged.
    /// </summary>
    public static JobState Preview(JobState state, IEnumerable<NewEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        foreach (var e in events)
        {
            state = Preview(state, e);
        }

        return state;
    }

    /// <summary>Applies the content of one event that is not yet sealed; see <see cref="Preview(JobState, IEnumerable{NewEvent})"/>.</summary>
    public static JobState Preview(JobState state, NewEvent e)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(e);
        var envelope = new EventEnvelope(state.JobId, state.Seq + 1, e.Type, e.Timestamp, e.Payload, state.HeadHash, state.HeadHash);
        envelope.SetTypedPayload(e.TypedPayload);
        return Settle(Released(ApplyContent(state, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, e.Agent, envelope, e.Timestamp), e.Type, e.StepId, e.Visit, e.Scope));
    }

    /// <summary>A job ended: nothing is open any more, and approvals still pending are cancelled (nobody can decide them now).</summary>
    private static JobState Ended(JobState s)
    {
        var approvals = s.Approvals;
        foreach (var (id, a) in s.Approvals)
        {
            if (a.IsPending) approvals = approvals.SetItem(id, a with { Status = "cancelled" });
        }

        return s with { Open = s.Open.Clear(), Approvals = approvals, Reservations = s.Reservations.Clear() };
    }

    /// <summary>
    /// A step visit that starts a delivery or ends holds no model call in flight any more: reservations its calls left
    /// (a process that died mid-call never recorded their outcome) are released.
    /// </summary>
    private static JobState Released(JobState s, string type, string? stepId, int? visit, string? scope)
    {
        if (s.Reservations.IsEmpty || stepId is null || type is not (EventTypes.StepStarted or EventTypes.StepSucceeded or EventTypes.StepFailed or EventTypes.StepBlocked))
        {
            return s;
        }

        var key = WorkKeys.For(scope, stepId, visit ?? 1);
        var reservations = s.Reservations;
        foreach (var (id, r) in s.Reservations)
        {
            if (r.WorkKey == key) reservations = reservations.Remove(id);
        }

        return reservations.Count == s.Reservations.Count ? s : s with { Reservations = reservations };
    }

    /// <summary>
    /// A job that has not ended is waiting for approval exactly when an approval is pending and nothing can move without
    /// it: no step is scheduled or running, only coordinating steps waiting for their branches (a parallel whose last
    /// open branch is paused, a step whose successors an approval holds). Whatever event brought it there.
    /// </summary>
    private static JobState Settle(JobState s)
    {
        if (s.Status is not (JobStatus.Running or JobStatus.WaitingApproval)) return s;
        var waiting = !s.Approvals.IsEmpty && s.HasPendingApprovals && s.Open.Values.All(w => w.Status == "waiting");
        return waiting == (s.Status == JobStatus.WaitingApproval) ? s : s with { Status = waiting ? JobStatus.WaitingApproval : JobStatus.Running };
    }

    /// <summary>A branch, item or child of a coordinating step started: <paramref name="scope"/> is <c>OWNER#VISIT/LABEL</c>.</summary>
    private static JobState StartBranch(JobState s, string scope, string? childJobId)
    {
        var (owner, label) = WorkKeys.SplitScope(scope);
        if (!s.Patterns.TryGetValue(owner, out var pattern) || pattern.Branches.ContainsKey(label)) return s;
        pattern = pattern with
        {
            Branches = pattern.Branches.SetItem(label, new BranchState("running", scope, null, null, childJobId)),
            Running = pattern.Running + 1,
        };
        return s with { Patterns = s.Patterns.SetItem(owner, pattern) };
    }

    private static JobState ApplyContent(JobState s, string type, string? stepId, int? visit, int? attempt, string? scope, string? agent, EventEnvelope e, DateTimeOffset ts)
    {
        switch (type)
        {
            case EventTypes.StepScheduled:
            {
                var step = stepId!;
                var v = visit ?? 1;
                var a = attempt ?? 1;
                var visitKey = WorkKeys.VisitKey(scope, step);
                var visits = s.Visits.TryGetValue(visitKey, out var known) && known >= v ? s.Visits : s.Visits.SetItem(visitKey, v);
                var stepKey = WorkKeys.VisitKey(scope, step);
                var prev = s.Steps.GetValueOrDefault(stepKey);
                var newVisit = prev is null || prev.Visit != v || prev.Scope != scope;
                var st = new StepState
                {
                    Id = step,
                    Status = "scheduled",
                    Visit = v,
                    Attempts = newVisit ? 0 : prev!.Attempts,
                    TotalAttempts = prev?.TotalAttempts ?? 0,
                    DurationMs = prev?.DurationMs ?? 0,
                    // steps.ID.output stays the latest successful visit's output until a new visit succeeds.
                    Output = prev?.Output,
                    Error = newVisit ? null : prev!.Error,
                    Scope = scope,
                };
                var scheduled = e.GetPayload<StepScheduledPayload>();
                var next = s with
                {
                    Visits = visits,
                    Steps = s.Steps.SetItem(stepKey, st),
                    Open = s.Open.SetItem(WorkKeys.For(scope, step, v), new OpenWork(step, v, a, scope, "scheduled") { Variations = scheduled.Variations }),
                };
                return scheduled.Reason is "branch" or "item" && scope is not null ? StartBranch(next, scope, null) : next;
            }

            case EventTypes.StepStarted:
            {
                var step = stepId!;
                var key = WorkKeys.For(scope, step, visit ?? 1);
                var open = s.Open.TryGetValue(key, out var w) ? s.Open.SetItem(key, w with { Status = "running", Attempt = attempt ?? w.Attempt }) : s.Open;
                var stepKey = WorkKeys.VisitKey(scope, step);
                var steps = s.Steps.TryGetValue(stepKey, out var st) ? s.Steps.SetItem(stepKey, st with { Status = "running" }) : s.Steps;
                return s with { Open = open, Steps = steps, Status = s.Status == JobStatus.Queued ? JobStatus.Running : s.Status };
            }

            case EventTypes.StepSucceeded:
            {
                var step = stepId!;
                var p = e.GetPayload<StepSucceededPayload>();
                var stepKey = WorkKeys.VisitKey(scope, step);
                var prev = s.Steps.GetValueOrDefault(stepKey);
                var st = new StepState
                {
                    Id = step,
                    Status = "succeeded",
                    Visit = visit ?? 1,
                    Attempts = attempt ?? 1,
                    TotalAttempts = (prev?.TotalAttempts ?? 0) + 1,
                    Output = p.Output,
                    DurationMs = (prev?.DurationMs ?? 0) + p.DurationMs,
                    Scope = scope,
                };
                var workKey = WorkKeys.For(scope, step, visit ?? 1);
                return s with
                {
                    Steps = s.Steps.SetItem(stepKey, st),
                    Open = s.Open.Remove(workKey),
                    StepsSucceeded = s.StepsSucceeded + 1,
                    Patterns = s.Patterns.TryGetValue(workKey, out var pattern) ? s.Patterns.SetItem(workKey, pattern with { Ended = true }) : s.Patterns,
                };
            }

            case EventTypes.StepFailed:
            {
                var step = stepId!;
                var p = e.GetPayload<StepFailedPayload>();
                var stepKey = WorkKeys.VisitKey(scope, step);
                var prev = s.Steps.GetValueOrDefault(stepKey);
                var st = new StepState
                {
                    Id = step,
                    Status = "failed",
                    Visit = visit ?? 1,
                    Attempts = attempt ?? 1,
                    TotalAttempts = (prev?.TotalAttempts ?? 0) + 1,
                    Output = prev?.Output,
                    Error = p.Message,
                    DurationMs = (prev?.DurationMs ?? 0) + p.DurationMs,
                    Scope = scope,
                };
                var workKey = WorkKeys.For(scope, step, visit ?? 1);
                return s with
                {
                    Steps = s.Steps.SetItem(stepKey, st),
                    Open = s.Open.Remove(workKey),
                    Patterns = !p.WillRetry && s.Patterns.TryGetValue(workKey, out var pattern) ? s.Patterns.SetItem(workKey, pattern with { Ended = true }) : s.Patterns,
                };
            }

            case EventTypes.StepBlocked:
            {
                if (stepId is null) return s;
                var stepKey = WorkKeys.VisitKey(scope, stepId);
                var steps = s.Steps.TryGetValue(stepKey, out var blocked) ? s.Steps.SetItem(stepKey, blocked with { Status = "blocked", Error = e.GetPayload<StepBlockedPayload>().Reason }) : s.Steps;
                return s with { Open = s.Open.Remove(WorkKeys.For(scope, stepId, visit ?? 1)), Steps = steps };
            }

            case EventTypes.ArtifactPut:
            {
                var p = e.GetPayload<ArtifactPutPayload>();
                var version = new ArtifactVersion { Version = p.Version, Status = "pending", Value = p.Value, Step = p.Provenance.Step, Agent = p.Provenance.Agent };
                var prev = s.Artifacts.GetValueOrDefault(p.Name);
                var a = prev is null ? new ArtifactState { Name = p.Name, Latest = version } : prev with { Latest = version };
                return s with { Artifacts = s.Artifacts.SetItem(p.Name, a) };
            }

            case EventTypes.ArtifactVerified:
            case EventTypes.ArtifactQuarantined:
            case EventTypes.ArtifactRejected:
            {
                var p = e.GetPayload<ArtifactVerdictPayload>();
                if (!s.Artifacts.TryGetValue(p.Name, out var a) || a.Latest.Version != p.Version)
                {
                    return s;
                }

                var latest = a.Latest with { Status = p.Status, Reason = p.Reason };
                a = type switch
                {
                    EventTypes.ArtifactVerified => a with { Latest = latest, Verified = latest, Quarantined = a.Quarantined?.Version == latest.Version ? null : a.Quarantined },
                    EventTypes.ArtifactQuarantined => a with { Latest = latest, Quarantined = latest },
                    _ => a with
                    {
                        Latest = latest,
                        Quarantined = a.Quarantined?.Version == latest.Version ? null : a.Quarantined,
                        Verified = a.Verified?.Version == latest.Version ? null : a.Verified,
                    },
                };
                return s with { Artifacts = s.Artifacts.SetItem(p.Name, a) };
            }

            case EventTypes.ToolCallRequested:
            {
                var tool = e.GetPayload<ToolCallRequestedPayload>().Tool;
                return s with
                {
                    Usage = s.Usage with { ToolCalls = s.Usage.ToolCalls + 1 },
                    ToolCallCounts = s.ToolCallCounts.SetItem(tool, s.ToolCallCounts.GetValueOrDefault(tool) + 1),
                };
            }

            case EventTypes.ToolCallSucceeded:
            {
                var p = e.GetPayload<ToolCallSucceededPayload>();
                if (p.DryRun || p.Result is not { } result) return s;
                var list = s.ToolResults.TryGetValue(p.Tool, out var known) ? known : [];
                return s with { ToolResults = s.ToolResults.SetItem(p.Tool, list.Add(new ToolResultRecord(p.CallId, result))) };
            }

            case EventTypes.ApprovalRequested:
            {
                var p = e.GetPayload<ApprovalRequestedPayload>();
                var approval = new ApprovalState
                {
                    Id = p.ApprovalId, Kind = p.Kind, Role = p.Role, Count = p.Count, ExpiresAt = p.ExpiresAt, OnExpire = p.OnExpire,
                    StepId = stepId, Visit = visit, Attempt = attempt, Scope = scope, Reason = p.Reason, Rule = p.Rule, Subject = p.Subject,
                    Show = p.Show, RequestedAt = ts, Holds = p.Holds == true,
                };
                return s with { Approvals = s.Approvals.SetItem(p.ApprovalId, approval) };
            }

            case EventTypes.ApprovalDecided:
            {
                var p = e.GetPayload<ApprovalDecidedPayload>();
                if (!s.Approvals.TryGetValue(p.ApprovalId, out var approval)) return s;
                approval = approval with { Status = p.Status, Decisions = approval.Decisions.Add(new ApprovalDecision(p.By, p.Decision, p.Reason, ts)) };
                var next = s with { Approvals = s.Approvals.SetItem(p.ApprovalId, approval) };
                if (approval.Kind == "budget" && p.Status == "approved" && approval.Subject is { } budget)
                {
                    next = next with { WaivedBudgets = next.WaivedBudgets.Add(budget) };
                }

                return next;
            }

            case EventTypes.ModelCallRequested:
            {
                var p = e.GetPayload<ModelCallRequestedPayload>();
                if (!p.Holds) return s;
                var reservation = new ModelReservation(WorkKeys.For(scope, stepId ?? "", visit ?? 1), p.ReservedTokens ?? 0, p.ReservedCost ?? 0, p.Exclusive == true);
                return s with { Reservations = s.Reservations.SetItem(p.CallId, reservation) };
            }

            case EventTypes.ModelCallSucceeded:
            {
                var p = e.GetPayload<ModelCallSucceededPayload>();
                return s with
                {
                    Usage = s.Usage with
                    {
                        Tokens = s.Usage.Tokens + p.InputTokens + p.OutputTokens,
                        Cost = s.Usage.Cost + p.Cost,
                        ModelCalls = s.Usage.ModelCalls + 1,
                    },
                    Reservations = s.Reservations.IsEmpty ? s.Reservations : s.Reservations.Remove(p.CallId),
                };
            }

            case EventTypes.ModelCallFailed:
                return s with
                {
                    Usage = s.Usage with { ModelCalls = s.Usage.ModelCalls + 1 },
                    Reservations = s.Reservations.IsEmpty ? s.Reservations : s.Reservations.Remove(e.GetPayload<ModelCallFailedPayload>().CallId),
                };

            case EventTypes.PatternStarted:
            {
                var p = e.GetPayload<PatternStartedPayload>();
                var workKey = WorkKeys.For(scope, stepId!, visit ?? 1);
                var stepKey = WorkKeys.VisitKey(scope, stepId!);
                var pattern = new PatternState
                {
                    Kind = p.Kind, StepId = stepId!, Visit = visit ?? 1, Attempt = attempt ?? 1, Scope = scope, Count = p.Count,
                    Labels = p.Labels is null ? [] : [.. p.Labels], Items = p.Items, Join = p.Join, Needed = p.Needed,
                    MaxConcurrency = p.MaxConcurrency ?? 0, Do = p.Do,
                };
                return s with
                {
                    Patterns = s.Patterns.SetItem(workKey, pattern),
                    Open = s.Open.TryGetValue(workKey, out var w) ? s.Open.SetItem(workKey, w with { Status = "waiting" }) : s.Open,
                    Steps = s.Steps.TryGetValue(stepKey, out var st) ? s.Steps.SetItem(stepKey, st with { Status = "waiting" }) : s.Steps,
                };
            }

            case EventTypes.BranchStarted:
            {
                var p = e.GetPayload<BranchStartedPayload>();
                return StartBranch(s, p.Scope, p.ChildJobId);
            }

            case EventTypes.BranchEnded:
            {
                var p = e.GetPayload<BranchEndedPayload>();
                var workKey = WorkKeys.For(scope, stepId!, visit ?? 1);
                if (!s.Patterns.TryGetValue(workKey, out var pattern) || !pattern.Branches.TryGetValue(p.Label, out var branch) || branch.Status != "running") return s;
                pattern = pattern with
                {
                    Branches = pattern.Branches.SetItem(p.Label, branch with { Status = p.Status, Output = p.Output, Reason = p.Reason }),
                    Running = pattern.Running - 1,
                    Succeeded = pattern.Succeeded + (p.Status == "succeeded" ? 1 : 0),
                    Failed = pattern.Failed + (p.Status == "failed" ? 1 : 0),
                };
                var next = s with { Patterns = s.Patterns.SetItem(workKey, pattern) };
                if (p.Status != "succeeded")
                {
                    // Work still open in a cancelled or failed branch is abandoned: a late result is discarded.
                    var prefix = branch.Scope + "/";
                    var abandoned = next.Open.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
                    if (abandoned.Count > 0) next = next with { Open = next.Open.RemoveRange(abandoned) };

                    // So are the patterns running inside it: they end, their running branches cancelled with it, so
                    // that a late end of one of their child jobs changes nothing.
                    var why = $"the enclosing branch {branch.Scope} was {p.Status}";
                    foreach (var (key, inner) in next.Patterns.Where(x => !x.Value.Ended && WorkKeys.IsWithin(x.Value.Scope, branch.Scope)).ToList())
                    {
                        var branches = inner.Branches;
                        foreach (var (label, b) in inner.Branches.Where(x => x.Value.Status == "running"))
                        {
                            branches = branches.SetItem(label, b with { Status = "cancelled", Reason = why });
                        }

                        next = next with { Patterns = next.Patterns.SetItem(key, inner with { Branches = branches, Running = 0, Ended = true }) };
                    }
                }

                if (pattern.Kind == "parallel")
                {
                    // The join sees each branch as steps.BRANCH: its status and the output of its last step.
                    var key = WorkKeys.VisitKey(scope, p.Label);
                    var prior = next.Steps.GetValueOrDefault(key);
                    next = next with
                    {
                        Steps = next.Steps.SetItem(key, new StepState
                        {
                            Id = p.Label, Status = p.Status, Visit = prior?.Visit ?? 1, Attempts = prior?.Attempts ?? 1, TotalAttempts = prior?.TotalAttempts ?? 1,
                            Output = p.Output, Error = p.Reason, DurationMs = prior?.DurationMs ?? 0, Scope = scope,
                        }),
                    };
                }

                return next;
            }

            case EventTypes.PatternProgressed:
            {
                var p = e.GetPayload<PatternProgressedPayload>();
                var workKey = WorkKeys.For(scope, stepId!, visit ?? 1);
                var pattern = s.Patterns.TryGetValue(workKey, out var known)
                    ? known
                    : new PatternState { Kind = p.Kind, StepId = stepId!, Visit = visit ?? 1, Attempt = attempt ?? 1, Scope = scope };
                return s with { Patterns = s.Patterns.SetItem(workKey, pattern with { Progress = pattern.Progress.Add(new ProgressUnit(p.Phase, p.Data)) }) };
            }

            case EventTypes.JobCompleted:
                return Ended(s) with { Status = JobStatus.Completed };

            case EventTypes.JobFailed:
                return Ended(s) with { Status = JobStatus.Failed, Reason = e.GetPayload<JobFailedPayload>().Reason };

            case EventTypes.JobCancelled:
                return Ended(s) with { Status = JobStatus.Cancelled, Reason = e.GetPayload<JobCancelledPayload>().Reason };

            default:
                // Events that do not change derived state (tool results, policy decisions, …) are kept in the log only.
                _ = agent;
                _ = ts;
                return s;
        }
    }
}

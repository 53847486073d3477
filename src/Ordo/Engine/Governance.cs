using System.Globalization;
using System.Text.Json;
using Ordo.Budgets;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.KillSwitches;
using Ordo.Policies;
using Ordo.State;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Engine;

/// <summary>
/// The checks made before a step runs and before each tool call: kill switches, budgets and policies. Each check
/// records its decision as an event; a check that says no stops the step with a <see cref="StepInterrupt"/>
/// (pause for an approval, or end the job) or refuses the tool call.
/// </summary>
internal sealed class Governance(PolicyEngine policies, KillSwitchCache switches, TimeProvider time) : IToolCallGuard
{
    public PolicyEngine Policies => policies;

    /// <summary>Before a step: kill switches (workflow, step kind, agent), budgets, then <c>on: step</c> policies.</summary>
    public async ValueTask<StepOutcome?> BeforeStepAsync(StepExecution exec, CancellationToken cancellationToken)
    {
        var step = exec.Definition;
        var agentName = (step as AgentStep)?.Agent;
        foreach (var (kind, name) in new[] { ("workflow", exec.Workflow.Name), ("step", step.Kind), ("agent", agentName) })
        {
            if (name is null) continue;
            if (await switches.FindAsync(kind, name, exec.State.Tenant, cancellationToken).ConfigureAwait(false) is { } killed)
            {
                return Stopped(exec, Kill(exec, killed, $"{kind}:{name}"));
            }
        }

        if (Budget(exec, exec.State.Usage, nextToolCall: false, $"step '{step.Id}'") is { } budget)
        {
            return Stopped(exec, budget);
        }

        var sets = exec.Project.Policies;
        if (!policies.HasRules(sets, PolicyPoint.Step)) return null;
        var scope = exec.Scope.With("step", Json.Of(new { id = step.Id, kind = step.Kind, visit = exec.Step.Visit, attempt = exec.Step.Attempt }));
        if (agentName is not null && exec.Workflow.Agents.TryGetValue(agentName, out var agent)) scope = scope.With("agent", AgentJson(agent));
        var outcome = await policies.EvaluateAsync(sets, new PolicyContext(PolicyPoint.Step, scope, step.Id), cancellationToken).ConfigureAwait(false);
        Record(exec, PolicyPoint.Step, step.Id, outcome);
        switch (outcome.Effect)
        {
            case PolicyEffect.Deny:
            {
                var d = outcome.Deciding!;
                return Stopped(exec, new StepInterrupt("policy", $"step '{step.Id}' denied by policy {d.Policy} rule '{d.Rule}': {d.Reason}", d.Rule, JobStatus.Failed, null));
            }

            case PolicyEffect.RequireApproval:
            {
                var d = outcome.Deciding!;
                var id = $"{exec.Step.WorkKey}.step";
                if (exec.State.Approvals.TryGetValue(id, out var existing) && existing.Status == "approved") return null;
                var req = d.Approval ?? new ApprovalRequirement("approver");
                return Stopped(exec, new StepInterrupt("approval", $"step '{step.Id}' needs approval: {d.Reason} (policy {d.Policy} rule '{d.Rule}')", d.Rule, null,
                    new ApprovalRequest(id, "step", req.Role, req.Count, Expiry(req), "fail", d.Reason, d.Rule, d.Policy, step.Id, null)));
            }

            default:
                return null;
        }
    }

    /// <summary>After a step: a budget its model calls pushed over the limit stops it now, not at the next step.</summary>
    public StepOutcome? AfterStep(StepExecution exec, StepOutcome outcome)
    {
        if (outcome.Interrupt is not null) return null;
        var preview = JobStateReducer.Preview(exec.State, exec.Events);
        if (preview.Usage.Tokens == exec.UsageAtStart.Tokens && preview.Usage.Cost == exec.UsageAtStart.Cost) return null;
        var violation = BudgetCheck.Exceeded(exec.State, exec.Workflow.Constraints, time.GetUtcNow(), preview.Usage);
        if (violation is null || violation.Budget is "deadline" or "tool_calls") return null;
        return Stopped(exec, Budget(exec, violation, $"step '{exec.Definition.Id}' (after its model calls)"));
    }

    /// <inheritdoc />
    public async ValueTask CheckAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, JsonElement args, string callId, int callIndex, CancellationToken cancellationToken)
    {
        if (await switches.FindAsync("tool", tool.Name, scope.State.Tenant, cancellationToken).ConfigureAwait(false) is { } killed)
        {
            var interrupt = Kill(scope, killed, $"tool:{tool.Name}");
            scope.Interrupt(interrupt);
            throw Refused(scope, callId, tool, "killed", interrupt.Reason, agent);
        }

        var usage = JobStateReducer.Preview(scope.State, scope.Events).Usage;
        var violation = BudgetCheck.Exceeded(scope.State, scope.Workflow.Constraints, time.GetUtcNow(), usage, nextToolCall: true);
        if (violation is not null)
        {
            var interrupt = Budget(scope, violation, $"tool call '{tool.Name}'");
            scope.Interrupt(interrupt);
            throw Refused(scope, callId, tool, "budget_exceeded", violation.Describe(), agent);
        }

        if (tool.RateLimit?.PerJob is { } perJob)
        {
            var made = scope.State.ToolCallCounts.GetValueOrDefault(tool.Name)
                + scope.Events.Count(e => e.Type == EventTypes.ToolCallRequested && e.TypedPayload is ToolCallRequestedPayload p && p.Tool == tool.Name);
            if (made >= perJob)
            {
                throw Refused(scope, callId, tool, "rate_limited", $"tool '{tool.Name}' may be called {perJob} times per job (rate_limit.per_job) and was called {made} times", agent);
            }
        }

        var sets = scope.Project.Policies;
        if (!policies.HasRules(sets, PolicyPoint.ToolCall)) return;
        var ctx = new ExpressionScope { State = scope.State, Constraints = scope.Workflow.ConstraintsJson, Attempt = scope.Step.Attempt, StepScope = scope.Step.Scope }
            .With("tool", PolicyEngine.ToolJson(tool)).With("args", args);
        if (agent is not null) ctx = ctx.With("agent", AgentJson(agent));
        var outcome = await policies.EvaluateAsync(sets, new PolicyContext(PolicyPoint.ToolCall, ctx, tool.Name), cancellationToken).ConfigureAwait(false);
        Record(scope, PolicyPoint.ToolCall, tool.Name, outcome);
        if (outcome.Effect == PolicyEffect.Deny)
        {
            var d = outcome.Deciding!;
            throw Refused(scope, callId, tool, "policy_denied", $"denied by policy {d.Policy} rule '{d.Rule}': {d.Reason}", agent);
        }

        if (outcome.Effect == PolicyEffect.RequireApproval)
        {
            var d = outcome.Deciding!;
            var id = $"{scope.Step.WorkKey}.t{callIndex}";
            if (scope.State.Approvals.TryGetValue(id, out var existing))
            {
                if (existing.Status == "approved") return;
                if (existing.Status is "denied" or "expired") throw Refused(scope, callId, tool, "approval_denied", $"approval {id} was {existing.Status}", agent);
            }

            var req = d.Approval ?? new ApprovalRequirement("approver");
            var count = tool.Effect == ToolEffect.Irreversible ? Math.Max(2, req.Count) : req.Count;
            var reason = $"tool call '{tool.Name}' needs approval: {d.Reason} (policy {d.Policy} rule '{d.Rule}')";
            scope.Interrupt(new StepInterrupt("approval", reason, d.Rule, null,
                new ApprovalRequest(id, "tool_call", req.Role, count, Expiry(req), "fail", d.Reason, d.Rule, d.Policy, tool.Name, Json.Of(new { tool = tool.Name, effect = tool.EffectName, args }))));
            throw new ToolCallException(callId, tool.Name, "approval_required", reason, retryable: false);
        }
    }

    /// <inheritdoc />
    public async ValueTask RecordIntentAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, NewEvent requested, string callId, CancellationToken cancellationToken)
    {
        var constraints = scope.Workflow.Constraints;
        var counted = (constraints.MaxToolCalls is not null && !scope.State.WaivedBudgets.Contains("tool_calls")) || tool.RateLimit?.PerJob is not null;
        if (!counted)
        {
            // Nothing to count against: a read is recorded with the step; a side effect's intent is durable before the effect.
            if (tool.Effect == ToolEffect.Read) scope.Record(requested);
            else await scope.AppendNowAsync(requested, cancellationToken).ConfigureAwait(false);
            return;
        }

        // The call takes its place in the job's count in the same write that records it: steps running at once
        // (branches, foreach items, other processes) cannot all be admitted on the same remaining budget.
        var refused = await scope.AppendNowUnlessAsync(requested, job =>
        {
            if (BudgetCheck.Exceeded(job, constraints, time.GetUtcNow(), job.Usage, nextToolCall: true) is { } violation) return new Refusal(violation, null);
            if (tool.RateLimit?.PerJob is { } perJob && job.ToolCallCounts.GetValueOrDefault(tool.Name) is var made && made >= perJob)
            {
                return new Refusal(null, $"tool '{tool.Name}' may be called {perJob} times per job (rate_limit.per_job) and was called {made} times");
            }

            return null;
        }, cancellationToken).ConfigureAwait(false);
        switch (refused)
        {
            case { Budget: { } violation }:
                scope.Interrupt(Budget(scope, violation, $"tool call '{tool.Name}'"));
                throw Refused(scope, callId, tool, "budget_exceeded", violation.Describe(), agent);
            case { Message: { } message }:
                throw Refused(scope, callId, tool, "rate_limited", message, agent);
        }
    }

    private sealed record Refusal(BudgetViolation? Budget, string? Message);

    /// <summary>
    /// Before a model call: records its <c>ModelCallRequested</c>. Under a token or cost budget the event is written
    /// before the call, in one write with the check that the call fits: a call with an output bound holds the most it
    /// can use, and starts when that fits in what is left, counting the calls in flight at what they hold; a call
    /// without one runs alone, and starts when the budget is not spent and no other call is in flight. A call that
    /// cannot start yet waits for the calls in flight to end; one that cannot start at all is refused, and the step
    /// stopped (or escalated) as for any exceeded budget.
    /// </summary>
    /// <returns>Null when the call may go ahead; otherwise the interrupt that stops the step.</returns>
    public async ValueTask<StepInterrupt?> BeforeModelCallAsync(StepExecution exec, ModelCallRequestedPayload request, string? agent, string? promptHash, CancellationToken cancellationToken)
    {
        var requested = EventFactory.Step(EventTypes.ModelCallRequested, exec.Step, request, time.GetUtcNow(), agent: agent, promptHash: promptHash, model: request.Model);
        if (!request.Holds)
        {
            // Written before the call reaches the provider, with what the step recorded before it (the outcomes of its
            // earlier tool calls): a process that dies during the call leaves both in the log.
            await exec.RecordNowAsync(requested, cancellationToken).ConfigureAwait(false);
            return null;
        }

        var constraints = exec.Workflow.Constraints;
        for (var wait = 0; ; wait++)
        {
            var admission = await exec.AppendNowUnlessAsync(requested, job => Admit(job, constraints, request), cancellationToken).ConfigureAwait(false);
            if (admission is null) return null;
            if (admission.Violation is { } violation)
            {
                var interrupt = Budget(exec, violation, $"model call {request.CallId} ({request.Tier})");
                exec.Interrupt(interrupt);
                return interrupt;
            }

            // Calls in flight hold what this one needs: their outcomes are written as soon as they end.
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100, 2 << Math.Min(wait, 6))), time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Records a model call's outcome: written at once when the call held a reservation (releasing it), else with the step.</summary>
    public static async ValueTask AfterModelCallAsync(StepExecution exec, ModelCallRequestedPayload request, NewEvent outcome, CancellationToken cancellationToken)
    {
        if (request.Holds) await exec.RecordNowAsync(outcome, cancellationToken).ConfigureAwait(false);
        else exec.Record(outcome);
    }

    /// <summary>Whether a model call may start now: null if so; else the budget it does not fit in, or "wait" while other calls hold what it needs.</summary>
    private Admission? Admit(JobState job, JobConstraints constraints, ModelCallRequestedPayload request)
    {
        if (BudgetCheck.Exceeded(job, constraints, time.GetUtcNow(), job.Usage) is { } exceeded) return new Admission(exceeded);
        var inFlight = job.Reservations.Values;
        var tokens = constraints.MaxTokens is { } maxTokens && !job.WaivedBudgets.Contains("tokens") ? maxTokens : (long?)null;
        var cost = constraints.MaxCost is { } maxCost && !job.WaivedBudgets.Contains("cost") ? maxCost : (decimal?)null;
        var heldTokens = inFlight.Sum(r => r.Tokens);
        var heldCost = inFlight.Sum(r => r.Cost);
        BudgetViolation? over = null;
        if (request.Exclusive == true)
        {
            // Unbounded: it may use anything that is left, so it needs something left, and runs alone.
            if (tokens is { } t && job.Usage.Tokens >= t) over = new BudgetViolation("tokens", Text(t), $"{Text(job.Usage.Tokens)}; the next model call has no output bound (set max_output_tokens on tier '{request.Tier}')");
            else if (cost is { } c && job.Usage.Cost >= c) over = new BudgetViolation("cost", Money(c), $"{Money(job.Usage.Cost)}; the next model call has no output bound (set max_output_tokens on tier '{request.Tier}')");
            if (over is not null) return new Admission(over);
            return job.Reservations.IsEmpty ? null : Admission.Wait;
        }

        if (tokens is { } maxT && request.ReservedTokens is { } mine && job.Usage.Tokens + heldTokens + mine > maxT)
        {
            over = new BudgetViolation("tokens", Text(maxT), $"{Text(job.Usage.Tokens)}{Held(heldTokens, Text(heldTokens))}; the next model call may use up to {Text(mine)}");
        }
        else if (cost is { } maxC && request.ReservedCost is { } mineCost && job.Usage.Cost + heldCost + mineCost > maxC)
        {
            over = new BudgetViolation("cost", Money(maxC), $"{Money(job.Usage.Cost)}{Held(heldCost, "$" + Money(heldCost))}; the next model call may cost up to ${Money(mineCost)}");
        }

        // A call that does not fit while others are in flight waits for them (they may use less than they hold); one
        // that does not fit on what is spent already is refused. An unbounded call in flight holds everything.
        if (over is not null) return job.Reservations.IsEmpty ? new Admission(over) : Admission.Wait;
        return inFlight.Any(r => r.Exclusive) ? Admission.Wait : null;

        static string Held(decimal held, string text) => held == 0 ? "" : $" (and {text} held by model calls in flight)";
        static string Text(long n) => n.ToString(CultureInfo.InvariantCulture);
        static string Money(decimal d) => d.ToString("0.######", CultureInfo.InvariantCulture);
    }

    /// <summary>Whether a model call may start: the budget it does not fit in, or <see cref="Wait"/>.</summary>
    private sealed record Admission(BudgetViolation? Violation)
    {
        public static Admission Wait { get; } = new((BudgetViolation?)null);
    }

    /// <summary>The JSON a policy sees as <c>agent</c>.</summary>
    public static JsonElement AgentJson(AgentDefinition agent)
        => Json.Of(new { name = agent.Name, version = agent.Version, kind = agent.Kind.ToString().ToLowerInvariant(), tier = agent.Tier, critical = agent.Critical, tools = agent.Tools });

    private DateTimeOffset? Expiry(ApprovalRequirement req) => req.Expires is { } e ? time.GetUtcNow() + e : null;

    private ToolCallException Refused(IToolCallScope scope, string callId, ToolDefinition tool, string error, string message, AgentDefinition? agent)
    {
        scope.Record(EventFactory.Step(EventTypes.ToolCallFailed, scope.Step, new ToolCallFailedPayload(callId, tool.Name, error, message, 0, false), time.GetUtcNow(), agent: agent?.Ref));
        return new ToolCallException(callId, tool.Name, error, message, retryable: false);
    }

    private StepInterrupt Kill(IToolCallScope scope, KillSwitch killed, string subject)
    {
        scope.Record(EventFactory.Step(EventTypes.KillSwitchTriggered, scope.Step, new KillSwitchTriggeredPayload(killed.Target, subject, killed.Reason, killed.SetBy), time.GetUtcNow()));
        return new StepInterrupt("kill_switch", $"stopped by kill switch {killed.Target}{(killed.Reason is null ? "" : $" ({killed.Reason})")} at {subject}", killed.Target, JobStatus.Cancelled, null);
    }

    private StepInterrupt? Budget(IToolCallScope scope, JobUsage usage, bool nextToolCall, string before)
    {
        var violation = BudgetCheck.Exceeded(scope.State, scope.Workflow.Constraints, time.GetUtcNow(), usage, nextToolCall);
        return violation is null ? null : Budget(scope, violation, before);
    }

    private StepInterrupt Budget(IToolCallScope scope, BudgetViolation violation, string before)
    {
        var escalate = scope.Workflow.Constraints.OnExceeded == "escalate";
        var now = time.GetUtcNow();
        scope.Record(EventFactory.Step(EventTypes.BudgetExceeded, scope.Step, new BudgetExceededPayload(violation.Budget, violation.Limit, violation.Used, escalate ? "escalate" : "fail", before), now));
        var reason = $"budget exceeded before {before}: {violation.Describe()}";
        if (!escalate)
        {
            return new StepInterrupt("budget", reason, violation.Budget, JobStatus.Failed, null);
        }

        var id = $"budget.{violation.Budget}";
        scope.Record(EventFactory.Step(EventTypes.Escalated, scope.Step, new EscalatedPayload(reason, id, "budget"), now));
        return new StepInterrupt("budget", reason, violation.Budget, null,
            new ApprovalRequest(id, "budget", "operator", 1, null, "fail", reason, null, null, violation.Budget, Json.Of(new { budget = violation.Budget, limit = violation.Limit, used = violation.Used })));
    }

    private void Record(IToolCallScope scope, PolicyPoint point, string subject, PolicyOutcome outcome)
    {
        if (outcome.Deciding is not { } d) return;
        scope.Record(PolicyEvent(scope.Step, point, subject, outcome, time.GetUtcNow()));
        _ = d;
    }

    /// <summary>The PolicyDecision event of an outcome.</summary>
    public static NewEvent PolicyEvent(StepRef? step, PolicyPoint point, string subject, PolicyOutcome outcome, DateTimeOffset now)
    {
        var d = outcome.Deciding!;
        var payload = new PolicyDecisionPayload(PointName(point), subject, EffectName(outcome.Effect), d.Rule, d.Reason, d.Policy,
            outcome.Matched.Count > 1 ? outcome.Matched.Select(m => $"{m.Policy}/{m.Rule}={EffectName(m.Effect)}").ToList() : null);
        return step is { } s ? EventFactory.Step(EventTypes.PolicyDecision, s, payload, now, policy: d.Policy) : EventFactory.Job(EventTypes.PolicyDecision, payload, now, d.Policy);
    }

    private static StepOutcome Stopped(StepExecution exec, StepInterrupt interrupt)
        => StepOutcome.Failure(interrupt.By, interrupt.Reason, retryable: false) with { Interrupt = interrupt };

    public static string PointName(PolicyPoint p) => p switch
    {
        PolicyPoint.Step => "step",
        PolicyPoint.ToolCall => "tool_call",
        PolicyPoint.Artifact => "artifact",
        _ => "job_complete",
    };

    public static string EffectName(PolicyEffect e) => e switch
    {
        PolicyEffect.Allow => "allow",
        PolicyEffect.Deny => "deny",
        _ => "require_approval",
    };
}

/// <summary>Checks made by the gateway before a tool call runs (kill switches, budgets, rate caps, policies).</summary>
public interface IToolCallGuard
{
    /// <summary>Throws <see cref="ToolCallException"/> when the call may not run; may interrupt the step.</summary>
    ValueTask CheckAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, JsonElement args, string callId, int callIndex, CancellationToken cancellationToken);

    /// <summary>
    /// Records the call's <c>ToolCallRequested</c> event: with the step (a read), or written before the call runs (a
    /// side effect, or any call counted against a job's budget or per-job limit, checked again in the same write).
    /// Throws <see cref="ToolCallException"/> when the count is already spent.
    /// </summary>
    ValueTask RecordIntentAsync(IToolCallScope scope, AgentDefinition? agent, ToolDefinition tool, NewEvent requested, string callId, CancellationToken cancellationToken);
}

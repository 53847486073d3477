using System.Text.Json;

namespace Ordo.Events;

/// <summary>Payload of <see cref="EventTypes.JobSubmitted"/>.</summary>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Version">The workflow version.</param>
/// <param name="DefinitionHash">The pinned definition.</param>
/// <param name="Tenant">The tenant.</param>
/// <param name="Submitter">Who submitted it.</param>
/// <param name="Input">The job input.</param>
/// <param name="Constraints">The job's constraints (budgets, flags).</param>
/// <param name="ParentJobId">The parent job, for a sub-workflow's child job.</param>
/// <param name="ParentStepId">The branch of the parent that runs this child (<c>OWNER#VISIT/LABEL</c>).</param>
/// <param name="TraceId">The trace shared by the job's spans (a child shares its parent's).</param>
/// <param name="Priority">Higher runs first.</param>
public sealed record JobSubmittedPayload(
    string Workflow, int Version, string DefinitionHash, string Tenant, string Submitter,
    JsonElement? Input, JsonElement? Constraints, string? ParentJobId, string? ParentStepId, string TraceId, int Priority)
{
    /// <summary>The top of the job tree, for a child job (the job itself otherwise).</summary>
    public string? RootJobId { get; init; }

    /// <summary>The span recorded for the job's submission, which its steps' spans descend from; absent when none was recorded.</summary>
    public string? SpanId { get; init; }

    /// <summary>
    /// True for a job submitted in dry run: its <c>write</c> and <c>irreversible</c> tool calls are recorded, never
    /// executed, in every process that runs it (its child jobs too). Absent otherwise.
    /// </summary>
    public bool? DryRun { get; init; }

    /// <summary>For a shadow job: the production job it shadows. Absent otherwise.</summary>
    public string? ShadowOf { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.StepScheduled"/>.</summary>
/// <param name="Kind">The step kind (agent, tool, transform, …).</param>
/// <param name="Reason">Why it was scheduled: <c>entry</c>, <c>route</c>, <c>retry</c>, <c>branch</c>, <c>item</c>, <c>join</c>.</param>
/// <param name="From">The step whose route led here, if any.</param>
/// <param name="AvailableAt">When the work becomes available, if later than now (retry backoff).</param>
public sealed record StepScheduledPayload(string Kind, string Reason, string? From, DateTimeOffset? AvailableAt)
{
    /// <summary>What the attempt changes (<c>retry.vary</c>): <c>escalate_tier</c>, <c>require_citations</c>, <c>switch_tool</c>.</summary>
    public IReadOnlyList<string>? Variations { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.StepStarted"/>.</summary>
/// <param name="Worker">The worker that holds the lease.</param>
/// <param name="Delivery">How many times this work item has been handed to a worker (above 1 after a crash).</param>
public sealed record StepStartedPayload(string Worker, int Delivery)
{
    /// <summary>The worker that held the item before and lost its lease (it died, or stopped renewing it); absent for a first delivery or one after a release.</summary>
    public string? TakenOverFrom { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.StepSucceeded"/>.</summary>
public sealed record StepSucceededPayload(JsonElement? Output, double DurationMs, IReadOnlyList<string>? Next, JsonElement? Input)
{
    /// <summary>The approvals that hold the step's route (an artifact a policy holds for approval); its route is taken once they are approved.</summary>
    public IReadOnlyList<string>? HeldBy { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.StepFailed"/>.</summary>
/// <param name="Error">A short machine-readable kind (<c>timeout</c>, <c>contract_violation</c>, <c>tool_error</c>, …).</param>
/// <param name="Message">What went wrong, for people.</param>
/// <param name="Retryable">Whether another attempt could succeed.</param>
/// <param name="WillRetry">Whether another attempt is scheduled.</param>
/// <param name="RetryDelayMs">The backoff before the next attempt.</param>
/// <param name="DurationMs">How long the attempt ran.</param>
/// <param name="Details">Structured details (schema errors, …).</param>
public sealed record StepFailedPayload(string Error, string Message, bool Retryable, bool WillRetry, double? RetryDelayMs, double DurationMs, JsonElement? Details);

/// <summary>Where an artifact came from.</summary>
public sealed record ArtifactProvenance(string Step, int Visit, int Attempt, string? Agent, string? PromptHash, string? Model, IReadOnlyList<string>? ToolCalls);

/// <summary>Payload of <see cref="EventTypes.ArtifactPut"/>: the value, before verification.</summary>
public sealed record ArtifactPutPayload(string Name, int Version, JsonElement Value, ArtifactProvenance Provenance);

/// <summary>Payload of the artifact verdict events (verified, quarantined, rejected).</summary>
public sealed record ArtifactVerdictPayload(string Name, int Version, string Status, string? Reason, IReadOnlyList<string>? Errors);

/// <summary>Payload of <see cref="EventTypes.ToolCallRequested"/>.</summary>
public sealed record ToolCallRequestedPayload(string CallId, string Tool, string Kind, string Effect, string IdempotencyKey, JsonElement? Args, bool DryRun);

/// <summary>Payload of <see cref="EventTypes.ToolCallSucceeded"/>.</summary>
public sealed record ToolCallSucceededPayload(string CallId, string Tool, JsonElement? Result, double DurationMs, bool Cached, bool DryRun)
{
    /// <summary>How many times the gateway tried the call (retries included).</summary>
    public int? Attempts { get; init; }

    /// <summary>
    /// True when the call was recorded but not executed (a <c>write</c> or <c>irreversible</c> tool in dry run): the
    /// result is <c>{ "dry_run": true }</c>, and the tool's result schema, which describes real results, was not
    /// checked (<see cref="ResultSchema"/>). Absent for calls that ran.
    /// </summary>
    public bool? Skipped { get; init; }

    /// <summary><c>not_checked</c> when the tool declares a result schema and the call was skipped; absent otherwise.</summary>
    public string? ResultSchema { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.ToolCallFailed"/>.</summary>
public sealed record ToolCallFailedPayload(string CallId, string Tool, string Error, string Message, double DurationMs, bool Retryable)
{
    /// <summary>How many times the gateway tried the call (retries included).</summary>
    public int? Attempts { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.ModelCallRequested"/>.</summary>
/// <param name="CallId">The call, as its outcome event names it.</param>
/// <param name="Tier">The model tier.</param>
/// <param name="Provider">The provider.</param>
/// <param name="Model">The model asked for.</param>
/// <param name="MaxOutputTokens">The most output tokens the provider was asked for, if bounded.</param>
/// <param name="ReservedTokens">Under a token budget, a bounded call: the most tokens it can use (input bound plus <paramref name="MaxOutputTokens"/>), held until it ends.</param>
/// <param name="ReservedCost">Under a cost budget, a bounded call: the most it can cost, held until it ends.</param>
public sealed record ModelCallRequestedPayload(string CallId, string Tier, string Provider, string Model, long? MaxOutputTokens, long? ReservedTokens, decimal? ReservedCost)
{
    /// <summary>Under a token or cost budget, a call without an output bound: it runs alone (no other call of the job is in flight meanwhile).</summary>
    public bool? Exclusive { get; init; }

    /// <summary>
    /// The SHA-256 of the request as sent to the provider's client (model, messages, offered tools, response format):
    /// with the recorded answer, what a replay matches a call by.
    /// </summary>
    public string? RequestHash { get; init; }

    /// <summary>For an agent with tools: the round of its step (1 for the first call; each answer asking for tools starts the next).</summary>
    public int? Round { get; init; }

    /// <summary>Whether the call is counted against a budget while in flight.</summary>
    public bool Holds => ReservedTokens is not null || ReservedCost is not null || Exclusive == true;

    /// <summary>The tier the agent asked for, when its circuit was open and the call went to <see cref="Tier"/>, its fallback.</summary>
    public string? FallbackFrom { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.ModelCallSucceeded"/>: the response is kept so the job can be replayed.</summary>
public sealed record ModelCallSucceededPayload(
    string CallId, string Tier, string Provider, string Model, string? Content, long InputTokens, long OutputTokens, decimal Cost, double DurationMs)
{
    /// <summary>The tool calls the answer asks for (an agent with tools), in order; each runs through the gateway as its own event.</summary>
    public IReadOnlyList<ModelToolCall>? ToolCalls { get; init; }

    /// <summary>The tier the agent asked for, when its circuit was open and the call went to <see cref="Tier"/>, its fallback.</summary>
    public string? FallbackFrom { get; init; }
}

/// <summary>A tool call a model asked for.</summary>
/// <param name="Id">The provider's id of the call.</param>
/// <param name="Function">The function name the model used.</param>
/// <param name="Tool">The tool it names (tools.yaml), if any.</param>
/// <param name="Args">The arguments as the model wrote them (secrets redacted).</param>
public sealed record ModelToolCall(string Id, string Function, string? Tool, System.Text.Json.JsonElement Args)
{
    /// <summary>When the model's arguments were not a JSON object: why (<see cref="Args"/> is then empty).</summary>
    public string? ArgsError { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.ModelCallFailed"/>.</summary>
/// <param name="CallId">The call.</param>
/// <param name="Tier">The tier called.</param>
/// <param name="Provider">Its provider.</param>
/// <param name="Model">The model asked for.</param>
/// <param name="Error">The kind: <c>timeout</c>, <c>rate_limited</c>, <c>server_error</c>, <c>connection_error</c>, <c>malformed_response</c>, <c>provider_refused</c>, <c>circuit_open</c>, <c>config_error</c>, <c>no_fixture</c>.</param>
/// <param name="Message">What the provider answered, in one line, secrets redacted.</param>
/// <param name="DurationMs">How long the call ran.</param>
public sealed record ModelCallFailedPayload(string CallId, string Tier, string Provider, string Model, string Error, string Message, double DurationMs)
{
    /// <summary>The tier the agent asked for, when its circuit was open and the call went to <see cref="Tier"/>, its fallback.</summary>
    public string? FallbackFrom { get; init; }

    /// <summary>The delay the provider asked for before the next call (its <c>Retry-After</c>), if it gave one.</summary>
    public double? RetryAfterMs { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.JobCompleted"/>.</summary>
public sealed record JobCompletedPayload(double DurationMs);

/// <summary>Payload of <see cref="EventTypes.JobFailed"/>.</summary>
public sealed record JobFailedPayload(string Reason, string? Step, string? Error);

/// <summary>Payload of <see cref="EventTypes.JobCancelled"/>.</summary>
public sealed record JobCancelledPayload(string Reason, string By);

/// <summary>Payload of <see cref="EventTypes.StepBlocked"/>: the step did not run (or paused) because of a policy, a kill switch, a budget or a pending approval.</summary>
/// <param name="By"><c>policy</c>, <c>kill_switch</c>, <c>budget</c> or <c>approval</c>.</param>
/// <param name="Reason">Why.</param>
/// <param name="Rule">The rule or switch that blocked it.</param>
/// <param name="ApprovalId">The approval the step waits for, if any.</param>
public sealed record StepBlockedPayload(string By, string Reason, string? Rule, string? ApprovalId);

/// <summary>Payload of <see cref="EventTypes.PolicyDecision"/>.</summary>
/// <param name="Point"><c>step</c>, <c>tool_call</c>, <c>artifact</c> or <c>job_complete</c>.</param>
/// <param name="Subject">What was decided on (step id, tool name, artifact name, the job).</param>
/// <param name="Effect"><c>allow</c>, <c>deny</c> or <c>require_approval</c>.</param>
/// <param name="Rule">The deciding rule.</param>
/// <param name="Reason">The rule's reason.</param>
/// <param name="Policy">The policy as <c>name@version</c>.</param>
/// <param name="Matched">Every rule that matched, as <c>policy/rule=effect</c>.</param>
public sealed record PolicyDecisionPayload(string Point, string Subject, string Effect, string Rule, string Reason, string Policy, IReadOnlyList<string>? Matched);

/// <summary>Payload of <see cref="EventTypes.ApprovalRequested"/>.</summary>
/// <param name="ApprovalId">The id to approve with (<c>ordo approve JOB --approval ID</c>).</param>
/// <param name="Kind"><c>tool_call</c>, <c>step</c>, <c>artifact</c>, <c>job_complete</c>, <c>escalation</c>, <c>budget</c> or <c>approval_step</c>.</param>
/// <param name="Role">The role approvers must hold.</param>
/// <param name="Count">Distinct approvers needed.</param>
/// <param name="ExpiresAt">When the request expires, if it does.</param>
/// <param name="OnExpire">What happens then: <c>fail</c>, <c>approve</c>, <c>deny</c> or a step id.</param>
/// <param name="Reason">Why approval is needed.</param>
/// <param name="Rule">The policy rule that asked for it.</param>
/// <param name="Policy">The policy as <c>name@version</c>.</param>
/// <param name="Subject">What is to be approved (tool, step, artifact, budget).</param>
/// <param name="Show">What approvers are shown.</param>
public sealed record ApprovalRequestedPayload(string ApprovalId, string Kind, string Role, int Count, DateTimeOffset? ExpiresAt, string OnExpire, string? Reason, string? Rule, string? Policy, string? Subject, JsonElement? Show)
{
    /// <summary>
    /// True when the approval holds back what follows its step: the step's route (an artifact a policy holds), or the
    /// next unit of a multi-phase step. Approving it lets the step go on; absent for approvals that pause a step before it runs.
    /// </summary>
    public bool? Holds { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.ApprovalDecided"/>.</summary>
/// <param name="ApprovalId">The approval.</param>
/// <param name="Decision"><c>approve</c>, <c>deny</c> or <c>expire</c>.</param>
/// <param name="By">The identity that decided (<c>system</c> for an expiry).</param>
/// <param name="Reason">Why.</param>
/// <param name="Status">The approval's status after this decision: <c>pending</c>, <c>approved</c>, <c>denied</c> or <c>expired</c>.</param>
/// <param name="Roles">The roles the approver holds.</param>
public sealed record ApprovalDecidedPayload(string ApprovalId, string Decision, string By, string? Reason, string Status, IReadOnlyList<string>? Roles);

/// <summary>Payload of <see cref="EventTypes.BudgetExceeded"/>.</summary>
/// <param name="Budget"><c>tokens</c>, <c>cost</c>, <c>tool_calls</c> or <c>deadline</c>.</param>
/// <param name="Limit">The limit.</param>
/// <param name="Used">What was used (or the time reached, for the deadline).</param>
/// <param name="Action"><c>fail</c> or <c>escalate</c>.</param>
/// <param name="Before">What was about to happen (a step, a tool call).</param>
public sealed record BudgetExceededPayload(string Budget, string Limit, string Used, string Action, string Before);

/// <summary>Payload of <see cref="EventTypes.Escalated"/>.</summary>
/// <param name="Reason">What went wrong.</param>
/// <param name="ApprovalId">The approval a human decides with.</param>
/// <param name="Kind"><c>step_failure</c> or <c>budget</c>.</param>
public sealed record EscalatedPayload(string Reason, string ApprovalId, string Kind);

/// <summary>Payload of <see cref="EventTypes.KillSwitchTriggered"/>.</summary>
/// <param name="Target">The switch (<c>tool:web.*</c>).</param>
/// <param name="Subject">What it stopped (the tool, agent, step kind or workflow).</param>
/// <param name="Reason">Why the switch was set.</param>
/// <param name="SetBy">Who set it.</param>
public sealed record KillSwitchTriggeredPayload(string Target, string Subject, string? Reason, string? SetBy);

/// <summary>
/// Payload of <see cref="EventTypes.CircuitStateChanged"/>: the circuit breaker of a tool, or of a model tier, changed
/// state during a call of this job.
/// </summary>
/// <param name="Tool">The tool; null for a model tier's circuit (see <see cref="Tier"/>).</param>
/// <param name="From">The state before.</param>
/// <param name="To">The state after: <c>open</c>, <c>half_open</c> or <c>closed</c>.</param>
/// <param name="CallId">The call that observed it.</param>
public sealed record CircuitStateChangedPayload(string? Tool, string From, string To, string CallId)
{
    /// <summary>The model tier, for a model tier's circuit; null for a tool's.</summary>
    public string? Tier { get; init; }
}

/// <summary>Payload of <see cref="EventTypes.PatternStarted"/> (recorded on the coordinating step).</summary>
/// <param name="Kind"><c>parallel</c>, <c>foreach</c> or <c>workflow</c>.</param>
/// <param name="Count">Branches, items or child jobs in all.</param>
/// <param name="Labels">The branch labels (parallel: the branches' first steps).</param>
/// <param name="Items">The list a foreach maps over (kept so the run never re-evaluates it).</param>
/// <param name="Join"><c>all</c>, <c>any</c> or <c>quorum</c>.</param>
/// <param name="Needed">Successes that complete the step.</param>
/// <param name="MaxConcurrency">Items in flight at once (foreach).</param>
/// <param name="Do">What runs per branch or item: a step id or <c>name@version</c>.</param>
public sealed record PatternStartedPayload(string Kind, int Count, IReadOnlyList<string>? Labels, JsonElement? Items, string Join, int Needed, int? MaxConcurrency, string? Do);

/// <summary>Payload of <see cref="EventTypes.BranchStarted"/> (recorded on the coordinating step).</summary>
/// <param name="Label">The branch (its first step), the item index, or <c>child</c>.</param>
/// <param name="Scope">The scope the branch's steps run in (<c>OWNER#VISIT/LABEL</c>).</param>
/// <param name="ChildJobId">The child job, when the branch is a sub-workflow.</param>
/// <param name="Workflow">The child's workflow as <c>name@version</c>.</param>
public sealed record BranchStartedPayload(string Label, string Scope, string? ChildJobId, string? Workflow);

/// <summary>Payload of <see cref="EventTypes.BranchEnded"/> (recorded on the coordinating step).</summary>
/// <param name="Label">The branch, item index or <c>child</c>.</param>
/// <param name="Status"><c>succeeded</c>, <c>failed</c> or <c>cancelled</c>.</param>
/// <param name="Output">The branch's result: the output of its last step, or the child job's artifacts.</param>
/// <param name="Reason">Why it failed or was cancelled.</param>
/// <param name="ChildJobId">The child job, for a sub-workflow.</param>
public sealed record BranchEndedPayload(string Label, string Status, JsonElement? Output, string? Reason, string? ChildJobId);

/// <summary>Payload of <see cref="EventTypes.PatternProgressed"/> (recorded on the multi-phase step).</summary>
/// <param name="Kind"><c>plan</c>, <c>supervise</c>, <c>board</c> or <c>auction</c>.</param>
/// <param name="Phase">What the unit was: <c>plan</c>, <c>plan_rejected</c>, <c>item</c>, <c>decision</c>, <c>result</c>, <c>firing</c>, <c>bid</c>, <c>award</c>.</param>
/// <param name="Unit">The unit's number in this step visit (from 0).</param>
/// <param name="Data">What the unit produced (the plan, the worker's result with its verdict, the bid, the rule that fired and the artifacts that triggered it…).</param>
public sealed record PatternProgressedPayload(string Kind, string Phase, int Unit, JsonElement Data);

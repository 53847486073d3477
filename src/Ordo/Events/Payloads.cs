using System.Text.Json;

namespace Ordo.Events;

/// <summary>Payload of <see cref="EventTypes.JobSubmitted"/>.</summary>
public sealed record JobSubmittedPayload(
    string Workflow, int Version, string DefinitionHash, string Tenant, string Submitter,
    JsonElement? Input, JsonElement? Constraints, string? ParentJobId, string? ParentStepId, string TraceId, int Priority);

/// <summary>Payload of <see cref="EventTypes.StepScheduled"/>.</summary>
/// <param name="Kind">The step kind (agent, tool, transform, …).</param>
/// <param name="Reason">Why it was scheduled: <c>entry</c>, <c>route</c>, <c>retry</c>, <c>branch</c>, <c>item</c>, <c>join</c>.</param>
/// <param name="From">The step whose route led here, if any.</param>
/// <param name="AvailableAt">When the work becomes available, if later than now (retry backoff).</param>
public sealed record StepScheduledPayload(string Kind, string Reason, string? From, DateTimeOffset? AvailableAt);

/// <summary>Payload of <see cref="EventTypes.StepStarted"/>.</summary>
/// <param name="Worker">The worker that holds the lease.</param>
/// <param name="Delivery">How many times this work item has been handed to a worker (above 1 after a crash).</param>
public sealed record StepStartedPayload(string Worker, int Delivery);

/// <summary>Payload of <see cref="EventTypes.StepSucceeded"/>.</summary>
public sealed record StepSucceededPayload(JsonElement? Output, double DurationMs, IReadOnlyList<string>? Next, JsonElement? Input);

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
public sealed record ToolCallSucceededPayload(string CallId, string Tool, JsonElement? Result, double DurationMs, bool Cached, bool DryRun);

/// <summary>Payload of <see cref="EventTypes.ToolCallFailed"/>.</summary>
public sealed record ToolCallFailedPayload(string CallId, string Tool, string Error, string Message, double DurationMs, bool Retryable);

/// <summary>Payload of <see cref="EventTypes.ModelCallSucceeded"/>: the response is kept so the job can be replayed.</summary>
public sealed record ModelCallSucceededPayload(
    string CallId, string Tier, string Provider, string Model, string? Content, long InputTokens, long OutputTokens, decimal Cost, double DurationMs);

/// <summary>Payload of <see cref="EventTypes.ModelCallFailed"/>.</summary>
public sealed record ModelCallFailedPayload(string CallId, string Tier, string Provider, string Model, string Error, string Message, double DurationMs);

/// <summary>Payload of <see cref="EventTypes.JobCompleted"/>.</summary>
public sealed record JobCompletedPayload(double DurationMs);

/// <summary>Payload of <see cref="EventTypes.JobFailed"/>.</summary>
public sealed record JobFailedPayload(string Reason, string? Step, string? Error);

/// <summary>Payload of <see cref="EventTypes.JobCancelled"/>.</summary>
public sealed record JobCancelledPayload(string Reason, string By);

using System.Text.Json;

namespace Ordo.Engine;

/// <summary>A value a step wants recorded as a named artifact (verified against its contract before it is visible).</summary>
/// <param name="Name">The artifact name.</param>
/// <param name="Value">The value.</param>
public sealed record ArtifactCandidate(string Name, JsonElement Value);

/// <summary>What executing a step attempt produced: its output, or why it failed.</summary>
public sealed record StepOutcome
{
    /// <summary>Whether the attempt succeeded.</summary>
    public required bool Succeeded { get; init; }
    /// <summary>The output (<c>steps.ID.output</c>).</summary>
    public JsonElement? Output { get; init; }
    /// <summary>The step's evaluated input, kept in the log for inspection.</summary>
    public JsonElement? Input { get; init; }
    /// <summary>Artifacts to verify and record.</summary>
    public IReadOnlyList<ArtifactCandidate> Artifacts { get; init; } = [];
    /// <summary>The agent as <c>name@version</c>.</summary>
    public string? Agent { get; init; }
    /// <summary>The prompt hash.</summary>
    public string? PromptHash { get; init; }
    /// <summary>The model id.</summary>
    public string? Model { get; init; }
    /// <summary>A short failure kind.</summary>
    public string? Error { get; init; }
    /// <summary>What went wrong.</summary>
    public string? Message { get; init; }
    /// <summary>Whether another attempt could succeed.</summary>
    public bool Retryable { get; init; }
    /// <summary>Structured failure details.</summary>
    public JsonElement? Details { get; init; }
    /// <summary>Tool call ids made by the step.</summary>
    public IReadOnlyList<string> ToolCalls { get; init; } = [];

    /// <summary>A success.</summary>
    public static StepOutcome Success(JsonElement output, IReadOnlyList<ArtifactCandidate>? artifacts = null, JsonElement? input = null)
        => new() { Succeeded = true, Output = output, Artifacts = artifacts ?? [], Input = input };

    /// <summary>A failure.</summary>
    public static StepOutcome Failure(string error, string message, bool retryable, JsonElement? details = null)
        => new() { Succeeded = false, Error = error, Message = message, Retryable = retryable, Details = details };
}

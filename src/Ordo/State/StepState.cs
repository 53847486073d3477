using System.Text.Json;

namespace Ordo.State;

/// <summary>What a model call in flight may still use of a job's budgets.</summary>
/// <param name="WorkKey">The step visit that made the call.</param>
/// <param name="Tokens">Tokens held (0 without a token budget).</param>
/// <param name="Cost">Cost held, in USD (0 without a cost budget).</param>
/// <param name="Exclusive">A call without an output bound: it runs alone, and what it will use is not known until it ends.</param>
public sealed record ModelReservation(string WorkKey, long Tokens, decimal Cost, bool Exclusive = false);

/// <summary>What is known of one step of a job: its latest visit (across scopes).</summary>
public sealed record StepState
{
    /// <summary>The step id.</summary>
    public required string Id { get; init; }
    /// <summary><c>scheduled</c>, <c>running</c>, <c>succeeded</c> or <c>failed</c>.</summary>
    public required string Status { get; init; }
    /// <summary>The latest visit.</summary>
    public int Visit { get; init; }
    /// <summary>Attempts made in the latest visit.</summary>
    public int Attempts { get; init; }
    /// <summary>Attempts made over all visits.</summary>
    public int TotalAttempts { get; init; }
    /// <summary>The latest visit's output, once it succeeded.</summary>
    public JsonElement? Output { get; init; }
    /// <summary>The last error message, if the latest attempt failed.</summary>
    public string? Error { get; init; }
    /// <summary>Total time spent in attempts of this step (milliseconds).</summary>
    public double DurationMs { get; init; }
    /// <summary>The scope of the latest visit.</summary>
    public string? Scope { get; init; }
}

/// <summary>One version of an artifact.</summary>
public sealed record ArtifactVersion
{
    /// <summary>1-based version (each put adds one).</summary>
    public int Version { get; init; }
    /// <summary><c>pending</c>, <c>verified</c>, <c>quarantined</c> or <c>rejected</c>.</summary>
    public required string Status { get; init; }
    /// <summary>The value.</summary>
    public JsonElement Value { get; init; }
    /// <summary>Why it was quarantined or rejected.</summary>
    public string? Reason { get; init; }
    /// <summary>The step that produced it.</summary>
    public required string Step { get; init; }
    /// <summary>The agent (<c>name@version</c>) that produced it, if any.</summary>
    public string? Agent { get; init; }
}

/// <summary>What is known of one named artifact of a job.</summary>
public sealed record ArtifactState
{
    /// <summary>The artifact name.</summary>
    public required string Name { get; init; }
    /// <summary>The latest version, whatever its status.</summary>
    public required ArtifactVersion Latest { get; init; }
    /// <summary>The latest verified version: what downstream steps see.</summary>
    public ArtifactVersion? Verified { get; init; }
    /// <summary>The latest quarantined version: seen only by steps that accept quarantined artifacts.</summary>
    public ArtifactVersion? Quarantined { get; init; }
}

/// <summary>A scheduled or running unit of work of a job, as the log tells it.</summary>
public sealed record OpenWork(string StepId, int Visit, int Attempt, string? Scope, string Status)
{
    /// <summary>What this attempt changes (<c>retry.vary</c>).</summary>
    public IReadOnlyList<string>? Variations { get; init; }
}

/// <summary>Running totals of what a job consumed.</summary>
public sealed record JobUsage
{
    /// <summary>Model tokens, input plus output.</summary>
    public long Tokens { get; init; }
    /// <summary>Model cost in USD.</summary>
    public decimal Cost { get; init; }
    /// <summary>Tool calls requested.</summary>
    public int ToolCalls { get; init; }
    /// <summary>Model calls made.</summary>
    public int ModelCalls { get; init; }

    /// <summary>Nothing consumed.</summary>
    public static JobUsage Zero { get; } = new();
}

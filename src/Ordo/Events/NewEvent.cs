namespace Ordo.Events;

/// <summary>An event about to be appended to a job's log: everything but its sequence number and hash.</summary>
/// <remarks>Build instances with <see cref="EventFactory"/>, which serializes the typed payload once.</remarks>
public sealed class NewEvent
{
    /// <summary>Creates an event.</summary>
    public NewEvent(string type, DateTimeOffset timestamp, ReadOnlyMemory<byte> payload, object? typedPayload = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        Type = type;
        Timestamp = EventChain.TruncateToMilliseconds(timestamp);
        Payload = payload;
        TypedPayload = typedPayload;
    }

    /// <summary>The event type, one of <see cref="EventTypes"/>.</summary>
    public string Type { get; }
    /// <summary>The step the event belongs to, if any.</summary>
    public string? StepId { get; init; }
    /// <summary>Which visit of the step (1 for the first; loops visit again).</summary>
    public int? Visit { get; init; }
    /// <summary>Which attempt of that visit (1 for the first; retries increase it).</summary>
    public int? Attempt { get; init; }
    /// <summary>Where inside a pattern the step runs (a parallel branch or a foreach item), or null at top level.</summary>
    public string? Scope { get; init; }
    /// <summary>When the event happened, with millisecond precision.</summary>
    public DateTimeOffset Timestamp { get; }
    /// <summary>The agent as <c>name@version</c>, if an agent was involved.</summary>
    public string? Agent { get; init; }
    /// <summary>The content hash of the prompt used (<c>sha256:…</c>).</summary>
    public string? PromptHash { get; init; }
    /// <summary>The model id that answered.</summary>
    public string? Model { get; init; }
    /// <summary>The policy set as <c>name@version</c> in force.</summary>
    public string? Policy { get; init; }
    /// <summary>The payload as UTF-8 JSON.</summary>
    public ReadOnlyMemory<byte> Payload { get; }
    /// <summary>The payload object the JSON was made from, when the event was created in this process.</summary>
    public object? TypedPayload { get; }
    /// <summary>The trace of the span the event was created in (32 hex digits), or null outside a traced span.</summary>
    public string? TraceId { get => _traceId; init => _traceId = value; }
    /// <summary>The span the event was created in (16 hex digits), or null outside a traced span.</summary>
    public string? SpanId { get => _spanId; init => _spanId = value; }

    private string? _traceId;
    private string? _spanId;

    /// <summary>Stamps the event with the span it was created in (before it is sealed).</summary>
    internal void SetTrace(string traceId, string spanId)
    {
        _traceId = traceId;
        _spanId = spanId;
    }
}

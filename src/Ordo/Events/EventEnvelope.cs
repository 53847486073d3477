using System.Text;

namespace Ordo.Events;

/// <summary>One event of a job's log as stored: sequence-numbered, typed, stamped and hash-chained to its predecessor.</summary>
public sealed class EventEnvelope
{
    private object? _typed;

    /// <summary>Creates an envelope. Stores call this when reading; <see cref="EventChain.Seal"/> when appending.</summary>
    public EventEnvelope(JobId jobId, long seq, string type, DateTimeOffset timestamp, ReadOnlyMemory<byte> payload, byte[] hash, byte[] prevHash)
    {
        JobId = jobId;
        Seq = seq;
        Type = type;
        Timestamp = timestamp;
        Payload = payload;
        Hash = hash;
        PrevHash = prevHash;
    }

    /// <summary>The job whose log holds the event.</summary>
    public JobId JobId { get; }
    /// <summary>1-based position in the job's log; contiguous.</summary>
    public long Seq { get; }
    /// <summary>The event type, one of <see cref="EventTypes"/>.</summary>
    public string Type { get; }
    /// <summary>The step the event belongs to, if any.</summary>
    public string? StepId { get; init; }
    /// <summary>Which visit of the step.</summary>
    public int? Visit { get; init; }
    /// <summary>Which attempt of the visit.</summary>
    public int? Attempt { get; init; }
    /// <summary>The scope inside a pattern (parallel branch, foreach item), or null at top level.</summary>
    public string? Scope { get; init; }
    /// <summary>When the event happened (millisecond precision, UTC).</summary>
    public DateTimeOffset Timestamp { get; }
    /// <summary>The agent as <c>name@version</c>.</summary>
    public string? Agent { get; init; }
    /// <summary>The prompt content hash.</summary>
    public string? PromptHash { get; init; }
    /// <summary>The model id.</summary>
    public string? Model { get; init; }
    /// <summary>The policy set as <c>name@version</c>.</summary>
    public string? Policy { get; init; }
    /// <summary>The trace of the span the event was created in (32 hex digits); null for events outside a traced span and in older logs.</summary>
    public string? TraceId { get; init; }
    /// <summary>The span the event was created in (16 hex digits); null for events outside a traced span and in older logs.</summary>
    public string? SpanId { get; init; }
    /// <summary>The payload, UTF-8 JSON.</summary>
    public ReadOnlyMemory<byte> Payload { get; }
    /// <summary>SHA-256 over the previous hash and this event's content.</summary>
    public byte[] Hash { get; }
    /// <summary>The hash of the previous event (32 zero bytes for the first).</summary>
    public byte[] PrevHash { get; }

    /// <summary>The payload as text.</summary>
    public string PayloadText => Encoding.UTF8.GetString(Payload.Span);

    /// <summary>The payload deserialized as <typeparamref name="T"/> (cached).</summary>
    public T GetPayload<T>() where T : class
    {
        if (_typed is T t)
        {
            return t;
        }

        var value = EventPayloads.Deserialize<T>(Payload.Span);
        _typed = value;
        return value;
    }

    internal void SetTypedPayload(object? typed) => _typed = typed;
}

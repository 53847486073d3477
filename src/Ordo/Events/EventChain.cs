using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Ordo.Events;

/// <summary>
/// The hash chain of a job's log. Each event's hash is SHA-256 over the previous event's hash and a
/// canonical, length-prefixed encoding of every stored field (the trace and span ids only when present), so that altering, deleting or reordering
/// an event breaks the chain at that event.
/// </summary>
public static class EventChain
{
    /// <summary>The hash that precedes the first event of every log: 32 zero bytes.</summary>
    public static ReadOnlySpan<byte> GenesisHash => new byte[32];

    /// <summary>Gives events their sequence numbers and hashes, continuing a log whose head is (<paramref name="prevSeq"/>, <paramref name="prevHash"/>).</summary>
    public static EventEnvelope[] Seal(JobId jobId, long prevSeq, ReadOnlySpan<byte> prevHash, IReadOnlyList<NewEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var sealedEvents = new EventEnvelope[events.Count];
        var prev = prevHash.ToArray();
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var seq = prevSeq + i + 1;
            var hash = ComputeHash(prev, jobId, seq, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, e.Timestamp, e.Agent, e.PromptHash, e.Model, e.Policy, e.Payload.Span, e.TraceId, e.SpanId);
            var envelope = new EventEnvelope(jobId, seq, e.Type, e.Timestamp, e.Payload, hash, prev)
            {
                StepId = e.StepId, Visit = e.Visit, Attempt = e.Attempt, Scope = e.Scope,
                Agent = e.Agent, PromptHash = e.PromptHash, Model = e.Model, Policy = e.Policy,
                TraceId = e.TraceId, SpanId = e.SpanId,
            };
            envelope.SetTypedPayload(e.TypedPayload);
            sealedEvents[i] = envelope;
            prev = hash;
        }

        return sealedEvents;
    }

    /// <summary>Recomputes the hash of a stored event from its fields and the given previous hash.</summary>
    public static byte[] ComputeHash(ReadOnlySpan<byte> prevHash, EventEnvelope e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return ComputeHash(prevHash, e.JobId, e.Seq, e.Type, e.StepId, e.Visit, e.Attempt, e.Scope, e.Timestamp, e.Agent, e.PromptHash, e.Model, e.Policy, e.Payload.Span, e.TraceId, e.SpanId);
    }

    /// <summary>Truncates a timestamp to whole milliseconds, the precision that is stored and hashed.</summary>
    public static DateTimeOffset TruncateToMilliseconds(DateTimeOffset t)
        => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());

    private static byte[] ComputeHash(
        ReadOnlySpan<byte> prevHash, JobId jobId, long seq, string type, string? stepId, int? visit, int? attempt, string? scope,
        DateTimeOffset ts, string? agent, string? promptHash, string? model, string? policy, ReadOnlySpan<byte> payload,
        string? traceId, string? spanId)
    {
        var traced = traceId is not null || spanId is not null;
        var max = 32 + 8 + 8 + (4 * 9) + (5 * 2) + payload.Length
            + Max(jobId.Value) + Max(type) + Max(stepId) + Max(scope) + Max(agent) + Max(promptHash) + Max(model) + Max(policy)
            + (traced ? Max(traceId) + Max(spanId) : 0);
        var rented = max <= 1024 ? null : ArrayPool<byte>.Shared.Rent(max);
        Span<byte> buf = rented ?? stackalloc byte[1024];
        try
        {
            var w = new Writer(buf);
            w.Bytes(prevHash);
            w.String(jobId.Value);
            w.Int64(seq);
            w.String(type);
            w.String(stepId);
            w.Int(visit);
            w.Int(attempt);
            w.String(scope);
            w.Int64(ts.ToUnixTimeMilliseconds());
            w.String(agent);
            w.String(promptHash);
            w.String(model);
            w.String(policy);
            w.Length(payload.Length);
            w.Bytes(payload);
            if (traced)
            {
                // Only events that carry a trace encode it, after the length-prefixed payload: an event without one
                // hashes exactly as before these fields existed, so logs written earlier still verify.
                w.String(traceId);
                w.String(spanId);
            }

            return SHA256.HashData(buf[..w.Position]);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static int Max(string? s) => 4 + (s is null ? 0 : Encoding.UTF8.GetMaxByteCount(s.Length));

    /// <summary>Writes the canonical, length-prefixed encoding that the hash covers.</summary>
    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;

        public int Position { get; private set; }

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_buffer[Position..]);
            Position += bytes.Length;
        }

        public void Length(int length)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[Position..], length);
            Position += 4;
        }

        public void Int64(long value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_buffer[Position..], value);
            Position += 8;
        }

        public void Int(int? value)
        {
            _buffer[Position] = value.HasValue ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[(Position + 1)..], value ?? 0);
            Position += 5;
        }

        public void String(string? value)
        {
            if (value is null)
            {
                Length(-1);
                return;
            }

            var n = Encoding.UTF8.GetBytes(value, _buffer[(Position + 4)..]);
            Length(n);
            Position += n;
        }
    }
}

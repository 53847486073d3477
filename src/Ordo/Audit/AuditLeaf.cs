using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Ordo.Events;

namespace Ordo.Audit;

/// <summary>What a leaf of the audit log records.</summary>
public enum AuditLeafKind
{
    /// <summary>Events appended to a job's log: the job, the sequence numbers, and the hash of the last one (which chains over every event before it).</summary>
    Events = 1,

    /// <summary>A definition stored for the first time: its content hash and the SHA-256 of the bytes stored.</summary>
    Definition = 2,
}

/// <summary>
/// One leaf of the store-wide audit log. A store appends one for each append to a job's log (a submission, a step's
/// commit, a claim's StepStarted) and one for each definition it stores, in the same transaction.
/// </summary>
/// <param name="Kind">What it records.</param>
/// <param name="Subject">The job id, or the definition's content hash.</param>
/// <param name="FirstSeq">The first event appended (0 for a definition).</param>
/// <param name="LastSeq">The last event appended (0 for a definition).</param>
/// <param name="Digest">The hash of the last event, or the SHA-256 of the definition's stored bytes (32 bytes).</param>
public sealed record AuditLeaf(AuditLeafKind Kind, string Subject, long FirstSeq, long LastSeq, byte[] Digest)
{
    /// <summary>The leaf for events just sealed for a job (at least one).</summary>
    public static AuditLeaf ForEvents(JobId jobId, IReadOnlyList<EventEnvelope> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0) throw new ArgumentException("a leaf records at least one event", nameof(events));
        return new AuditLeaf(AuditLeafKind.Events, jobId.Value, events[0].Seq, events[^1].Seq, events[^1].Hash);
    }

    /// <summary>The leaf for a definition stored with <paramref name="content"/>.</summary>
    public static AuditLeaf ForDefinition(string hash, ReadOnlySpan<byte> content)
        => new(AuditLeafKind.Definition, hash, 0, 0, SHA256.HashData(content));

    /// <summary>The job this leaf is about, for an events leaf.</summary>
    public JobId? JobId => Kind == AuditLeafKind.Events ? new JobId(Subject) : null;

    /// <summary>
    /// The leaf's data: its kind (1 byte), the UTF-8 subject (length-prefixed, 4 bytes little-endian), the first and
    /// last sequence numbers (8 bytes each, little-endian) and the 32-byte digest.
    /// </summary>
    public byte[] ToBytes()
    {
        var subject = Encoding.UTF8.GetBytes(Subject);
        var data = new byte[1 + 4 + subject.Length + 8 + 8 + Digest.Length];
        data[0] = (byte)Kind;
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(1), subject.Length);
        subject.CopyTo(data, 5);
        var at = 5 + subject.Length;
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(at), FirstSeq);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(at + 8), LastSeq);
        Digest.CopyTo(data, at + 16);
        return data;
    }

    /// <summary>The leaf's hash in the tree: SHA-256(0x00 || <see cref="ToBytes"/>).</summary>
    public byte[] Hash()
    {
        // Encoded on the stack for the usual subject (a job id or a content hash): a leaf is hashed on every commit.
        var max = 1 + 4 + Encoding.UTF8.GetMaxByteCount(Subject.Length) + 16 + Digest.Length;
        if (max > 256) return MerkleHash.Leaf(ToBytes());
        Span<byte> data = stackalloc byte[max];
        data[0] = (byte)Kind;
        var n = Encoding.UTF8.GetBytes(Subject, data[5..]);
        BinaryPrimitives.WriteInt32LittleEndian(data[1..], n);
        var at = 5 + n;
        BinaryPrimitives.WriteInt64LittleEndian(data[at..], FirstSeq);
        BinaryPrimitives.WriteInt64LittleEndian(data[(at + 8)..], LastSeq);
        Digest.CopyTo(data[(at + 16)..]);
        return MerkleHash.Leaf(data[..(at + 16 + Digest.Length)]);
    }
}

/// <summary>A leaf as stored: its position in the log, what it records, and the hash stored with it.</summary>
/// <param name="Index">Its position, from 0.</param>
/// <param name="Leaf">What it records.</param>
/// <param name="Hash">The leaf hash stored with it (recomputed from <see cref="Leaf"/> when the log is checked).</param>
public sealed record StoredAuditLeaf(long Index, AuditLeaf Leaf, byte[] Hash);

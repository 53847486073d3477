using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ordo.Audit;

/// <summary>
/// A signed statement of the audit log at one moment: its size and root hash, when, and (in a checkpoint file) a
/// digest of every job's head at that moment. Signed with the audit key, which is kept outside the database.
/// </summary>
public sealed record AuditCheckpoint
{
    /// <summary>How many leaves the log held.</summary>
    public required long TreeSize { get; init; }
    /// <summary>The log's root hash at that size (32 bytes).</summary>
    public required byte[] Root { get; init; }
    /// <summary>When it was taken (millisecond precision, as signed).</summary>
    public required DateTimeOffset Time { get; init; }
    /// <summary>The signing key's id: <c>sha256:</c> of its public key (SubjectPublicKeyInfo).</summary>
    public required string KeyId { get; init; }
    /// <summary>The signing key's public key (SubjectPublicKeyInfo, DER).</summary>
    public required byte[] PublicKey { get; init; }
    /// <summary>SHA-256 of the job heads listed in the checkpoint file (<see cref="CheckpointJob.Digest"/>), or null when none were listed.</summary>
    public byte[]? JobsDigest { get; init; }
    /// <summary>The ECDSA P-256 signature (SHA-256, IEEE P1363 form) over <see cref="Statement"/>.</summary>
    public required byte[] Signature { get; init; }

    /// <summary>The bytes the signature covers.</summary>
    public byte[] Statement() => StatementOf(TreeSize, Root, Time, JobsDigest);

    /// <summary>
    /// The signed statement: UTF-8 lines <c>ordo audit checkpoint v1</c>, <c>tree_size N</c>, <c>root HEX</c>,
    /// <c>time UNIX_MS</c> and <c>jobs HEX|none</c>.
    /// </summary>
    public static byte[] StatementOf(long treeSize, ReadOnlySpan<byte> root, DateTimeOffset time, ReadOnlySpan<byte> jobsDigest)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"ordo audit checkpoint v1\ntree_size {treeSize}\nroot {Convert.ToHexStringLower(root)}\ntime {time.ToUnixTimeMilliseconds()}\njobs {(jobsDigest.IsEmpty ? "none" : Convert.ToHexStringLower(jobsDigest))}\n");
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>The id of a public key: <c>sha256:</c> and the lower-case hex SHA-256 of its SubjectPublicKeyInfo.</summary>
    public static string KeyIdOf(ReadOnlySpan<byte> publicKey) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(publicKey));
}

/// <summary>One job's head as a checkpoint file lists it: every event up to <see cref="Seq"/> is unchanged when the chain still reaches <see cref="Head"/> there.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Seq">Its last event then.</param>
/// <param name="Head">That event's hash.</param>
public sealed record CheckpointJob(JobId JobId, long Seq, byte[] Head)
{
    /// <summary>SHA-256 over the jobs, in the order given, each as the UTF-8 line <c>ID SEQ HEX\n</c>.</summary>
    public static byte[] Digest(IReadOnlyList<CheckpointJob> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var job in jobs)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{job.JobId.Value} {job.Seq} {Convert.ToHexStringLower(job.Head)}\n")));
        }

        return sha.GetHashAndReset();
    }
}

/// <summary>A checkpoint as a file keeps it: the signed statement and the job heads its digest covers.</summary>
/// <param name="Checkpoint">The signed statement.</param>
/// <param name="Jobs">Every job's head when it was taken (ordered by id), or empty when the file carries only the tree head.</param>
public sealed record AuditCheckpointFile(AuditCheckpoint Checkpoint, IReadOnlyList<CheckpointJob> Jobs);

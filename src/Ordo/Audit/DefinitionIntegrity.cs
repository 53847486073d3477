using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Audit;

/// <summary>
/// Checks a stored definition against the content hash a job recorded in its JobSubmitted event (which the job's
/// hash chain covers): the hash is computed again from the stored bundle, and the stored bytes are compared with the
/// digest the audit log recorded when the definition was stored (when the store has it), so a definition edited in the
/// database is never run.
/// </summary>
public static class DefinitionIntegrity
{
    /// <summary>Why <paramref name="record"/> is not the definition with content hash <paramref name="expectedHash"/>, or null when it is.</summary>
    public static string? Problem(DefinitionRecord record, string expectedHash) => Problem(record, expectedHash, "in the database");

    /// <summary>
    /// Why <paramref name="record"/> is not the definition with content hash <paramref name="expectedHash"/>, or null when
    /// it is; <paramref name="where"/> says where it was read from (<c>in the database</c>, <c>in the export file F</c>).
    /// </summary>
    public static string? Problem(DefinitionRecord record, string expectedHash, string where)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!string.Equals(record.Hash, expectedHash, StringComparison.Ordinal))
        {
            return $"the store returned definition {record.Hash} for {expectedHash}";
        }

        DefinitionBundle bundle;
        try
        {
            bundle = DefinitionBundle.FromBytes(record.Content);
        }
        catch (InvalidDataException e)
        {
            return $"the stored definition {expectedHash} of {record.Workflow}@{record.Version} is not readable ({e.Message}): it was changed";
        }

        var actual = bundle.ComputeHash();
        if (!string.Equals(actual, expectedHash, StringComparison.Ordinal))
        {
            return $"the stored definition of {record.Workflow}@{record.Version} no longer has the hash its job recorded ({expectedHash}; its content now hashes to {actual}): it was changed {where}";
        }

        // What the hash leaves out (the folder relative paths resolve in) is pinned by the audit log's digest.
        return record.LoggedDigest is { } logged && !System.Security.Cryptography.SHA256.HashData(record.Content).AsSpan().SequenceEqual(logged)
            ? $"the stored definition of {record.Workflow}@{record.Version} ({expectedHash}) differs from the bytes the audit log recorded when it was stored, though its hash is unchanged (a part the hash leaves out, such as its root folder, was changed): it was changed {where}"
            : null;
    }
}

/// <summary>A job's stored definition was changed after the job recorded its hash: the job is never run on it.</summary>
/// <param name="workflow">The workflow's name.</param>
/// <param name="version">The workflow's version.</param>
/// <param name="hash">The hash the job recorded.</param>
/// <param name="problem">What does not match.</param>
public sealed class DefinitionChangedException(string workflow, int version, string hash, string problem) : OrdoException(problem)
{
    /// <summary>The workflow's name.</summary>
    public string Workflow { get; } = workflow;

    /// <summary>The workflow's version.</summary>
    public int Version { get; } = version;

    /// <summary>The content hash the job recorded.</summary>
    public string Hash { get; } = hash;
}

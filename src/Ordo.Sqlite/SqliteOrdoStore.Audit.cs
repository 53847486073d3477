using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Storage;

namespace Ordo.Sqlite;

/// <summary>
/// The audit log as stored (its leaves and subtrees, appended by <see cref="SqliteAuditLog"/>) and its published
/// checkpoints. Events leaves are sealed after their commit: at most <see cref="SqliteStoreOptions.AuditSealInterval"/>
/// after the first one that waits, off the commit's path; before the log's size is read (so that a reader sees every
/// leaf committed before it asked, this process's and what any process left unsealed); and when the store closes.
/// </summary>
public sealed partial class SqliteOrdoStore
{
    private readonly CancellationTokenSource _closing = new();
    private int _sealScheduled;
    private int _closed;

    /// <summary>The first leaf waits: seals once the interval has passed (a group that seals sooner takes them all).</summary>
    private void SealSoon()
    {
        if (Interlocked.Exchange(ref _sealScheduled, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(_options.AuditSealInterval, _closing.Token).ConfigureAwait(false);
                Volatile.Write(ref _sealScheduled, 0);
                await SealAsync(scan: false).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or StoreUnavailableException or SqliteException or InvalidOperationException or InvalidDataException)
            {
                // Left waiting: the next seal, a reader of the log or the store's close takes it; a process that dies
                // first left its jobs' logged_seq past their sealed_seq, which the next scan seals.
            }
            finally
            {
                Volatile.Write(ref _sealScheduled, 0);
            }

            // A commit after the seal started may have found it scheduled and left its leaf waiting: look again.
            if (_auditLog is { Deferred: > 0 } && Volatile.Read(ref _closed) == 0) SealSoon();
        });
    }

    /// <summary>Seals, in a write of its own (which any commit queued meanwhile joins), what waits; with <paramref name="scan"/>, also what any process left unsealed.</summary>
    private Task<int> SealAsync(bool scan)
    {
        var log = _auditLog;
        if (log is null) return Task.FromResult(0);
        return Writer.WriteAsync(_ =>
        {
            log.RequestSeal(scan);
            return 0;
        });
    }

    /// <summary>Seals before a read of the log; a store that cannot write (read-only) reads the log as sealed so far.</summary>
    private async ValueTask SealForReadAsync(bool scan)
    {
        if (_auditLog is not { } log || _openedReadOnly || (!scan && log.Deferred == 0)) return;
        try
        {
            await SealAsync(scan).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // A file this process may not write: the leaves that wait are not read, and ordo audit verify names them.
        }
    }

    private async ValueTask SealOnCloseAsync()
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        if (_writer is null || _auditLog is not { Deferred: > 0 }) return;
        try
        {
            await SealAsync(scan: false).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StoreUnavailableException or SqliteException or InvalidOperationException or InvalidDataException)
        {
            // The events are durable and their jobs' rows say they wait: the next scan seals them.
        }
    }

    /// <inheritdoc />
    public async ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await SealForReadAsync(scan: true).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves";
        return (long)cmd.ExecuteScalar()!;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var tx = c.BeginTransaction(deferred: true);
        using var leaf = c.CreateCommand();
        leaf.CommandText = "SELECT hash FROM audit_leaves WHERE idx = $i";
        var leafIndex = leaf.Parameters.Add("$i", SqliteType.Integer);
        using var node = c.CreateCommand();
        node.CommandText = "SELECT hash FROM audit_nodes WHERE level = $l AND idx = $i";
        var level = node.Parameters.Add("$l", SqliteType.Integer);
        var nodeIndex = node.Parameters.Add("$i", SqliteType.Integer);
        using var range = c.CreateCommand();
        range.CommandText = "SELECT hash FROM audit_leaves WHERE idx >= $from AND idx < $to ORDER BY idx";
        var from = range.Parameters.Add("$from", SqliteType.Integer);
        var to = range.Parameters.Add("$to", SqliteType.Integer);
        var result = new byte[]?[ids.Count];
        for (var i = 0; i < ids.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var id = ids[i];
            if (id.Level == 0)
            {
                leafIndex.Value = id.Index;
                result[i] = leaf.ExecuteScalar() as byte[];
            }
            else if (id.Level >= SqliteAuditLog.MinStoredLevel)
            {
                level.Value = id.Level;
                nodeIndex.Value = id.Index;
                result[i] = node.ExecuteScalar() as byte[];
            }
            else
            {
                // Small subtrees are not stored: hashed again from their leaves (at most 8).
                from.Value = id.FirstLeaf;
                to.Value = id.FirstLeaf + id.Leaves;
                var leaves = new List<byte[]>((int)id.Leaves);
                using (var r = range.ExecuteReader())
                {
                    while (r.Read()) leaves.Add(SqliteContent.Bytes(r, 0));
                }

                result[i] = leaves.Count == id.Leaves ? MerkleHash.PerfectRoot(leaves) : null;
            }
        }

        return result;
    }

    /// <inheritdoc />
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("idx >= $from AND idx < $to ORDER BY idx", cmd =>
        {
            cmd.Parameters.AddWithValue("$from", from);
            cmd.Parameters.AddWithValue("$to", to);
        }, cancellationToken);

    /// <inheritdoc />
    public async IAsyncEnumerable<MerkleNode> ReadStoredAuditNodesAsync(long size, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        // A row whose level or index no subtree can have is never read by a proof: left out.
        cmd.CommandText = """
            SELECT level, idx, hash FROM audit_nodes
            WHERE level BETWEEN 1 AND 40 AND idx >= 0 AND ((idx + 1) << level) <= $size
            ORDER BY ((idx + 1) << level), level
            """;
        cmd.Parameters.AddWithValue("$size", size);
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            // A hash that is not a blob is reported as not matching, not thrown.
            yield return new MerkleNode(new MerkleNodeId(r.GetInt32(0), r.GetInt64(1)), r.GetValue(2) as byte[] ?? []);
        }
    }

    /// <inheritdoc />
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("subject = $s ORDER BY idx", cmd => cmd.Parameters.AddWithValue("$s", subject), cancellationToken);

    private async IAsyncEnumerable<StoredAuditLeaf> ReadLeavesAsync(string where, Action<SqliteCommand> bind, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await SealForReadAsync(scan: false).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT idx, kind, subject, first_seq, last_seq, digest, hash FROM audit_leaves WHERE " + where;
        bind(cmd);
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var kind = (AuditLeafKind)r.GetInt32(1);
            if (kind is not (AuditLeafKind.Events or AuditLeafKind.Definition))
            {
                throw new InvalidDataException($"leaf {r.GetInt64(0)} of the audit log has an unknown kind {(int)kind}");
            }

            yield return new StoredAuditLeaf(r.GetInt64(0), new AuditLeaf(kind, r.GetString(2), r.GetInt64(3), r.GetInt64(4), SqliteContent.Bytes(r, 5)), SqliteContent.Bytes(r, 6));
        }
    }

    /// <inheritdoc />
    public async ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await Writer.WriteAsync(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT INTO audit_checkpoints(tree_size, root, time, key_id, public_key, jobs_digest, signature) VALUES ($n, $r, $t, $k, $p, $j, $s)";
            cmd.Parameters.AddWithValue("$n", checkpoint.TreeSize);
            cmd.Parameters.AddWithValue("$r", checkpoint.Root);
            cmd.Parameters.AddWithValue("$t", checkpoint.Time.ToUnixTimeMilliseconds());
            cmd.Parameters.AddWithValue("$k", checkpoint.KeyId);
            cmd.Parameters.AddWithValue("$p", checkpoint.PublicKey);
            cmd.Parameters.AddWithValue("$j", (object?)checkpoint.JobsDigest ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$s", checkpoint.Signature);
            return cmd.ExecuteNonQuery();
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT tree_size, root, time, key_id, public_key, jobs_digest, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1";
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return new AuditCheckpoint
        {
            TreeSize = r.GetInt64(0), Root = (byte[])r.GetValue(1), Time = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2)), KeyId = r.GetString(3),
            PublicKey = (byte[])r.GetValue(4), JobsDigest = r.IsDBNull(5) ? null : (byte[])r.GetValue(5), Signature = (byte[])r.GetValue(6),
        };
    }
}

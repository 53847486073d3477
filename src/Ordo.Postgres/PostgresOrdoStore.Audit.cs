using System.Runtime.CompilerServices;
using Npgsql;
using Ordo.Audit;
using Ordo.Storage;

namespace Ordo.Postgres;

/// <summary>
/// The audit log on PostgreSQL. Each append's leaf is inserted into <c>audit_pending</c> in the append's own
/// transaction, in the order of an identity column (so that no append waits for another's); sealing then moves the
/// committed pending leaves, in that order, to <c>audit_leaves</c> at the next indexes of <c>audit_head</c>, which
/// serializes the sealers only. A process seals at most every <see cref="PostgresStoreOptions.AuditSealInterval"/>
/// after it commits, off the commit's path, and every read of the log's size seals first, so that a reader sees every
/// leaf committed before it asked. The perfect subtrees above the leaves are hashed the first time a proof needs
/// them, then kept (they never change), so that a proof reads O(log n) hashes once they are kept.
/// </summary>
/// <remarks>
/// The order of a job's leaves is kept: a job's next commit takes its row lock only after the previous one committed,
/// so its leaf has a higher identity and is never visible without the earlier one.
/// </remarks>
public sealed partial class PostgresOrdoStore
{
    // A definition is logged by the transaction that stores it, once, however many submissions carry it at the same time.
    private const string InsertDefinitionSql = """
        WITH d AS (
            INSERT INTO definitions(hash, workflow, version, content, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING RETURNING hash)
        INSERT INTO audit_pending(kind, subject, first_seq, last_seq, digest, hash) SELECT $6, d.hash, $7, $8, $9, $10 FROM d
        """;

    // The head's row is locked first, by its own statement, so that the move below reads the pending leaves committed
    // before it was granted (a statement's snapshot is taken when it starts).
    private const string LockHeadSql = "SELECT size FROM audit_head FOR UPDATE";

    private const string TryLockHeadSql = "SELECT size FROM audit_head FOR UPDATE SKIP LOCKED";

    private const string SealSql = """
        WITH h AS (SELECT size FROM audit_head),
        moved AS (
            DELETE FROM audit_pending WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT $1)
            RETURNING id, kind, subject, first_seq, last_seq, digest, hash),
        sealed AS (
            INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash)
            SELECT (SELECT size FROM h) + row_number() OVER (ORDER BY id) - 1, kind, subject, first_seq, last_seq, digest, hash FROM moved
            RETURNING 1)
        UPDATE audit_head SET size = size + (SELECT count(*) FROM sealed) WHERE EXISTS (SELECT 1 FROM sealed) RETURNING (SELECT count(*) FROM sealed) AS sealed
        """;

    /// <summary>How many pending leaves one sealing transaction moves at most.</summary>
    private const int SealBatch = 10_000;

    private int _sealing;
    private int _sealWanted;
    private long _lastSealTicks;
    private Task _backgroundSeal = Task.CompletedTask;

    private static void AddDefinition(NpgsqlBatch batch, DefinitionRecord definition, long createdAtMs)
    {
        var leaf = AuditLeaf.ForDefinition(definition.Hash, definition.Content);
        batch.BatchCommands.Add(Sql.Command(InsertDefinitionSql,
            Sql.Text(definition.Hash), Sql.Text(definition.Workflow), Sql.Int(definition.Version), Sql.Bytes(definition.Content), Sql.Long(createdAtMs),
            Sql.Int((int)leaf.Kind), Sql.Long(leaf.FirstSeq), Sql.Long(leaf.LastSeq), Sql.Bytes(leaf.Digest), Sql.Bytes(leaf.Hash())));
    }

    /// <summary>
    /// Moves every committed pending leaf to the log, in order: waiting for a sealer of another process when there is
    /// one (<paramref name="wait"/>), or else leaving the work to it.
    /// </summary>
    /// <returns>False when, not waiting, it left the work to another sealer.</returns>
    private async Task<bool> SealAsync(bool wait, CancellationToken cancellationToken)
    {
        // With nothing to seal nothing is written (locking the head would cost a write and a flush): a process whose
        // writes appended nothing (lease renewals) or whose leaves another process sealed costs one read.
        var pending = await ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT EXISTS (SELECT 1 FROM audit_pending)");
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
        }, cancellationToken).ConfigureAwait(false);
        if (!pending) return true;

        try
        {
            return await SealCoreAsync(wait, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (wait && e.SqlState is "42501" or "25006")
        {
            // A role that may only read (or a standby) cannot seal: it reads the log as sealed so far, and the leaves
            // still pending are sealed by the next process that commits.
            return false;
        }
        catch (PostgresException e) when (wait && e.SqlState is "23505" or "23502")
        {
            // The head no longer matches the leaves (lowered: the next index is taken; deleted: there is none): nothing
            // can be sealed until it is put back, and the pending leaves stay pending, durably. A reader reads the log as
            // sealed so far; the size it reads names the head (HeadAsync).
            return false;
        }
    }

    private async Task<bool> SealCoreAsync(bool wait, CancellationToken cancellationToken)
    {

        long moved;
        do
        {
            moved = await WriteAsync(async c =>
            {
                try
                {
                    await using var batch = new NpgsqlBatch(c);
                    batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
                    batch.BatchCommands.Add(new NpgsqlBatchCommand(wait ? LockHeadSql : TryLockHeadSql));
                    if (!wait)
                    {
                        // Only when the lock was granted does the move run: one more round trip, off every commit's path.
                        await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                        var locked = await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                        await r.DisposeAsync().ConfigureAwait(false);
                        if (!locked)
                        {
                            await ExecAsync(c, "COMMIT", cancellationToken).ConfigureAwait(false);
                            return -1L;
                        }

                        batch.BatchCommands.Clear();
                    }

                    batch.BatchCommands.Add(Sql.Command(SealSql, Sql.Int(SealBatch)));
                    batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                    long count = 0;
                    await using (var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                    {
                        do
                        {
                            if (r.FieldCount == 1 && r.GetName(0) == "sealed" && await r.ReadAsync(cancellationToken).ConfigureAwait(false)) count = r.GetInt64(0);
                        }
                        while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
                    }

                    return count;
                }
                catch
                {
                    await RollbackQuietlyAsync(c).ConfigureAwait(false);
                    throw;
                }
            }, cancellationToken, appends: false).ConfigureAwait(false);
        }
        while (moved == SealBatch);
        return moved >= 0;
    }

    /// <summary>After a write: makes sure a background seal of this process runs, at most once per interval, until no write asked for one.</summary>
    private void SealSoon()
    {
        Volatile.Write(ref _sealWanted, 1);
        if (Interlocked.CompareExchange(ref _sealing, 1, 0) != 0) return;
        _backgroundSeal = Task.Run(SealInBackgroundAsync);
    }

    private async Task SealInBackgroundAsync()
    {
        var time = _options.TimeProvider;
        var token = _disposing.Token;
        try
        {
            do
            {
                while (Interlocked.Exchange(ref _sealWanted, 0) == 1)
                {
                    var wait = _options.AuditSealInterval - time.GetElapsedTime(_lastSealTicks);
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, time, token).ConfigureAwait(false);
                    _lastSealTicks = time.GetTimestamp();
                    try
                    {
                        // Another process sealing now may have missed this one's newest leaves: try again after it.
                        if (!await SealAsync(wait: false, token).ConfigureAwait(false)) Volatile.Write(ref _sealWanted, 1);
                    }
                    catch (Exception e) when (e is NpgsqlException or StoreUnavailableException or InvalidOperationException && !token.IsCancellationRequested)
                    {
                        // Left pending (durably): the next write, or the next reader of the log, seals it.
                    }
                }

                Volatile.Write(ref _sealing, 0);
            }
            // A write that came after the last look and found this loop running left its wish: take it up again.
            while (Volatile.Read(ref _sealWanted) == 1 && Interlocked.CompareExchange(ref _sealing, 1, 0) == 0);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || token.IsCancellationRequested)
        {
            Volatile.Write(ref _sealing, 0);
        }
    }

    /// <inheritdoc />
    /// <exception cref="InvalidDataException">The log's head (<c>audit_head</c>) was deleted, or says fewer leaves than <c>audit_leaves</c> holds.</exception>
    public async ValueTask<long> GetAuditLogSizeAsync(CancellationToken cancellationToken = default)
    {
        await SealAsync(wait: true, cancellationToken).ConfigureAwait(false);
        return await ReadAsync(c => HeadAsync(c, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The log's size as its head records it, checked against the leaves: a head that was deleted or lowered (which
    /// would make the next seal reuse taken indexes) is named. A head above the leaves is what deleting the newest
    /// leaves leaves behind: a full check names it by the leaves that are missing.
    /// </summary>
    private static async Task<long> HeadAsync(NpgsqlConnection c, CancellationToken cancellationToken)
    {
        await using var cmd = Sql.Command(c, "SELECT (SELECT count(*) FROM audit_head), (SELECT max(size) FROM audit_head), (SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves)");
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await r.ReadAsync(cancellationToken).ConfigureAwait(false);
        var rows = r.GetInt64(0);
        var leaves = r.GetInt64(2);
        if (rows != 1 || r.IsDBNull(1))
        {
            throw new InvalidDataException($"the audit log's head (table audit_head) has {rows} rows where it has one: it was altered; audit_leaves holds {leaves} leaves, and no pending leaf is sealed until the head is put back (one row, id 1, size {leaves})");
        }

        var size = r.GetInt64(1);
        if (size < leaves)
        {
            throw new InvalidDataException($"the audit log's head (table audit_head) records {size} leaves but audit_leaves holds {leaves}: it was lowered; no pending leaf is sealed until it is put back (size {leaves})");
        }

        return size;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<byte[]?>> ReadAuditNodesAsync(IReadOnlyList<MerkleNodeId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        await SealAsync(wait: true, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<IReadOnlyList<byte[]?>>(async c =>
        {
            var size = await HeadAsync(c, cancellationToken).ConfigureAwait(false);

            var computed = new Dictionary<MerkleNodeId, byte[]?>();
            var result = new byte[]?[ids.Count];
            for (var i = 0; i < ids.Count; i++) result[i] = await NodeAsync(c, ids[i], size, computed, cancellationToken).ConfigureAwait(false);
            var kept = computed.Where(kv => kv.Key.Level > 0 && kv.Value is not null).ToList();
            if (kept.Count > 0)
            {
                await using var keep = Sql.Command(c, "INSERT INTO audit_nodes(level, idx, hash) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
                    new NpgsqlParameter { Value = kept.Select(k => k.Key.Level).ToArray() },
                    new NpgsqlParameter { Value = kept.Select(k => k.Key.Index).ToArray() },
                    new NpgsqlParameter { Value = kept.Select(k => k.Value!).ToArray() });
                await keep.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return result;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A perfect subtree's hash: a leaf's, a kept one, or hashed from its two halves (and kept after).</summary>
    private static async Task<byte[]?> NodeAsync(NpgsqlConnection c, MerkleNodeId id, long size, Dictionary<MerkleNodeId, byte[]?> computed, CancellationToken cancellationToken)
    {
        if (id.FirstLeaf + id.Leaves > size) return null;
        if (computed.TryGetValue(id, out var known)) return known;
        byte[]? hash;
        if (id.Level == 0)
        {
            await using var cmd = Sql.Command(c, "SELECT hash FROM audit_leaves WHERE idx = $1", Sql.Long(id.Index));
            hash = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
            return hash;
        }

        await using (var cmd = Sql.Command(c, "SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2", Sql.Int(id.Level), Sql.Long(id.Index)))
        {
            hash = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
        }

        if (hash is not null) return hash;
        var left = await NodeAsync(c, new MerkleNodeId(id.Level - 1, id.Index * 2), size, computed, cancellationToken).ConfigureAwait(false);
        var right = await NodeAsync(c, new MerkleNodeId(id.Level - 1, (id.Index * 2) + 1), size, computed, cancellationToken).ConfigureAwait(false);
        hash = left is null || right is null ? null : MerkleHash.Node(left, right);
        computed[id] = hash;
        return hash;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<MerkleNode> ReadStoredAuditNodesAsync(long size, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // No seal first: the subtrees within a size read before never change.
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        // A row whose level or index no subtree can have is never read by a proof: left out.
        await using var cmd = Sql.Command(c, """
            SELECT level, idx, hash FROM audit_nodes
            WHERE level BETWEEN 1 AND 40 AND idx >= 0 AND ((idx + 1) << level) <= $1
            ORDER BY ((idx + 1) << level), level
            """, Sql.Long(size));
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return new MerkleNode(new MerkleNodeId(r.GetInt32(0), r.GetInt64(1)), r.IsDBNull(2) ? [] : (byte[])r.GetValue(2));
        }
    }

    /// <inheritdoc />
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesAsync(long from, long to, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("SELECT idx, kind, subject, first_seq, last_seq, digest, hash FROM audit_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", [Sql.Long(from), Sql.Long(to)], cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// Leaves still pending (a reader that may not seal leaves them so) come after the sealed ones, at the indexes they
    /// would take if sealed now.
    /// </remarks>
    public IAsyncEnumerable<StoredAuditLeaf> ReadAuditLeavesOfAsync(string subject, CancellationToken cancellationToken = default)
        => ReadLeavesAsync("""
            SELECT idx, kind, subject, first_seq, last_seq, digest, hash FROM audit_leaves WHERE subject = $1
            UNION ALL
            SELECT coalesce((SELECT max(size) FROM audit_head), 0) + p.n - 1, p.kind, p.subject, p.first_seq, p.last_seq, p.digest, p.hash
            FROM (SELECT *, row_number() OVER (ORDER BY id) AS n FROM audit_pending) p WHERE p.subject = $1
            ORDER BY 1
            """, [Sql.Text(subject)], cancellationToken);

    private async IAsyncEnumerable<StoredAuditLeaf> ReadLeavesAsync(string sql, NpgsqlParameter[] parameters, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await SealAsync(wait: true, cancellationToken).ConfigureAwait(false);
        await using var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Sql.Command(c, sql, parameters);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var kind = (AuditLeafKind)r.GetInt32(1);
            if (kind is not (AuditLeafKind.Events or AuditLeafKind.Definition))
            {
                throw new InvalidDataException($"leaf {r.GetInt64(0)} of the audit log has an unknown kind {(int)kind}");
            }

            yield return new StoredAuditLeaf(r.GetInt64(0), new AuditLeaf(kind, r.GetString(2), r.GetInt64(3), r.GetInt64(4), (byte[])r.GetValue(5)), (byte[])r.GetValue(6));
        }
    }

    /// <inheritdoc />
    public async ValueTask AddAuditCheckpointAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await WriteAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "INSERT INTO audit_checkpoints(tree_size, root, time, key_id, public_key, jobs_digest, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                Sql.Long(checkpoint.TreeSize), Sql.Bytes(checkpoint.Root), Sql.Long(checkpoint.Time.ToUnixTimeMilliseconds()), Sql.Text(checkpoint.KeyId),
                Sql.Bytes(checkpoint.PublicKey), Sql.Bytes(checkpoint.JobsDigest), Sql.Bytes(checkpoint.Signature));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<AuditCheckpoint?> GetLatestAuditCheckpointAsync(CancellationToken cancellationToken = default)
        => ReadAsync(async c =>
        {
            await using var cmd = Sql.Command(c, "SELECT tree_size, root, time, key_id, public_key, jobs_digest, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1");
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
            return new AuditCheckpoint
            {
                TreeSize = r.GetInt64(0), Root = (byte[])r.GetValue(1), Time = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2)), KeyId = r.GetString(3),
                PublicKey = (byte[])r.GetValue(4), JobsDigest = r.IsDBNull(5) ? null : (byte[])r.GetValue(5), Signature = (byte[])r.GetValue(6),
            };
        }, cancellationToken);
}

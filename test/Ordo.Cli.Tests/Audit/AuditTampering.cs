using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Events;
using Ordo.Sqlite;

namespace Ordo.Cli.Tests.Audit;

/// <summary>
/// What someone who can write the database file, and knows its format, does to it with plain SQL and a short script:
/// no Ordo code runs but the hashing anyone can reimplement (the event chain, the Merkle tree).
/// </summary>
internal static class AuditTampering
{
    public static SqliteConnection Open(string db)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    /// <summary>Every stored definition's hash and bytes.</summary>
    private static List<(string Hash, byte[] Content)> Definitions(SqliteConnection c)
    {
        var rows = new List<(string Hash, byte[] Content)>();
        using var cmd = Command(c, "SELECT hash, content FROM definitions");
        using var r = cmd.ExecuteReader();
        while (r.Read()) rows.Add((r.GetString(0), (byte[])r.GetValue(1)));
        return rows;
    }

    /// <summary>Changes the workflow file inside a stored definition (its hash, the row's key, stays as it was).</summary>
    public static void RewriteDefinition(string db, Func<string, string> change)
    {
        using var c = Open(db);
        foreach (var (hash, content) in Definitions(c))
        {
            var bundle = JsonNode.Parse(content)!.AsObject();
            var entry = bundle["entry"]!.GetValue<string>();
            var files = bundle["files"]!.AsObject();
            var before = files[entry]!.GetValue<string>();
            var after = change(before);
            Assert.NotEqual(before, after);
            files[entry] = after;
            Assert.Equal(1, Execute(c, "UPDATE definitions SET content = $c WHERE hash = $h", ("$c", Encoding.UTF8.GetBytes(bundle.ToJsonString())), ("$h", hash)));
        }
    }

    /// <summary>Points every stored definition at another root folder (which its content hash leaves out).</summary>
    public static void MoveDefinitionRoots(string db, string root)
    {
        using var c = Open(db);
        foreach (var (hash, content) in Definitions(c))
        {
            var bundle = JsonNode.Parse(content)!.AsObject();
            Assert.NotNull(bundle["root"]);
            bundle["root"] = root;
            Assert.Equal(1, Execute(c, "UPDATE definitions SET content = $c WHERE hash = $h", ("$c", Encoding.UTF8.GetBytes(bundle.ToJsonString())), ("$h", hash)));
        }
    }

    /// <summary>Replaces text in every stored definition's bytes, as a sed over the column would.</summary>
    public static void ReplaceInDefinitions(string db, string from, string to)
    {
        using var c = Open(db);
        var rows = new List<(string Hash, string Content)>();
        using (var cmd = Command(c, "SELECT hash, content FROM definitions"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) rows.Add((r.GetString(0), Encoding.UTF8.GetString((byte[])r.GetValue(1))));
        }

        foreach (var (hash, content) in rows)
        {
            Assert.Contains(from, content, StringComparison.Ordinal);
            Execute(c, "UPDATE definitions SET content = $c WHERE hash = $h", ("$c", Encoding.UTF8.GetBytes(content.Replace(from, to, StringComparison.Ordinal))), ("$h", hash));
        }
    }

    /// <summary>Deletes every row of a job.</summary>
    public static void DeleteJob(string db, string jobId)
    {
        using var c = Open(db);
        var key = Key(c, jobId);
        foreach (var table in new[] { "events", "snapshots", "work_items", "jobs" })
        {
            Execute(c, $"DELETE FROM {table} WHERE job_key = $k", ("$k", key));
        }
    }

    /// <summary>Deletes a job's newest events and points its row at the event left last, so that its own chain is whole.</summary>
    public static void DeleteNewestEvents(string db, string jobId, int count)
    {
        using var c = Open(db);
        var key = Key(c, jobId);
        var last = Scalar<long>(c, "SELECT max(seq) FROM events WHERE job_key = $k", ("$k", key));
        Assert.Equal(count, Execute(c, "DELETE FROM events WHERE job_key = $k AND seq > $s", ("$k", key), ("$s", last - count)));
        var head = Scalar<byte[]>(c, "SELECT hash FROM events WHERE job_key = $k AND seq = $s", ("$k", key), ("$s", last - count));
        Execute(c, "UPDATE jobs SET last_seq = $s, head_hash = $h WHERE job_key = $k", ("$k", key), ("$s", last - count), ("$h", head));
    }

    /// <summary>Alters one event's payload, then recomputes the hash chain from it on and the job's head: the 30-line script.</summary>
    public static async Task RewriteAndResealAsync(string db, string jobId, string from, string to)
    {
        long key;
        using (var c = Open(db))
        {
            key = Key(c, jobId);
            Assert.Equal(1, Execute(c, "UPDATE events SET payload = replace(payload, $from, $to) WHERE job_key = $k AND seq = (SELECT min(seq) FROM events WHERE job_key = $k AND instr(payload, $from) > 0)",
                ("$k", key), ("$from", from), ("$to", to)));
        }

        var events = new List<EventEnvelope>();
        await using (var store = new SqliteOrdoStore(new SqliteStoreOptions { Path = db, ReadOnly = true }))
        {
            await foreach (var e in store.ReadEventsAsync(new JobId(jobId))) events.Add(e);
        }

        using var w = Open(db);
        var prev = EventChain.GenesisHash.ToArray();
        foreach (var e in events)
        {
            var hash = EventChain.ComputeHash(prev, e);
            Execute(w, "UPDATE events SET hash = $h WHERE job_key = $k AND seq = $s", ("$h", hash), ("$k", key), ("$s", e.Seq));
            prev = hash;
        }

        Execute(w, "UPDATE jobs SET head_hash = $h WHERE job_key = $k", ("$h", prev), ("$k", key));
    }

    /// <summary>Swaps the ids of two jobs' rows (each keeps the other's events).</summary>
    public static void SwapJobs(string db, string first, string second)
    {
        using var c = Open(db);
        using var tx = c.BeginTransaction();
        Execute(c, "UPDATE jobs SET job_id = 'swapping' WHERE job_id = $a", ("$a", first));
        Execute(c, "UPDATE jobs SET job_id = $a WHERE job_id = $b", ("$a", first), ("$b", second));
        Execute(c, "UPDATE jobs SET job_id = $b WHERE job_id = 'swapping'", ("$b", second));
        tx.Commit();
    }

    /// <summary>
    /// Removes a job's leaves from the audit log too and rebuilds the whole tree over the leaves left (renumbered), so
    /// that the stored log is consistent with itself and as long as it was: only a checkpoint kept elsewhere can tell.
    /// </summary>
    public static void RemoveFromAuditLogAndRebuild(string db, string jobId)
    {
        using var c = Open(db);
        using var tx = c.BeginTransaction();
        var size = Scalar<long>(c, "SELECT count(*) FROM audit_leaves");
        Execute(c, "DELETE FROM audit_leaves WHERE subject = $s", ("$s", jobId));
        var leaves = new List<(long Index, AuditLeaf Leaf)>();
        using (var cmd = Command(c, "SELECT idx, kind, subject, first_seq, last_seq, digest FROM audit_leaves ORDER BY idx"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) leaves.Add((r.GetInt64(0), new AuditLeaf((AuditLeafKind)r.GetInt32(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), (byte[])r.GetValue(5))));
        }

        // Padded back to its old size (with copies of the first leaf, a definition), so that it is not merely shorter.
        while (leaves.Count < size) leaves.Add(leaves[0]);

        Execute(c, "DELETE FROM audit_leaves");
        Execute(c, "DELETE FROM audit_nodes");
        var frontier = new MerkleFrontier();
        var completed = new List<MerkleNode>();
        foreach (var (_, leaf) in leaves)
        {
            var hash = leaf.Hash();
            Execute(c, "INSERT INTO audit_leaves(idx, kind, subject, first_seq, last_seq, digest, hash) VALUES ($i, $k, $s, $f, $l, $d, $h)",
                ("$i", frontier.Size), ("$k", (int)leaf.Kind), ("$s", leaf.Subject), ("$f", leaf.FirstSeq), ("$l", leaf.LastSeq), ("$d", leaf.Digest), ("$h", hash));
            completed.Clear();
            frontier.Append(hash, completed);
            foreach (var node in completed.Where(n => n.Id.Level > 0))
            {
                Execute(c, "INSERT INTO audit_nodes(level, idx, hash) VALUES ($l, $i, $h)", ("$l", node.Id.Level), ("$i", node.Id.Index), ("$h", node.Hash));
            }
        }

        tx.Commit();
    }

    public static long Key(SqliteConnection c, string jobId) => Scalar<long>(c, "SELECT job_key FROM jobs WHERE job_id = $id", ("$id", jobId));

    public static T Scalar<T>(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = Command(c, sql, args);
        return (T)cmd.ExecuteScalar()!;
    }

    public static int Execute(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = Command(c, sql, args);
        return cmd.ExecuteNonQuery();
    }

    private static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
        return cmd;
    }
}

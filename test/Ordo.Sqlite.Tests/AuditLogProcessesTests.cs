using Microsoft.Data.Sqlite;
using Ordo.Audit;
using Ordo.Storage;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Sqlite.Tests;

/// <summary>
/// Two stores on one file (as two processes would open it): each appends to the frontier it kept without reading the
/// log's size, and learns that the other appended when its next leaf's index is taken.
/// </summary>
public sealed class AuditLogProcessesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ordo-audit-procs-").FullName;

    private string Db => Path.Combine(_dir, "ordo.db");

    [Fact]
    public async Task TwoStoresAppendingInTurn_KeepOneDenseLog_WhoseKeptSubtreesMatchItsLeaves()
    {
        await using var a = new SqliteOrdoStore(Db);
        await using var b = new SqliteOrdoStore(Db);
        await a.InitializeAsync();
        await b.InitializeAsync();
        var ids = Enumerable.Range(0, 4).Select(_ => JobId.New(T0)).ToList();
        for (var i = 0; i < ids.Count; i++) await (i % 2 == 0 ? a : b).SubmitAsync(Job(ids[i], T0, items: 0));

        // Runs of different lengths on each side, so that each store's kept frontier is stale at its next write, and
        // enough leaves for kept subtrees (16 leaves and up) to be written by both.
        for (var round = 0; round < 12; round++)
        {
            var store = round % 2 == 0 ? a : b;
            for (var k = 0; k <= round % 3; k++)
            {
                foreach (var id in ids)
                {
                    var state = await StateAsync(store, id);
                    Assert.Equal(CommitOutcome.Committed, (await store.CommitAsync(Commit(state, [Succeeded($"r{round}k{k}", T0)]))).Outcome);
                }
            }

            // Reading the size seals what this store's commits left waiting, one leaf per commit, at the log's end.
            await store.GetAuditLogSizeAsync();
        }

        var size = await a.GetAuditLogSizeAsync();
        Assert.Equal(size, await b.GetAuditLogSizeAsync());
        var leaves = await ToListAsync(a.ReadAuditLeavesAsync(0, size));
        Assert.Equal(Enumerable.Range(0, (int)size).Select(i => (long)i), leaves.Select(l => l.Index));
        var frontier = new MerkleFrontier();
        var completed = new Dictionary<MerkleNodeId, byte[]>();
        foreach (var l in leaves)
        {
            var nodes = new List<MerkleNode>();
            frontier.Append(l.Leaf.Hash(), nodes);
            foreach (var n in nodes) completed[n.Id] = n.Hash;
        }

        var kept = await ToListAsync(b.ReadStoredAuditNodesAsync(size));
        Assert.NotEmpty(kept);
        Assert.All(kept, n => Assert.Equal(completed[n.Id], n.Hash));
        Assert.Equal(frontier.Root(), (await AuditLog.GetHeadAsync(b)).Root);
        foreach (var id in ids)
        {
            var proof = await AuditLog.ProveJobAsync(a, id, size);
            Assert.True(proof!.Verify(frontier.Root()));
        }
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

using Ordo.Audit;
using Ordo.Events;
using Ordo.State;
using static Ordo.Storage.Conformance.StoreFixtures;

namespace Ordo.Storage.Conformance;

/// <summary>The audit log's part of the contract: a leaf per append and per new definition, in the same write, and proofs that hold.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task AuditLog_SubmitClaimAndCommit_EachAppendALeafThatRecordsTheirEvents()
    {
        var id = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        var afterSubmit = await AuditLog.GetHeadAsync(Store);
        var item = Assert.Single(await Store.ClaimAsync(Claim("w1", T0)));
        var state = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(state, [Succeeded("s1", T0)], ack: item.Lease, status: JobStatus.Running))).Outcome);

        var leaves = await ToListAsync(Store.ReadAuditLeavesAsync(0, long.MaxValue));
        Assert.Equal(2, afterSubmit.Size);
        Assert.Equal(
            [(AuditLeafKind.Definition, "sha256:def", 0L, 0L), (AuditLeafKind.Events, id.Value, 1L, 2L), (AuditLeafKind.Events, id.Value, 3L, 3L), (AuditLeafKind.Events, id.Value, 4L, 4L)],
            leaves.Select(l => (l.Leaf.Kind, l.Leaf.Subject, l.Leaf.FirstSeq, l.Leaf.LastSeq)));
        Assert.Equal([0L, 1L, 2L, 3L], leaves.Select(l => l.Index));
        var events = await ToListAsync(Store.ReadEventsAsync(id));
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(new byte[] { 1, 2, 3 }), leaves[0].Leaf.Digest);
        Assert.Equal(events[1].Hash, leaves[1].Leaf.Digest);
        Assert.Equal(events[3].Hash, leaves[3].Leaf.Digest);
        Assert.All(leaves, l => Assert.Equal(l.Leaf.Hash(), l.Hash));

        // The stored subtrees give the root of the leaves, prove each leaf, and prove the log extends what it was.
        var head = await AuditLog.GetHeadAsync(Store);
        Assert.Equal(4, head.Size);
        var frontier = new MerkleFrontier();
        foreach (var l in leaves) frontier.Append(l.Hash, []);
        Assert.Equal(frontier.Root(), head.Root);
        foreach (var l in leaves)
        {
            var path = await AuditLog.ProveInclusionAsync(Store, l.Index, head.Size);
            Assert.True(MerkleProofs.VerifyInclusion(l.Index, head.Size, l.Leaf.Hash(), path, head.Root));
        }

        var consistency = await AuditLog.ProveConsistencyAsync(Store, afterSubmit.Size, head.Size);
        Assert.True(MerkleProofs.VerifyConsistency(afterSubmit.Size, head.Size, consistency, afterSubmit.Root, head.Root));
        var job = await AuditLog.ProveJobAsync(Store, id, head.Size);
        Assert.NotNull(job);
        Assert.Equal(4, job!.Leaf.Leaf.LastSeq);
        Assert.True(job.Verify(head.Root));
        Assert.Equal([1L, 2L, 3L], (await ToListAsync(Store.ReadAuditLeavesOfAsync(id.Value))).Select(l => l.Index));
    }

    [Fact]
    public async Task AuditCheck_WhileJobsCommit_ReportsNoJobBroken()
    {
        var ids = Enumerable.Range(0, 4).Select(_ => JobId.New(T0)).ToList();
        foreach (var id in ids) await Store.SubmitAsync(Job(id, T0, items: 0));
        using var stop = new CancellationTokenSource();
        var writers = ids.Select(id => Task.Run(async () =>
        {
            for (var k = 0; k < 300 && !stop.IsCancellationRequested; k++)
            {
                Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(await StateAsync(Store, id), [Succeeded($"s{k}", T0)]))).Outcome);
            }
        })).ToList();

        // Each job moves between the reads of a check (its record, its events, the log's leaves): none may be reported
        // for that. The fixture's definitions are not real bundles, which the check reports as such.
        var checks = 0;
        try
        {
            while (!writers.All(w => w.IsCompleted) || checks == 0)
            {
                var report = await AuditChecker.CheckAllAsync(Store, null);
                checks++;
                foreach (var job in report.Jobs)
                {
                    Assert.All(job.Problems, p => Assert.Contains("definition", p, StringComparison.Ordinal));
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }

        Assert.True(checks > 0);
    }

    [Fact]
    public async Task AuditLog_RefusedCommitsAndAKnownDefinition_AppendNothing()
    {
        var id = JobId.New(T0);
        var other = JobId.New(T0);
        await Store.SubmitAsync(Job(id, T0));
        await Store.SubmitAsync(Job(other, T0));
        Assert.Equal(3, await Store.GetAuditLogSizeAsync());

        var stale = await StateAsync(Store, id);
        Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(Commit(stale, [Succeeded("winner", T0)]))).Outcome);
        Assert.Equal(CommitOutcome.Conflict, (await Store.CommitAsync(Commit(stale, [Succeeded("late", T0)]))).Outcome);
        var refused = Commit(stale, [Succeeded("late", T0)]);
        var unrelated = Commit(await StateAsync(Store, other), [Succeeded("o1", T0)], enqueue: [Work(new StepRef("o2", 1, 1), T0)]);
        var results = await Task.WhenAll(Store.CommitInOrder([refused, unrelated]));
        Assert.Equal([CommitOutcome.Conflict, CommitOutcome.Committed], results.Select(r => r.Outcome));

        var leaves = await ToListAsync(Store.ReadAuditLeavesAsync(0, long.MaxValue));
        Assert.Equal([(AuditLeafKind.Definition, 0L), (AuditLeafKind.Events, 2L), (AuditLeafKind.Events, 2L), (AuditLeafKind.Events, 3L), (AuditLeafKind.Events, 3L)],
            leaves.Select(l => (l.Leaf.Kind, l.Leaf.LastSeq)));
        Assert.Equal([id.Value, other.Value, id.Value, other.Value], leaves.Skip(1).Select(l => l.Leaf.Subject));
        var head = await AuditLog.GetHeadAsync(Store);
        var frontier = new MerkleFrontier();
        foreach (var l in leaves) frontier.Append(l.Leaf.Hash(), []);
        Assert.Equal(frontier.Root(), head.Root);
    }

    [Fact]
    public async Task AuditLog_ManyConcurrentCommits_KeepsOneConsistentTree()
    {
        var ids = Enumerable.Range(0, 12).Select(_ => JobId.New(T0)).ToList();
        foreach (var id in ids) await Store.SubmitAsync(Job(id, T0));
        var before = await AuditLog.GetHeadAsync(Store);
        await Task.WhenAll(ids.Select(id => Task.Run(async () =>
        {
            var state = await StateAsync(Store, id);
            for (var i = 0; i < 5; i++)
            {
                var commit = Commit(state, [Succeeded("s" + i, T0.AddMilliseconds(i))]);
                Assert.Equal(CommitOutcome.Committed, (await Store.CommitAsync(commit)).Outcome);
                state = JobStateReducer.Apply(state, commit.Events);
            }
        })));

        var head = await AuditLog.GetHeadAsync(Store);
        Assert.Equal(before.Size + (12 * 5), head.Size);
        var leaves = await ToListAsync(Store.ReadAuditLeavesAsync(0, head.Size));
        var frontier = new MerkleFrontier();
        foreach (var l in leaves) frontier.Append(l.Leaf.Hash(), []);
        Assert.Equal(head.Root, frontier.Root());
        var consistency = await AuditLog.ProveConsistencyAsync(Store, before.Size, head.Size);
        Assert.True(MerkleProofs.VerifyConsistency(before.Size, head.Size, consistency, before.Root, head.Root));
        foreach (var id in ids)
        {
            var proof = await AuditLog.ProveJobAsync(Store, id, head.Size);
            Assert.Equal(7, proof!.Leaf.Leaf.LastSeq);
            Assert.True(proof.Verify(head.Root));
        }
    }

    [Fact]
    public async Task AuditCheckpoints_TheLatestRecordedIsReturned()
    {
        Assert.Null(await Store.GetLatestAuditCheckpointAsync());
        var first = new AuditCheckpoint
        {
            TreeSize = 3, Root = Enumerable.Repeat((byte)7, 32).ToArray(), Time = T0, KeyId = "sha256:k", PublicKey = [1, 2], Signature = [3, 4], JobsDigest = null,
        };
        var second = first with { TreeSize = 9, Time = T0.AddMinutes(1), JobsDigest = Enumerable.Repeat((byte)9, 32).ToArray() };
        await Store.AddAuditCheckpointAsync(first);
        await Store.AddAuditCheckpointAsync(second);

        var latest = await Store.GetLatestAuditCheckpointAsync();
        Assert.NotNull(latest);
        Assert.Equal(9, latest!.TreeSize);
        Assert.Equal(second.Root, latest.Root);
        Assert.Equal(second.Time, latest.Time);
        Assert.Equal("sha256:k", latest.KeyId);
        Assert.Equal(second.PublicKey, latest.PublicKey);
        Assert.Equal(second.Signature, latest.Signature);
        Assert.Equal(second.JobsDigest, latest.JobsDigest);
    }
}

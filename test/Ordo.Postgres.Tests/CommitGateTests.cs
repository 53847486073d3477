using Ordo.State;
using Ordo.Storage;

namespace Ordo.Postgres.Tests;

/// <summary>The slots of a process's commits: a lone commit goes at once, the ones that find every slot taken wait and go together.</summary>
public sealed class CommitGateTests
{
    private static JobCommit Commit(string job) => new() { JobId = new JobId(job), ExpectedSeq = 1, ExpectedHeadHash = new byte[32], Events = [], Status = JobStatus.Running };

    [Fact]
    public void CommitsUpToTheSlots_GoAtOnce_TheNextOnesWait()
    {
        var gate = new CommitGate(slots: 2, maxGroup: 10);
        Assert.Null(gate.Enter(Commit("a")));
        Assert.Null(gate.Enter(Commit("b")));
        var c = gate.Enter(Commit("c"));
        var d = gate.Enter(Commit("d"));
        Assert.NotNull(c);
        Assert.NotNull(d);
        Assert.False(c.IsCompleted);

        // The first slot given back takes every waiting commit, oldest first, and stays taken for them.
        var group = gate.Leave();
        Assert.NotNull(group);
        Assert.Equal(["c", "d"], group.Select(w => w.Commit.JobId.Value));
        Assert.NotNull(gate.Enter(Commit("e")));

        // The other slot takes what waited since; then both slots free up, and a new commit goes at once again.
        Assert.Equal(["e"], gate.Leave()!.Select(w => w.Commit.JobId.Value));
        Assert.Null(gate.Leave());
        Assert.Null(gate.Leave());
        Assert.Null(gate.Enter(Commit("f")));
    }

    [Fact]
    public void AGroup_HoldsAtMostMaxGroupCommits_TheRestGoInTheNext()
    {
        var gate = new CommitGate(slots: 1, maxGroup: 3);
        Assert.Null(gate.Enter(Commit("first")));
        for (var i = 0; i < 7; i++) Assert.NotNull(gate.Enter(Commit("j" + i)));
        Assert.Equal(["j0", "j1", "j2"], gate.Leave()!.Select(w => w.Commit.JobId.Value));
        Assert.Equal(["j3", "j4", "j5"], gate.Leave()!.Select(w => w.Commit.JobId.Value));
        Assert.Equal(["j6"], gate.Leave()!.Select(w => w.Commit.JobId.Value));
        Assert.Null(gate.Leave());
        Assert.Null(gate.Enter(Commit("again")));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 0)]
    public void NoSlotsOrEmptyGroups_AreRefused(int slots, int maxGroup)
        => Assert.ThrowsAny<ArgumentOutOfRangeException>(() => new CommitGate(slots, maxGroup));
}

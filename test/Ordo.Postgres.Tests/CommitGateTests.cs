namespace Ordo.Postgres.Tests;

/// <summary>The slots of a process's writes: a lone write goes at once, the ones that find every slot taken wait and go together.</summary>
public sealed class CommitGateTests
{
    /// <summary>A gate over strings ("job:n") whose writes are recorded, and whose group writes can be refused or held.</summary>
    private sealed class Writer
    {
        public readonly List<string> Alone = [];
        public readonly List<string[]> Groups = [];
        public TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Func<IReadOnlyList<string>, bool> Refuse = _ => false;

        public CommitGate<string, string> Gate(int slots, int maxGroup = 64) => new(slots, maxGroup, w => w.Split(':')[0], TogetherAsync, AloneAsync);

        private async Task<string[]?> TogetherAsync(IReadOnlyList<string> group)
        {
            lock (Groups) Groups.Add([.. group]);
            await Task.Yield();
            return Refuse(group) ? null : [.. group.Select(w => "group " + w)];
        }

        private async Task<string> AloneAsync(string work, CancellationToken cancellationToken)
        {
            lock (Alone) Alone.Add(work);
            await Release.Task;
            if (work.EndsWith('!')) throw new InvalidOperationException("refused " + work);
            return "alone " + work;
        }
    }

    [Fact]
    public void WritesUpToTheSlots_GoAtOnce_TheNextOnesWait()
    {
        var gate = new Writer().Gate(slots: 2, maxGroup: 10);
        Assert.Null(gate.Enter("a"));
        Assert.Null(gate.Enter("b"));
        var c = gate.Enter("c");
        var d = gate.Enter("d");
        Assert.NotNull(c);
        Assert.NotNull(d);
        Assert.False(c.IsCompleted);

        // The first slot given back takes every waiting write, oldest first, and stays taken for them.
        Assert.Equal(["c", "d"], gate.Leave()!.Select(w => w.Work));
        Assert.NotNull(gate.Enter("e"));

        // The other slot takes what waited since; then both slots free up, and a new write goes at once again.
        Assert.Equal(["e"], gate.Leave()!.Select(w => w.Work));
        Assert.Null(gate.Leave());
        Assert.Null(gate.Leave());
        Assert.Null(gate.Enter("f"));
    }

    [Fact]
    public void AGroup_HoldsAtMostMaxGroupWrites_TheRestGoInTheNext()
    {
        var gate = new Writer().Gate(slots: 1, maxGroup: 3);
        Assert.Null(gate.Enter("first"));
        for (var i = 0; i < 7; i++) Assert.NotNull(gate.Enter("j" + i));
        Assert.Equal(["j0", "j1", "j2"], gate.Leave()!.Select(w => w.Work));
        Assert.Equal(["j3", "j4", "j5"], gate.Leave()!.Select(w => w.Work));
        Assert.Equal(["j6"], gate.Leave()!.Select(w => w.Work));
        Assert.Null(gate.Leave());
        Assert.Null(gate.Enter("again"));
    }

    [Fact]
    public async Task WritesThatWaited_GoAsOneGroup_InTheOrderOfTheirJobs_EachJobsWritesInTheirOwn()
    {
        var writer = new Writer();
        var gate = writer.Gate(slots: 1);
        var first = gate.WriteAsync("m:0", CancellationToken.None);
        var waiting = new[] { "z:1", "b:1", "m:1", "b:2" }.Select(w => gate.WriteAsync(w, CancellationToken.None)).ToList();
        Assert.All(waiting, t => Assert.False(t.IsCompleted));
        writer.Release.SetResult();

        Assert.Equal("alone m:0", await first);
        Assert.Equal(["group z:1", "group b:1", "group m:1", "group b:2"], await Task.WhenAll(waiting));
        Assert.Equal(["b:1", "b:2", "m:1", "z:1"], Assert.Single(writer.Groups));
        Assert.Equal(4, gate.WrittenTogether);
    }

    [Fact]
    public async Task AGroupTheServerRefuses_IsWrittenOneByOne_AndOnlyTheRefusedWriteFails()
    {
        var writer = new Writer { Refuse = group => group.Any(w => w.EndsWith('!')) };
        var gate = writer.Gate(slots: 1);
        var first = gate.WriteAsync("a:0", CancellationToken.None);
        var ok = gate.WriteAsync("b:0", CancellationToken.None);
        var refused = gate.WriteAsync("c:0!", CancellationToken.None);
        var alsoOk = gate.WriteAsync("d:0", CancellationToken.None);
        writer.Release.SetResult();

        Assert.Equal("alone a:0", await first);
        Assert.Equal("alone b:0", await ok);
        Assert.Equal("refused c:0!", (await Assert.ThrowsAsync<InvalidOperationException>(() => refused)).Message);
        Assert.Equal("alone d:0", await alsoOk);
        Assert.Equal(0, gate.WrittenTogether);

        // The slot is free again: the next write goes at once.
        Assert.Equal("alone e:0", await gate.WriteAsync("e:0", CancellationToken.None));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 0)]
    public void NoSlotsOrEmptyGroups_AreRefused(int slots, int maxGroup)
        => Assert.ThrowsAny<ArgumentOutOfRangeException>(() => new Writer().Gate(slots, maxGroup));
}

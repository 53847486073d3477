using System.Threading.Channels;
using Ordo.Engine.Workers;

namespace Ordo.Tests.Engine;

/// <summary>
/// A commit leases the successors it makes ready to its own process only as far as the process can take them: a busy
/// process leaves the rest in the queue, where any process's idle workers find them, instead of holding them leased.
/// </summary>
public sealed class InlineLeaseTests
{
    [Theory]
    [InlineData(16, 0, 16)] // nothing waits: up to one claim batch (the committing worker goes on with the first)
    [InlineData(16, 10, 6)] // ten leased steps wait for this process's workers already: six more at most
    [InlineData(16, 16, 1)] // a claim batch waits: only the one its committing worker goes on with
    [InlineData(16, 125, 1)]
    [InlineData(1, 0, 1)]
    public void ACommit_LeasesToItsProcess_OneClaimBatchLessWhatWaitsAlready_AtLeastTheOneItGoesOnWith(int claimBatch, int waiting, int expected)
        => Assert.Equal(expected, WorkerRun.InlineLimit(claimBatch, waiting, stopping: false));

    [Fact]
    public void AStoppingRun_LeasesNothingToItself()
        => Assert.Equal(0, WorkerRun.InlineLimit(16, 0, stopping: true));

    private static WorkerRun Run(int workers) => new(null!, Channel.CreateUnbounded<Dispatched>(), workers, untilIdle: false);

    [Fact]
    public void SubmissionsAtOnce_ArePromisedOneFreeWorkerEach_NoMore()
    {
        using var run = Run(workers: 2);
        Assert.True(run.TryPromiseWorker());
        Assert.True(run.TryPromiseWorker());
        Assert.False(run.TryPromiseWorker());
        Assert.False(run.HasFreeWorker);

        // Handed over (or never leased): the promise ends and the worker counts as free again until the channel holds it.
        run.Fulfilled(1);
        Assert.True(run.HasFreeWorker);
        Assert.True(run.TryPromiseWorker());
    }

    [Fact]
    public void CommitsAtOnce_ShareOneClaimBatch_EachKeepingTheOneItsWorkerGoesOnWith()
    {
        using var run = Run(workers: 16);
        Assert.Equal(16, run.PromiseInline(16));
        Assert.Equal(1, run.PromiseInline(16));
        Assert.Equal(1, run.PromiseInline(16));
        run.Fulfilled(18);
        Assert.Equal(16, run.PromiseInline(16));
        run.Fulfilled(16);

        run.Stopping = true;
        Assert.Equal(0, run.PromiseInline(16));
        Assert.False(run.TryPromiseWorker());
    }
}

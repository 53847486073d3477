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
}

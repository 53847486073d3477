using Ordo.Engine;
using Ordo.Storage;

namespace Ordo.Sqlite.Tests;

/// <summary>What the SQLite store can prove about a worker: alive while its lock is held, dead when its lock file is free, unknown otherwise.</summary>
public sealed class WorkerLivenessTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-live-" + Guid.NewGuid().ToString("N"));

    public WorkerLivenessTests() => Directory.CreateDirectory(_dir);

    private string Db => Path.Combine(_dir, "ordo.db");

    [Fact]
    public async Task AWorkerIsAliveWhileItsStoreHoldsItsLock_UnknownAfterACleanEnd_DeadWhenItsLockIsFree()
    {
        var worker = WorkerIdentity.Create("a1b2c3d4e5f6");
        await using var observer = new SqliteOrdoStore(Db);
        await observer.InitializeAsync();
        Assert.Equal(WorkerLiveness.Unknown, observer.GetWorkerLiveness(worker));

        var owner = new SqliteOrdoStore(Db);
        await owner.InitializeAsync();
        using (owner.WatchForWork(worker, () => { }))
        {
            Assert.Equal(WorkerLiveness.Alive, owner.GetWorkerLiveness(worker));
            // Another store (as another process would) cannot take the lock: the worker is alive.
            Assert.Equal(WorkerLiveness.Alive, observer.GetWorkerLiveness(worker));
        }

        await owner.DisposeAsync();
        // A clean end removes the lock file: nothing proves the worker dead, so its leases (if any) are waited out.
        Assert.Equal(WorkerLiveness.Unknown, observer.GetWorkerLiveness(worker));

        // A crash leaves the file with nobody holding its lock: the worker is dead.
        var crashed = WorkerIdentity.Create("0f0f0f0f0f0f");
        await File.WriteAllTextAsync(Path.Combine(Db + ".workers", "0f0f0f0f0f0f.lock"), crashed + "\n");
        Assert.Equal(WorkerLiveness.Dead, observer.GetWorkerLiveness(crashed));
    }

    [Theory]
    [InlineData("another-host/123/a1b2c3d4e5f6")]
    [InlineData("legacy/123/638700000000/abcd1234")]
    [InlineData("no-slashes")]
    public async Task AWorkerOfAnotherHostOrAnotherNameForm_IsUnknown(string worker)
    {
        await using var store = new SqliteOrdoStore(Db);
        await store.InitializeAsync();
        Directory.CreateDirectory(Db + ".workers");
        await File.WriteAllTextAsync(Path.Combine(Db + ".workers", "a1b2c3d4e5f6.lock"), worker + "\n");
        Assert.Equal(WorkerLiveness.Unknown, store.GetWorkerLiveness(worker));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

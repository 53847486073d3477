using Ordo.Engine;
using Ordo.Storage;

namespace Ordo.Sqlite.Tests;

/// <summary>What the SQLite store can prove about a worker: alive while its lock is held, dead when its lock file is free, unknown otherwise.</summary>
public sealed class WorkerLivenessTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-live-" + Guid.NewGuid().ToString("N"));

    public WorkerLivenessTests() => Directory.CreateDirectory(_dir);

    private string Db => Path.Combine(_dir, "ordo.db");

    [Theory]
    [InlineData("submit")]
    [InlineData("release")]
    public async Task AWaitingWorker_IsRungAtOnce_ByAnotherStoreThatAddsOrReleasesWork(string how)
    {
        var worker = WorkerIdentity.Create("aaaaaaaaaaaa");
        var workflow = Workflows.WorkflowBuilder.Create("rung", 1).Step("a", s => s.Transform("x", "${ 1 }")).Build();
        await using var waiting = new SqliteOrdoStore(Db);
        await waiting.InitializeAsync();
        var rung = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var other = new SqliteOrdoStore(Db);
        if (how == "release")
        {
            // A third process submits; the other one holds the item, then lets it go (as a draining worker does).
            await using (var submitter = new SqliteOrdoStore(Db))
            await using (var runtime = new OrdoRuntime(submitter, new OrdoRuntimeOptions { Workers = 1 }))
            {
                await runtime.SubmitAsync(workflow, null);
            }

            var claimed = Assert.Single(await other.ClaimAsync(new Queue.ClaimRequest { Owner = WorkerIdentity.Create("bbbbbbbbbbbb"), MaxItems = 1, Now = DateTimeOffset.UtcNow, LeaseDuration = TimeSpan.FromSeconds(30) }));
            using (waiting.WatchForWork(worker, () => rung.TrySetResult()))
            {
                await other.ReleaseAsync(claimed.Lease, DateTimeOffset.UtcNow);
                await rung.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        else
        {
            await using var runtime = new OrdoRuntime(other, new OrdoRuntimeOptions { Workers = 1 });
            using (waiting.WatchForWork(worker, () => rung.TrySetResult()))
            {
                await runtime.SubmitAsync(workflow, null);
                await rung.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
    }

    [Fact]
    public async Task ALoneWorkerContinuingAJob_NeverTakesItsOwnSuccessorForALostLease()
    {
        // The successor a worker continues with takes its item's row under a new token: a renewal sent with the old
        // token in the meantime is not renewed, and must not be mistaken for a lease lost to another worker. The
        // store holds each renewal back until the next commit has been written, so that this always happens.
        var builder = Workflows.WorkflowBuilder.Create("long-chain", 1);
        for (var i = 1; i <= Steps; i++)
        {
            var n = i;
            builder.Step($"s{n}", s =>
            {
                var step = s.Transform("n", "${ (() => { let x = 0; for (let k = 0; k < 4000; k++) x += k; return x; })() }");
                if (n < Steps) step.Next($"s{n + 1}");
            });
        }

        var workflow = builder.Build();
        var log = new WarningLog();
        await using var inner = new SqliteOrdoStore(Db);
        var store = new RenewalAfterNextCommit(inner);
        await using var runtime = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 1, LeaseDuration = TimeSpan.FromMilliseconds(300) }, logger: log);
        var job = await runtime.SubmitAsync(workflow, null);
        await runtime.RunAsync(new RunRequest()).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(State.JobStatus.Completed, (await runtime.GetStateAsync(job.JobId))!.Status);
        Assert.True(store.HeldBack > 0, "no renewal was held back: the test did not test anything");
        Assert.DoesNotContain(log.Messages, m => m.Contains("lost the lease", StringComparison.Ordinal));
        var started = 0;
        await foreach (var e in inner.ReadEventsAsync(job.JobId))
        {
            if (e.Type == Events.EventTypes.StepStarted) started++;
        }

        Assert.Equal(Steps, started);
    }

    private const int Steps = 200;

    /// <summary>Holds each renewal back until a commit has been written after it was asked for.</summary>
    private sealed class RenewalAfterNextCommit(IOrdoStore inner) : DelegatingStore(inner)
    {
        private TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int HeldBack;

        public override async ValueTask<CommitResult> CommitAsync(JobCommit commit, CancellationToken cancellationToken = default)
        {
            // A little slower than a bare commit, so that the job lasts several renewal periods.
            await Task.Delay(3, cancellationToken);
            var result = await Inner.CommitAsync(commit, cancellationToken);
            Interlocked.Exchange(ref _committed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            return result;
        }

        public override async ValueTask<IReadOnlyList<long>> RenewLeasesAsync(IReadOnlyList<Queue.WorkItemLease> leases, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
        {
            var committed = Volatile.Read(ref _committed).Task;
            if (await Task.WhenAny(committed, Task.Delay(100, cancellationToken)) == committed)
            {
                Interlocked.Increment(ref HeldBack);
            }

            return await Inner.RenewLeasesAsync(leases, expiresAt, cancellationToken);
        }
    }

    private sealed class WarningLog : Microsoft.Extensions.Logging.ILogger<OrdoRuntime>
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Messages { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Warning;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) Messages.Enqueue(formatter(state, exception));
        }
    }

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

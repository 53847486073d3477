using BenchmarkDotNet.Attributes;
using Ordo.Events;
using Ordo.Sqlite;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Benchmarks;

/// <summary>
/// One SqliteOrdoStore commit of a step's three events (conditional on the job's head) on a file in WAL mode, by a lone
/// writer: one transaction, no fsync with <see cref="SqliteDurability.Normal"/>, one fsync with <see cref="SqliteDurability.Full"/>;
/// with the audit log on and off.
/// The events are sealed inside the measured call (a few microseconds of SHA-256), as the engine does before every commit.
/// </summary>
[MemoryDiagnoser]
public class SqliteCommitBenchmarks : IAsyncDisposable
{
    private readonly NewEvent[] _events = StepFixture.StepEvents(1, DateTimeOffset.UnixEpoch);
    private string _directory = "";
    private SqliteOrdoStore _store = null!;
    private JobId _job;
    private long _seq;
    private byte[] _head = [];

    [Params(SqliteDurability.Normal, SqliteDurability.Full)]
    public SqliteDurability Durability { get; set; }

    /// <summary>Whether the store-wide audit log is on (the default) or off: the difference is what a leaf costs a commit.</summary>
    [Params(true, false)]
    public bool AuditLog { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _directory = Directory.CreateTempSubdirectory("ordo-micro-").FullName;
        _store = new SqliteOrdoStore(new SqliteStoreOptions { Path = Path.Combine(_directory, "ordo.db"), Durability = Durability, AuditLog = AuditLog });
        var state = await StepFixture.SubmitAsync(_store);
        (_job, _seq, _head) = (state.JobId, state.Seq, state.HeadHash);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
            _store = null!;
        }

        GC.SuppressFinalize(this);
    }

    [Benchmark]
    public async Task<CommitOutcome> CommitStepEvents()
    {
        var sealedEvents = EventChain.Seal(_job, _seq, _head, _events);
        var result = await _store.CommitAsync(new JobCommit
        {
            JobId = _job, ExpectedSeq = _seq, ExpectedHeadHash = _head, Events = sealedEvents, Status = JobStatus.Running,
        });
        if (result.Outcome != CommitOutcome.Committed) throw new InvalidOperationException($"commit: {result.Outcome}");
        _seq = sealedEvents[^1].Seq;
        _head = sealedEvents[^1].Hash;
        return result.Outcome;
    }
}

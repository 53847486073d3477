using BenchmarkDotNet.Attributes;
using Ordo.Events;

namespace Ordo.Benchmarks;

/// <summary>Hashing a step's three events onto a job's chain (SHA-256 over a canonical encoding of each).</summary>
[MemoryDiagnoser]
public class EventChainBenchmarks
{
    private readonly JobId _job = JobId.New(DateTimeOffset.UnixEpoch);
    private readonly byte[] _head = new byte[32];
    private NewEvent[] _events = [];

    [GlobalSetup]
    public void Setup() => _events = StepFixture.StepEvents(1, DateTimeOffset.UnixEpoch);

    [Benchmark]
    public EventEnvelope[] SealStepCommit() => EventChain.Seal(_job, 2, _head, _events);
}

using BenchmarkDotNet.Attributes;
using Ordo.Events;
using Ordo.State;
using Ordo.Testing;

namespace Ordo.Benchmarks;

/// <summary>Applying a step commit's events to a job's state (what every commit and every cold load does).</summary>
[MemoryDiagnoser]
public class JobStateReducerBenchmarks
{
    private JobState _state = null!;
    private EventEnvelope[] _events = [];

    [GlobalSetup]
    public async Task SetupAsync()
    {
        await using var store = new InMemoryOrdoStore();
        _state = await StepFixture.SubmitAsync(store);
        var started = EventChain.Seal(_state.JobId, _state.Seq, _state.HeadHash, [StoreEvents.StepStarted(new StepRef("n1", 1, 1), "host/1/1/bench", 1, DateTimeOffset.UnixEpoch)]);
        _state = JobStateReducer.Apply(_state, started);
        _events = EventChain.Seal(_state.JobId, _state.Seq, _state.HeadHash, StepFixture.StepEvents(1, DateTimeOffset.UnixEpoch));
    }

    [Benchmark]
    public JobState ApplyStepCommit() => JobStateReducer.Apply(_state, _events);
}

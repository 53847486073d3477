using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Tests.State;

public sealed class JobStateReducerTests
{
    [Fact]
    public async Task StateFromAnySnapshotPlusTheRest_EqualsStateFromTheWholeLog()
    {
        var store = new InMemoryOrdoStore();
        await using var runtime = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 1 });
        var wf = WorkflowBuilder.Create("mixed", 1)
            .Artifact("n", """{ "type": "integer" }""")
            .Step("a", s => s.Transform("n", 1).Next("b"))
            .Step("b", s => s.Code(ctx => ctx.Step.Attempt == 1 ? throw new InvalidOperationException("once") : Ordo.Json.Of(new { i = 2 })).Retry(2, TimeSpan.Zero).Next("c"))
            .Step("c", s => s.Transform("n", "${ artifacts.n + 1 }").Loop(3).When("artifacts.n < 3", "c"))
            .Build();
        var job = await runtime.SubmitAsync(wf, null);
        await runtime.RunAsync(new RunRequest { RootJobId = job.JobId });
        var events = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(job.JobId)) events.Add(e);

        var full = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
        Assert.Equal(JobStatus.Completed, full.Status);
        Assert.Equal(3, full.Artifacts["n"].Verified!.Value.GetInt32());
        for (var cut = 1; cut <= events.Count; cut++)
        {
            var partial = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1).Take(cut - 1));
            var restored = StateSnapshotCodec.Decode(StateSnapshotCodec.Encode(partial))!;
            var resumed = JobStateReducer.Apply(restored, events.Skip(cut));
            Assert.Equal(Fingerprint(full), Fingerprint(resumed));
        }
    }

    [Fact]
    public void Apply_RefusesAnEventOutOfSequence()
    {
        var t = DateTimeOffset.UnixEpoch;
        var id = JobId.New(t);
        var e = EventChain.Seal(id, 0, EventChain.GenesisHash,
        [
            EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload("w", 1, "h", "t", "s", null, null, null, null, "x", 0), t),
            EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1), t),
            EventFactory.Job(EventTypes.JobCompleted, new JobCompletedPayload(1), t),
        ]);
        var state = JobStateReducer.Start(e[0]);
        Assert.Throws<InvalidDataException>(() => JobStateReducer.Apply(state, e[2]));
        Assert.Throws<InvalidDataException>(() => JobStateReducer.Start(e[1]));
    }

    [Fact]
    public void Snapshot_OfAnotherFormat_IsIgnored()
    {
        var snapshot = new StateSnapshot(3, System.Text.Encoding.UTF8.GetBytes("""{"format":999,"state":{"seq":3}}"""));
        Assert.Null(StateSnapshotCodec.Decode(snapshot));
    }

    private static string Fingerprint(JobState s) => System.Text.Encoding.UTF8.GetString(StateSnapshotCodec.Encode(s).Data);
}

using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Tests.Patterns;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Engine;

/// <summary>
/// Steps of one job that finish together are committed through the job's lane: the worker holding it writes the others'
/// commits too, each planned on the state the previous one leaves. Whatever the interleaving, every step is committed
/// once, in a log that verifies, and the state the runtime keeps is the state its log gives.
/// </summary>
public sealed class CommitLaneTests
{
    private const string Workflow = """
        ordo: 1
        workflow: wide
        version: 1
        agents:
          echo: { kind: code, type: T.Echo }
        steps:
          - { id: fan, parallel: [b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12], join: each }
          - { id: b1, agent: echo, input: { n: 1 } }
          - { id: b2, agent: echo, input: { n: 2 } }
          - { id: b3, agent: echo, input: { n: 3 } }
          - { id: b4, agent: echo, input: { n: 4 }, next: b4x }
          - { id: b4x, agent: echo, input: { n: "${ steps.b4.output.n * 10 }" } }
          - { id: b5, agent: echo, input: { n: 5 } }
          - { id: b6, agent: echo, input: { n: 6 } }
          - { id: b7, agent: echo, input: { n: 7 } }
          - { id: b8, agent: echo, input: { n: 8 } }
          - { id: b9, agent: echo, input: { n: 9 } }
          - { id: b10, agent: echo, input: { n: 10 } }
          - { id: b11, agent: echo, input: { n: 11 } }
          - { id: b12, agent: echo, input: { n: 12 } }
          - { id: each, foreach: "${ input.items }", do: item, max_concurrency: 5, next: total }
          - { id: item, agent: echo, input: { n: "${ item }" } }
          - { id: total, agent: echo, input: { n: "${ steps.fan.output.b4.n + steps.each.output[19].n }" } }
        """;

    private static readonly string Input = $$"""{"items": [{{string.Join(", ", Enumerable.Range(1, 20))}}]}""";

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(6)]
    public async Task ConcurrentJobsOfWideSteps_CommitEveryStepOnce_AndKeepTheStateTheirLogsGive(int workers)
    {
        await using var h = new PatternHarness(NewOptions(workers));
        h.Agent("T.Echo", input => input);
        var wf = await h.LoadAsync("wf.yaml", Workflow);
        var ids = new List<JobId>();
        for (var i = 0; i < 8; i++) ids.Add(await h.SubmitAsync(wf, Input));

        await h.Runtime.RunAsync(new RunRequest { UntilIdle = true }).WaitAsync(Patience);

        foreach (var id in ids)
        {
            var kept = await h.Runtime.WaitAsync(id).WaitAsync(Patience);
            Assert.Equal(JobStatus.Completed, kept.Status);
            Assert.Equal(60, kept.Steps["total"].Output!.Value.GetProperty("n").GetInt32());

            var events = await h.EventsAsync(id);
            Assert.Equal(Enumerable.Range(1, events.Count).Select(n => (long)n), events.Select(e => e.Seq));
            Assert.True((await AuditVerifier.VerifyAsync(h.Store, id)).Intact);
            var succeeded = events.Where(e => e.Type == EventTypes.StepSucceeded).GroupBy(e => (e.StepId, e.Scope)).ToList();
            Assert.All(succeeded, g => Assert.Single(g));
            Assert.Equal(12 + 1 + 20 + 3, succeeded.Count);

            // The state kept in memory (previews of each plan) is byte for byte the state the log rebuilds.
            var rebuilt = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
            Assert.Equal(StateSnapshotCodec.Encode(rebuilt).Data, StateSnapshotCodec.Encode(kept).Data);
        }

        Assert.Equal(8 * (13 + 20 + 1), h.Calls("T.Echo"));
    }
}

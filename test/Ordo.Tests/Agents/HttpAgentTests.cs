using Ordo.Events;
using Ordo.State;
using Ordo.Tests.Governance;
using Ordo.TestServers;

namespace Ordo.Tests.Agents;

/// <summary>http agents: the same contracts, retries, timeouts, events and idempotency headers as any other call.</summary>
public sealed class HttpAgentTests
{
    private static string Workflow(string url, string extra = "", int attempts = 3) => $$"""
        ordo: 1
        workflow: remote
        version: 1
        artifacts:
          verdict: { schema: { type: object, required: [ok], properties: { ok: { type: boolean } } } }
        agents:
          remote: { kind: http, url: "{{url}}", output: verdict{{extra}} }
        steps:
          - { id: ask, agent: remote, retry: { max_attempts: {{attempts}}, backoff: 1ms, max_backoff: 1ms } }
        """;

    [Fact]
    public async Task RetriedAfterA503_TheIdempotencyKeyIsTheSame_AndEachCallIsRecorded()
    {
        var n = 0;
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
            Interlocked.Increment(ref n) == 1 ? LoopbackServer.JsonAsync(ctx, 503, """{"busy":true}""") : LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""));
        await using var h = new GovernanceHarness();
        h.Write("workflow.yaml", Workflow(server.Address + "agent"));
        var state = await h.RunAsync(await h.LoadAsync(), new { q = 1 });

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.True(state.Artifacts["verdict"].Latest!.Value.GetProperty("ok").GetBoolean());
        var requests = server.Requests;
        Assert.Equal(2, requests.Count);
        Assert.NotNull(requests[0].IdempotencyKey);
        Assert.Equal(requests[0].IdempotencyKey, requests[1].IdempotencyKey);
        Assert.Equal(["1", "2"], requests.Select(r => r.Headers["X-Ordo-Attempt"]));
        Assert.Equal("""{"q":1}""", requests[0].Body);

        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.ModelCallRequested));
        var failed = events.Single(e => e.Type == EventTypes.ModelCallFailed).GetPayload<ModelCallFailedPayload>();
        Assert.Equal(("http", "http_503"), (failed.Provider, failed.Error));
        var succeeded = events.Single(e => e.Type == EventTypes.ModelCallSucceeded);
        Assert.Equal("remote@1", succeeded.Agent);
        Assert.Equal("""{"ok":true}""", succeeded.GetPayload<ModelCallSucceededPayload>().Content);
    }

    [Fact]
    public async Task AnAgentSlowerThanItsTimeout_FailsTheAttemptAsTimeout()
    {
        await using var server = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(20), ctx.RequestAborted);
            await LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}""");
        });
        await using var h = new GovernanceHarness();
        h.Write("workflow.yaml", Workflow(server.Address + "agent", ", timeout: 200ms", attempts: 1));
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("timeout", failed.Error);
        Assert.Contains("within 200ms", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAnswerBreakingTheArtifactContract_IsRejected()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"ok":"yes"}"""));
        await using var h = new GovernanceHarness();
        h.Write("workflow.yaml", Workflow(server.Address + "agent", attempts: 1));
        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Failed, state.Status);
        var rejected = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ArtifactRejected).GetPayload<ArtifactVerdictPayload>();
        Assert.Equal("verdict", rejected.Name);
    }
}

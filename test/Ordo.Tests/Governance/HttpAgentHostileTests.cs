using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>http agents use the connections of http tools: no redirect followed, no metadata address, a bounded answer.</summary>
public sealed class HttpAgentHostileTests
{
    private static string Workflow(string url) => $$"""
        ordo: 1
        workflow: remote
        version: 1
        agents:
          remote: { kind: http, url: "{{url}}" }
        steps:
          - { id: ask, agent: remote, retry: { max_attempts: 1 } }
        """;

    private static async Task<(JobState State, StepFailedPayload Failed)> RunAsync(string url)
    {
        await using var h = new GovernanceHarness();
        h.Write("workflow.yaml", Workflow(url));
        var state = await h.RunAsync(await h.LoadAsync());
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        return (state, failed);
    }

    [Fact]
    public async Task ARedirect_IsNotFollowed()
    {
        var elsewhere = 0;
        await using var other = await LoopbackServer.StartAsync((ctx, req) => { Interlocked.Increment(ref elsewhere); return LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""); });
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = other.Address + "steal";
            return Task.CompletedTask;
        });
        var (state, failed) = await RunAsync(server.Address + "agent");
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal("http_302", failed.Error);
        Assert.Contains("a redirect to", failed.Message, StringComparison.Ordinal);
        Assert.Equal(0, elsewhere);
    }

    [Fact]
    public async Task AMetadataAddress_IsRefusedBeforeConnecting()
    {
        var (state, failed) = await RunAsync("http://169.254.169.254/latest/meta-data/");
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("169.254.169.254", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAnswerLargerThanAStepMayRecord_FailsTheStep()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{\"text\":\"" + new string('x', 6 * 1024 * 1024) + "\"}"));
        var (state, failed) = await RunAsync(server.Address + "agent");
        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Equal("output_too_large", failed.Error);
    }
}

using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using Ordo.Tests.Governance;
using Ordo.TestServers;

namespace Ordo.Tests.Agents;

/// <summary>A provider's answer is outside input: odd usage counts and numbers no schema can check fail cleanly and are recorded.</summary>
public sealed class ProviderAnswerHostileTests
{
    private static Task<LoopbackServer> ServerAsync(string usage, string content = "{\"value\": 1}")
        => LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200,
            "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"fake\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
            + JsonSerializer.Serialize(content) + "},\"finish_reason\":\"stop\"}],\"usage\":" + usage + "}"));

    private static async Task<(GovernanceHarness H, JobState State)> RunAsync(LoopbackServer server, string constraints = "", int attempts = 1)
    {
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{server.Address}v1\", price: {{ input_per_1k: 1, output_per_1k: 1 }} }}\n");
        h.Write("workflow.yaml", $$"""
            ordo: 1
            workflow: odd-answers
            version: 1
            {{constraints}}
            artifacts:
              answer: { schema: { type: object, properties: { value: { type: number } } } }
            agents:
              talker: { kind: llm, tier: fast, output: answer }
            steps:
              - { id: each, foreach: "${ input.items }", do: talk, max_concurrency: 1 }
              - { id: talk, agent: talker, retry: { max_attempts: {{attempts}}, backoff: 1ms, max_backoff: 1ms } }
            """);
        return (h, await h.RunAsync(await h.LoadAsync(), new { items = Enumerable.Range(1, 5).ToArray() }));
    }

    [Fact]
    public async Task ANegativeUsageCount_CountsAsZero_AndCannotRefundABudget()
    {
        await using var server = await ServerAsync("{\"prompt_tokens\": -1000000, \"completion_tokens\": 15, \"total_tokens\": -999985}");
        var (h, state) = await RunAsync(server, "constraints: { max_tokens: 40 }");
        await using var _ = h;

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.True(state.Usage.Tokens >= 0);
        var calls = (await h.EventsAsync(state.JobId)).Where(e => e.Type == EventTypes.ModelCallSucceeded).Select(e => e.GetPayload<ModelCallSucceededPayload>()).ToList();
        Assert.All(calls, c => Assert.True(c.InputTokens == 0 && c.Cost >= 0));
        Assert.True(calls.Count <= 3, $"{calls.Count} calls ran under max_tokens: 40 at 15 tokens each");
    }

    [Theory]
    [InlineData("{\"prompt_tokens\": \"10\", \"completion_tokens\": 1, \"total_tokens\": 11}")]
    [InlineData("{\"prompt_tokens\": 10.5, \"completion_tokens\": 1, \"total_tokens\": 11}")]
    [InlineData("{\"prompt_tokens\": 3000000000, \"completion_tokens\": 1, \"total_tokens\": 11}")]
    public async Task AnUnreadableUsage_IsAMalformedAnswer_RecordedAsTheCallsOutcome(string usage)
    {
        await using var server = await ServerAsync(usage);
        var (h, state) = await RunAsync(server);
        await using var _ = h;

        Assert.Equal(JobStatus.Failed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(events.Count(e => e.Type == EventTypes.ModelCallRequested), events.Count(e => e.Type is EventTypes.ModelCallSucceeded or EventTypes.ModelCallFailed));
        var failed = events.FirstOrDefault(e => e.Type == EventTypes.ModelCallFailed)?.GetPayload<ModelCallFailedPayload>();
        if (failed is not null) Assert.Equal("malformed_response", failed.Error);
    }

    [Fact]
    public async Task ANumberNoSchemaCanCheck_FailsTheContract_InBoundedAttempts_WithEveryCallRecorded()
    {
        await using var server = await ServerAsync("{\"prompt_tokens\": 1, \"completion_tokens\": 1, \"total_tokens\": 2}", "{\"value\": 123456789012345678901234567890}");
        var (h, state) = await RunAsync(server, attempts: 2);
        await using var _ = h;

        Assert.Equal(JobStatus.Failed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(2, events.Count(e => e.Type == EventTypes.ModelCallSucceeded));
        var rejected = events.First(e => e.Type == EventTypes.ArtifactRejected).GetPayload<ArtifactVerdictPayload>();
        Assert.Contains("out of range", string.Join(" ", rejected.Errors ?? []), StringComparison.Ordinal);
    }
}

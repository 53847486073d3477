using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>No event of a job's log is unbounded: a tool's result, a step's output and a model's answer each have a limit.</summary>
public sealed class ResultSizeLimitTests
{
    private static JsonElement Big(int bytes) => Ordo.Json.Of(new { text = new string('x', bytes) });

    private static async Task AssertLogIsSmallAsync(GovernanceHarness h, JobId job)
    {
        foreach (var e in await h.EventsAsync(job))
        {
            Assert.True(e.PayloadText.Length < 64 * 1024, $"{e.Type} holds {e.PayloadText.Length} characters");
        }
    }

    [Theory]
    [InlineData("", 5 * 1024 * 1024, "more than its limit of 4194304")]
    [InlineData(", max_result_bytes: 1000", 2000, "more than its limit of 1000")]
    public async Task ACodeToolsResult_LargerThanItsLimit_FailsTheCall_AndIsNotRecorded(string option, int size, string message)
    {
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $"tools:\n  t.big: {{ kind: code, effect: read{option} }}\n");
        h.AddCodeTool("t.big", _ => Big(size));
        h.Write("workflow.yaml", "ordo: 1\nworkflow: big\nversion: 1\nsteps:\n  - { id: call, tool: t.big }\n");
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).First(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();
        Assert.Equal("result_too_large", failed.Error);
        Assert.Contains(message, failed.Message, StringComparison.Ordinal);
        Assert.False(failed.Retryable);
        await AssertLogIsSmallAsync(h, state.JobId);
    }

    [Fact]
    public async Task AStepsOutput_LargerThanTheLimit_FailsTheStep_AndIsNotRecorded()
    {
        await using var h = new GovernanceHarness();
        h.AddCodeAgent("T.Big", (_, _) => Task.FromResult(Big(5 * 1024 * 1024)));
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: big-output
            version: 1
            artifacts: { report: {} }
            agents:
              big: { kind: code, type: T.Big, output: report }
            steps:
              - { id: write, agent: big }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("output_too_large", failed.Error);
        Assert.Contains("more than the 4194304 a step may record", failed.Message, StringComparison.Ordinal);
        Assert.Empty(state.Artifacts);
        await AssertLogIsSmallAsync(h, state.JobId);
    }

    [Fact]
    public async Task AModelAnswerLargerThanTheLimit_FailsTheCall_AfterReadingAtMostTheLimit()
    {
        await using var model = await LoopbackServer.StartAsync((ctx, req) =>
        {
            var content = new string('x', 20 * 1024 * 1024);
            return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new
            {
                id = "c", @object = "chat.completion", created = 1, model = "fake",
                choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
            }));
        });
        await using var h = new GovernanceHarness();
        h.Write("ordo.yaml", $"models:\n  fast: {{ provider: openai-compatible, model: fake, endpoint: \"{model.Address}v1\" }}\n");
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: huge-answer
            version: 1
            agents:
              talker: { kind: llm, tier: fast }
            steps:
              - { id: talk, agent: talker, retry: { max_attempts: 1 } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ModelCallFailed).GetPayload<ModelCallFailedPayload>();
        Assert.Contains("a model call may read", failed.Message, StringComparison.Ordinal);
        await AssertLogIsSmallAsync(h, state.JobId);
    }
}

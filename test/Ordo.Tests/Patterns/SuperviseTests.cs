using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>supervise</c> steps run from YAML: rounds, <c>done</c>, max_rounds, gated worker results, invalid decisions.</summary>
public sealed class SuperviseTests
{
    private static string Workflow(int maxRounds = 4) => $$"""
        ordo: 1
        workflow: supervised
        version: 1
        artifacts:
          notes: { schema: { type: object, required: [text] } }
          draft: { schema: { type: object, required: [text] } }
        agents:
          boss:       { kind: code, type: T.Boss }
          researcher: { kind: code, type: T.Research, output: notes }
          writer:     { kind: code, type: T.Write, output: draft }
        steps:
          - id: lead
            supervise: { agent: boss, workers: [researcher, writer], max_rounds: {{maxRounds}} }
            input: { goal: "${ input.goal }" }
        """;

    /// <summary>A supervisor that answers, round by round, from a script (the last answer repeats).</summary>
    private static PatternHarness Harness(params string[] answers)
    {
        var h = new PatternHarness();
        h.Agent("T.Boss", input =>
        {
            var round = input.GetProperty("round").GetInt32();
            return J(answers[Math.Min(round, answers.Length) - 1]);
        });
        h.Agent("T.Research", input => J($$"""{"text": "notes on {{input.GetProperty("q").GetString()}}"}"""));
        h.Agent("T.Write", input => J($$"""{"text": "draft {{input.GetProperty("n").GetInt32()}}"}"""));
        return h;
    }

    private static List<PatternProgressedPayload> Units(List<EventEnvelope> events)
        => events.Where(e => e.Type == EventTypes.PatternProgressed).Select(e => e.GetPayload<PatternProgressedPayload>()).ToList();

    [Fact]
    public async Task SeveralRounds_ThenDone_OutputListsEachWorkerResult_AndTheSupervisorSawThemAll()
    {
        await using var h = Harness(
            """{"next": "researcher", "input": {"q": "geese"}}""",
            """{"next": "writer", "input": {"n": 1}}""",
            """{"next": "writer", "input": {"n": 2}}""",
            """{"next": "done"}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"goal": "an essay"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(
            """[{"round":1,"worker":"researcher","verdict":"verified","output":{"text":"notes on geese"}},{"round":2,"worker":"writer","verdict":"verified","output":{"text":"draft 1"}},{"round":3,"worker":"writer","verdict":"verified","output":{"text":"draft 2"}}]""",
            Raw(state.Steps["lead"].Output));
        var asked = h.Inputs("T.Boss");
        Assert.Equal([1, 2, 3, 4], asked.Select(i => i.GetProperty("round").GetInt32()));
        Assert.Equal([0, 1, 2, 3], asked.Select(i => i.GetProperty("results").GetArrayLength()));
        Assert.All(asked, i => Assert.Equal("""{"goal":"an essay"}""", Raw(i.GetProperty("task"))));
        Assert.Equal("""{"round":1,"worker":"researcher","verdict":"verified","output":{"text":"notes on geese"}}""", Raw(asked[1].GetProperty("results")[0]));
        Assert.Equal(["""{"n":1}""", """{"n":2}"""], h.Inputs("T.Write").Select(i => Raw(i)));
        Assert.Equal(2, state.Artifacts["draft"].Verified!.Version);

        var units = Units(await h.EventsAsync(state.JobId));
        Assert.Equal(["decision", "result", "decision", "result", "decision", "result"], units.Select(u => u.Phase));
        Assert.Equal(["researcher", "writer", "writer"], units.Where(u => u.Phase == "decision").Select(u => u.Data.GetProperty("next").GetString()));
    }

    [Fact]
    public async Task NeverDone_FailsAtMaxRounds_WithoutAskingTheSupervisorAgain()
    {
        await using var h = Harness("""{"next": "researcher", "input": {"q": "more"}}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow(maxRounds: 2)), """{"goal": "g"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("the supervisor did not answer 'done' within max_rounds (2)", state.Reason);
        Assert.Equal(2, h.Calls("T.Boss"));
        Assert.Equal(2, h.Calls("T.Research"));
        var events = await h.EventsAsync(state.JobId);
        var failed = events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("max_rounds", failed.Error);
        Assert.Equal(2, failed.Details!.Value.GetArrayLength());
        Assert.Equal(4, Units(events).Count);
    }

    [Fact]
    public async Task AWorkerOutputRejectedByItsContract_IsReportedToTheSupervisorAsRejected_WithoutItsValue()
    {
        await using var h = Harness(
            """{"next": "writer", "input": {"n": 1}}""",
            """{"next": "done"}""");
        h.Agent("T.Write", "{\"txt\": \"typo in the field name\"}");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"goal": "g"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        var seen = h.Inputs("T.Boss")[1].GetProperty("results")[0];
        Assert.Equal(("writer", "rejected"), (seen.GetProperty("worker").GetString(), seen.GetProperty("verdict").GetString()));
        Assert.False(seen.TryGetProperty("output", out _));
        Assert.DoesNotContain("typo in the field name", seen.GetRawText(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(seen.GetProperty("reason").GetString()));

        var result = state.Steps["lead"].Output!.Value[0];
        Assert.Equal("rejected", result.GetProperty("verdict").GetString());
        Assert.False(result.TryGetProperty("output", out _));
        Assert.Null(state.Artifacts["draft"].Verified);
        var events = await h.EventsAsync(state.JobId);
        Assert.Contains(events, e => e.Type == EventTypes.ArtifactRejected && e.GetPayload<ArtifactVerdictPayload>().Name == "draft");
        var unit = Units(events).Single(u => u.Phase == "result");
        Assert.Equal("rejected", unit.Data.GetProperty("verdict").GetString());
        Assert.False(unit.Data.TryGetProperty("output", out _));
    }

    [Theory]
    [InlineData("""{"next": "intern"}""", "the supervisor chose 'intern', which is neither one of its workers (researcher, writer) nor 'done'")]
    [InlineData("""{"input": {"q": "x"}}""", "the supervisor chose an answer without 'next'")]
    [InlineData("""{"next": "researcher", "input": "q=x"}""", "the supervisor's 'input' for researcher is not an object")]
    public async Task AnInvalidDecision_FailsTheStep_SayingWhatWasWrong(string answer, string reason)
    {
        await using var h = Harness(answer);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow()), """{"goal": "g"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains($"round 1: {reason}", state.Reason);
        Assert.Equal(0, h.Calls("T.Research") + h.Calls("T.Write"));
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("invalid_decision", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.Empty(Units(events));
    }
}

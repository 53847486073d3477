using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>board</c> (blackboard) steps run from YAML: firing order, triggering artifacts, no double firing, until, max_firings, stuck boards.</summary>
public sealed class BoardTests
{
    private static string Workflow(string rules, string until, int maxFirings = 10) => $$"""
        ordo: 1
        workflow: blackboard
        version: 1
        artifacts:
          question: { schema: { type: object, required: [q] } }
          research: { schema: { type: object, required: [facts] } }
          review:   { schema: { type: object, required: [ok] } }
        agents:
          seeder:     { kind: code, type: T.Seed, output: question }
          researcher: { kind: code, type: T.Research, output: research }
          reviewer:   { kind: code, type: T.Review, output: review }
          rephraser:  { kind: code, type: T.Rephrase, output: question }
        steps:
          - { id: seed, agent: seeder, next: board }
          - id: board
            board:
              rules:
        {{rules}}
              until: "{{until}}"
              max_firings: {{maxFirings}}
        """;

    private static PatternHarness Harness()
    {
        var h = new PatternHarness();
        var rephrased = 0;
        h.Agent("T.Seed", "{\"q\": \"why?\"}");
        h.Agent("T.Research", input => J($$"""{"facts": ["about {{input.GetProperty("artifacts").GetProperty("question").GetProperty("q").GetString()}}"]}"""));
        h.Agent("T.Review", "{\"ok\": true}");
        h.Agent("T.Rephrase", _ => J($$"""{"q": "why, take {{Interlocked.Increment(ref rephrased) + 1}}?"}"""));
        return h;
    }

    private static List<JsonElement> Firings(List<EventEnvelope> events)
        => events.Where(e => e.Type == EventTypes.PatternProgressed && e.StepId == "board").Select(e => e.GetPayload<PatternProgressedPayload>())
            .Where(p => p.Phase == "firing").Select(p => p.Data).ToList();

    private static List<string> TriggeredBy(JsonElement firing) => firing.GetProperty("triggered_by").EnumerateArray().Select(t => t.GetString()!).ToList();

    [Fact]
    public async Task RulesFireInOrderAsTheirArtifactsAppear_EachFiringNamesItsRuleAndTriggers_UntilEndsIt()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts.question !== undefined", run: researcher }
                    - { id: review, when: "artifacts.research !== undefined && artifacts.question !== undefined", run: reviewer }
            """, "artifacts.review !== undefined && artifacts.review.ok"));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        var events = await h.EventsAsync(state.JobId);
        var firings = Firings(events);
        Assert.Equal(["research", "review"], firings.Select(f => f.GetProperty("rule").GetString()));
        Assert.Equal(["researcher", "reviewer"], firings.Select(f => f.GetProperty("agent").GetString()));
        Assert.Equal(["question@1"], TriggeredBy(firings[0]));
        Assert.Equal(["question@1", "research@1"], TriggeredBy(firings[1]));
        Assert.All(firings, f => Assert.Equal("verified", f.GetProperty("verdict").GetString()));
        // The firing event carries the agent's stamp, and the researcher saw the board's verified artifacts.
        Assert.All(events.Where(e => e.Type == EventTypes.PatternProgressed), e => Assert.NotNull(e.Agent));
        var researched = h.Inputs("T.Research").Single();
        Assert.Equal(("research", "why?"), (researched.GetProperty("rule").GetString(), researched.GetProperty("artifacts").GetProperty("question").GetProperty("q").GetString()));
        Assert.Equal("""["question@1"]""", Raw(researched.GetProperty("triggered_by")));

        // The research rule still matched after it fired, but never fired again for the same question@1.
        Assert.Equal(1, h.Calls("T.Research"));
        Assert.Equal(1, h.Calls("T.Review"));
        Assert.Equal("""{"facts":["about why?"]}""", Raw(state.Artifacts["research"].Verified!.Value));
        Assert.Equal(2, state.Steps["board"].Output!.Value.GetProperty("firings").GetArrayLength());
    }

    [Fact]
    public async Task ARuleFiresAgain_OnlyWhenTheArtifactsItMatchedHaveANewVersion_AndMaxFiringsFailsTheStep()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts.question !== undefined", run: researcher }
                    - { id: rephrase, when: "artifacts.research !== undefined", run: rephraser }
            """, "false", maxFirings: 5));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("'until' did not hold after max_firings (5) firings", state.Reason);
        var events = await h.EventsAsync(state.JobId);
        var firings = Firings(events);
        Assert.Equal(["research", "rephrase", "research", "rephrase", "research"], firings.Select(f => f.GetProperty("rule").GetString()));
        Assert.Equal(
            [["question@1"], ["research@1"], ["question@2"], ["research@2"], ["question@3"]],
            firings.Select(TriggeredBy));
        Assert.Equal([1, 2, 3, 4, 5], firings.Select(f => f.GetProperty("firing").GetInt32()));
        Assert.Equal("max_firings", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.Equal(3, h.Calls("T.Research"));
    }

    [Fact]
    public async Task NoRuleCanFire_AndUntilDoesNotHold_FailsTheStepAsStuck()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts.question !== undefined", run: researcher }
            """, "artifacts.review !== undefined"));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("no rule can fire and 'until' does not hold (after 1 firings)", state.Reason);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("board_stuck", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.Single(Firings(events));
    }

    [Fact]
    public async Task UntilAlreadyHolding_EndsTheBoardWithoutAnyFiring()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts.question !== undefined", run: researcher }
            """, "artifacts.question !== undefined"));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"firings":[]}""", Raw(state.Steps["board"].Output));
        Assert.Equal(0, h.Calls("T.Research"));
    }

    [Fact]
    public async Task ARuleWrittenWithBracketAccess_NamesItsTriggeringArtifacts_AndRefiresOnANewVersion()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts['question'] !== undefined", run: researcher }
                    - { id: rephrase, when: "artifacts[\"research\"] !== undefined", run: rephraser }
            """, "false", maxFirings: 3));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        var firings = Firings(await h.EventsAsync(state.JobId));
        Assert.Equal([["question@1"], ["research@1"], ["question@2"]], firings.Select(TriggeredBy));
        Assert.Contains("max_firings (3)", state.Reason);
    }

    [Fact]
    public async Task AFiringWhoseOutputBreaksItsContract_IsRecordedAsRejected_AndTheArtifactStaysUnset()
    {
        await using var h = Harness();
        h.Agent("T.Research", "{\"notes\": \"no facts field\"}");
        var wf = await h.LoadAsync("wf.yaml", Workflow("""
                    - { id: research, when: "artifacts.question !== undefined", run: researcher }
            """, "artifacts.research !== undefined"));
        var state = await h.RunAsync(wf);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("no rule can fire", state.Reason);
        var firing = Assert.Single(Firings(await h.EventsAsync(state.JobId)));
        Assert.Equal("rejected", firing.GetProperty("verdict").GetString());
        Assert.False(firing.TryGetProperty("output", out _));
        Assert.Null(state.Artifacts["research"].Verified);
    }
}

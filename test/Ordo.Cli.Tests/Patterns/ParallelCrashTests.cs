using System.Globalization;
using System.Text;
using Ordo.Cli.Tests.TestSupport;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Patterns;

/// <summary>
/// A parallel step of four branches of different lengths (join_policy all), each branch three slow steps and three
/// side-effecting SQL steps, then a join that makes an effect of its own, run by a real <c>ordo run</c> process that is
/// killed with SIGKILL at random points and restarted with <c>ordo resume</c>. The job must complete with every branch's
/// effects applied exactly once, no finished branch running again, the join scheduled and run once, and intact hash
/// chains. Scales with ORDO_TORTURE_SCALE (default 1); ORDO_TORTURE_SEED replays a run.
/// </summary>
[Collection(PatternCrashRuns.Name)]
public sealed class ParallelCrashTests(ITestOutputHelper log)
{
    private const int Branches = 4;

    [Fact]
    public Task Parallel_SigkillAtRandomPoints_FinishedBranchesNeverRunAgain_JoinRunsOnce()
        => PatternTorture.RunSeededAsync(log, "parallel crash test", TortureAsync);

    private async Task TortureAsync(int scale, Random random)
    {
        using var w = Workspace.Create();
        var t = new PatternTorture(log, w, random);
        t.WriteProject();
        var labels = Enumerable.Range(1, Branches).Select(i => $"b{i}").ToList();

        // Branch bK: sleep K×200 ms, effect, sleep 250 ms, effect, sleep 250 ms, effect. The join makes one effect with every branch's result.
        var yaml = new StringBuilder($"""
            ordo: 1
            workflow: crash-parallel
            version: 1
            agents:
              sleeper: {"{"} kind: code, version: 1, type: "Ordo.TestPlugins.Sleeper" {"}"}
            steps:
              - id: fan
                parallel: [{string.Join(", ", labels)}]
                join: merge
                join_policy: all

            """);
        for (var k = 1; k <= Branches; k++)
        {
            yaml.Append(CultureInfo.InvariantCulture, $$"""
                  - { id: b{{k}}, agent: sleeper, input: { ms: {{k * 200}} }, next: b{{k}}_fx1 }
                  - { id: b{{k}}_fx1, tool: effect.write, args: { item: "b{{k}}.1", index: {{k * 10 + 1}} }, next: b{{k}}_nap1 }
                  - { id: b{{k}}_nap1, agent: sleeper, input: { ms: 250 }, next: b{{k}}_fx2 }
                  - { id: b{{k}}_fx2, tool: effect.write, args: { item: "b{{k}}.2", index: {{k * 10 + 2}} }, next: b{{k}}_nap2 }
                  - { id: b{{k}}_nap2, agent: sleeper, input: { ms: 250 }, next: b{{k}}_fx3 }
                  - { id: b{{k}}_fx3, tool: effect.write, args: { item: "b{{k}}.3", index: {{k * 10 + 3}} } }

                """);
        }

        yaml.Append("""
              - { id: merge, tool: effect.write, args: { item: "${ Object.keys(steps.fan.output).join(',') }", index: 99 } }

            """);
        w.Write("fan.yaml", yaml.ToString());

        var job = await t.RunWithKillsAsync(["fan.yaml"], kills: 4 * scale, coordinator: "fan", maxSteps: 4);

        Assert.True(await t.CompletedAsync(job), $"job {job} did not complete");
        var events = await t.EventsAsync(job);

        // The pattern started once; each branch ended once, with success.
        Assert.Single(events, e => PatternTorture.Type(e) == "PatternStarted");
        var ended = PatternTorture.EndedBranches(events, "fan");
        Assert.Equal(labels, ended.Keys.Order(StringComparer.Ordinal));
        Assert.All(ended.Values, s => Assert.Equal("succeeded", s));

        // The join was scheduled once, started once and ran once, after every branch, seeing every branch's result.
        Assert.Single(events, e => PatternTorture.Type(e) == "StepScheduled" && e.GetProperty("step_id").GetString() == "merge");
        Assert.Single(events, e => PatternTorture.Type(e) == "StepSucceeded" && e.GetProperty("step_id").GetString() == "merge");
        // (A kill between the join's durable call intent and its commit repeats the call under the same idempotency key.)
        Assert.Single(events.Where(e => PatternTorture.Type(e) == "ToolCallRequested" && e.GetProperty("step_id").GetString() == "merge")
            .Select(e => e.GetProperty("payload").GetProperty("idempotency_key").GetString()).Distinct());
        var lastBranch = events.Last(e => PatternTorture.Type(e) == "BranchEnded").GetProperty("seq").GetInt64();
        var mergeStart = events.First(e => PatternTorture.Type(e) == "StepStarted" && e.GetProperty("step_id").GetString() == "merge").GetProperty("seq").GetInt64();
        Assert.True(mergeStart > lastBranch, "the join started before every branch had ended");

        // Every branch's two effects and the join's, each exactly once.
        var effects = t.ReadEffects();
        var expected = labels.SelectMany(l => new[] { l + ".1", l + ".2", l + ".3" }).Append(string.Join(',', labels)).Order(StringComparer.Ordinal);
        Assert.Equal(expected, effects.Select(e => e.Item).Order(StringComparer.Ordinal));
        var joinCalls = t.CallsPerKey().Where(kv => kv.Key.EndsWith(":merge#1:0", StringComparison.Ordinal)).Sum(kv => kv.Value);
        log.WriteLine($"the join's effect executed {joinCalls} time(s)");

        // Every branch step ran in its branch's scope and succeeded once.
        var succeeded = events.Where(e => PatternTorture.Type(e) == "StepSucceeded").Select(PatternTorture.Visit).ToList();
        foreach (var l in labels)
        {
            foreach (var step in new[] { l, l + "_fx1", l + "_nap1", l + "_fx2", l + "_nap2", l + "_fx3" })
            {
                Assert.Contains(new VisitRef($"fan#1/{l}", step, 1), succeeded);
            }
        }

        await t.AssertCommonAsync(job, events, "fan", "fan#1");

        var show = await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db);
        Assert.Contains($"parallel, join all: {string.Join(", ", labels.Select(l => l + " → succeeded"))}", show.Out, StringComparison.Ordinal);
    }
}

using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Patterns;

/// <summary>
/// A foreach over 12 items (3 at a time), each item a slow step then a side-effecting SQL step, run by a real
/// <c>ordo run</c> process that is killed with SIGKILL at random points and restarted with <c>ordo resume</c>.
/// The job must complete with every item's result in input order, each item's effect applied exactly once, the list
/// mapped once, no step visit succeeding twice, nothing that had succeeded before a kill running again after it, and
/// intact hash chains. Scales with ORDO_TORTURE_SCALE (default 1); ORDO_TORTURE_SEED replays a run.
/// </summary>
[Collection(PatternCrashRuns.Name)]
public sealed class ForeachCrashTests(ITestOutputHelper log)
{
    private const int Items = 12;

    [Fact]
    public Task Foreach_SigkillAtRandomPoints_EveryItemOnceInOrder_NothingFinishedRunsAgain()
        => PatternTorture.RunSeededAsync(log, "foreach crash test", TortureAsync);

    private async Task TortureAsync(int scale, Random random)
    {
        using var w = Workspace.Create();
        var t = new PatternTorture(log, w, random);
        t.WriteProject();
        var items = Enumerable.Range(0, Items).Select(i => $"item-{i:00}").ToList();
        w.Write("input.json", JsonSerializer.Serialize(new { items }));
        w.Write("each.yaml", """
            ordo: 1
            workflow: crash-foreach
            version: 1
            agents:
              sleeper: { kind: code, version: 1, type: "Ordo.TestPlugins.Sleeper" }
            steps:
              - id: each
                foreach: "${ input.items }"
                do: nap
                max_concurrency: 3
                next: after
              - { id: nap, agent: sleeper, input: { ms: 200 }, next: effect }
              - { id: effect, tool: effect.write, args: { item: "${ item }", index: "${ index }" } }
              - { id: after, tool: effect.write, args: { item: "after", index: "${ steps.each.output.length }" } }

            """);

        var job = await t.RunWithKillsAsync(["each.yaml", "--input", "input.json"], kills: 4 * scale, coordinator: "each", maxSteps: 6);

        Assert.True(await t.CompletedAsync(job), $"job {job} did not complete");
        var events = await t.EventsAsync(job);

        // The list was evaluated and the pattern started once; every item ended once, with success.
        Assert.Single(events, e => PatternTorture.Type(e) == "PatternStarted");
        var ended = PatternTorture.EndedBranches(events, "each");
        Assert.Equal(Enumerable.Range(0, Items).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal), ended.Keys.Order(StringComparer.Ordinal));
        Assert.All(ended.Values, s => Assert.Equal("succeeded", s));

        // The foreach output: every item's result, in input order.
        var each = Assert.Single(events, e => PatternTorture.Type(e) == "StepSucceeded" && e.GetProperty("step_id").GetString() == "each");
        var output = each.GetProperty("payload").GetProperty("output");
        Assert.Equal(Items, output.GetArrayLength());
        for (var i = 0; i < Items; i++)
        {
            var row = output[i].GetProperty("rows")[0];
            Assert.Equal(items[i], row.GetProperty("item").GetString());
            Assert.Equal(i, row.GetProperty("idx").GetInt32());
        }

        // Each item's effect exactly once (the idempotency key absorbed repeated executions), plus the step after.
        var effects = t.ReadEffects();
        Assert.Equal(Items + 1, effects.Count);
        Assert.Equal(items.Append("after").Order(StringComparer.Ordinal), effects.Select(e => e.Item).Order(StringComparer.Ordinal));
        Assert.Equal(Items, effects.Single(e => e.Item == "after").Index);
        for (var i = 0; i < Items; i++)
        {
            Assert.EndsWith($":each#1/{i}/effect#1:0", effects.Single(e => e.Item == items[i]).Key, StringComparison.Ordinal);
        }

        // Every item ran nap then effect in its own scope, once successfully.
        var succeeded = events.Where(e => PatternTorture.Type(e) == "StepSucceeded").Select(PatternTorture.Visit).ToList();
        for (var i = 0; i < Items; i++)
        {
            Assert.Contains(new VisitRef($"each#1/{i}", "nap", 1), succeeded);
            Assert.Contains(new VisitRef($"each#1/{i}", "effect", 1), succeeded);
        }

        await t.AssertCommonAsync(job, events, "each", "each#1");

        // The CLI shows the tree: the items' steps with their scope, and the foreach's summary.
        var show = await CliRunner.RunExpectingAsync(0, "show", job, "--db", w.Db);
        Assert.Contains(show.OutLines, l => l.StartsWith("effect [each#1/11]", StringComparison.Ordinal) && l.Contains("succeeded", StringComparison.Ordinal));
        Assert.Contains($"foreach over {Items} items, 3 at once, do nap: succeeded 0–{Items - 1}", show.Out, StringComparison.Ordinal);
    }
}

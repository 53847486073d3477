using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary>
/// The C# builder is equal to the YAML for every coordination pattern: the same workflow written both ways, run with the
/// same agents and input, ends in the same status with the same step outputs and artifacts, through the same events.
/// </summary>
public sealed class BuilderParityTests
{
    private const string Agents = """
        agents:
          echo:       { kind: code, type: T.Echo }
          planner:    { kind: code, type: T.Planner }
          manual:     { kind: code, type: T.Echo }
          search:     { kind: code, type: T.Search, output: found }
          boss:       { kind: code, type: T.Boss }
          researcher: { kind: code, type: T.Search, output: found }
          seeder:     { kind: code, type: T.Seed, output: question }
          alpha:      { kind: code, type: T.Alpha, output: work }
          beta:       { kind: code, type: T.Beta, output: work }
        """;

    private const string Artifacts = """
        artifacts:
          found:    { schema: { type: object, required: [hits] } }
          question: { schema: { type: object, required: [q] } }
          work:     { schema: { type: object, required: [done_by] } }
        """;

    private static WorkflowBuilder Builder(string name) => WorkflowBuilder.Create(name, 1)
        .Artifact("found", """{ "type": "object", "required": ["hits"] }""")
        .Artifact("question", """{ "type": "object", "required": ["q"] }""")
        .Artifact("work", """{ "type": "object", "required": ["done_by"] }""")
        .CodeAgent("echo", "T.Echo")
        .CodeAgent("planner", "T.Planner")
        .CodeAgent("manual", "T.Echo")
        .CodeAgent("search", "T.Search", output: "found")
        .CodeAgent("boss", "T.Boss")
        .CodeAgent("researcher", "T.Search", output: "found")
        .CodeAgent("seeder", "T.Seed", output: "question")
        .CodeAgent("alpha", "T.Alpha", output: "work")
        .CodeAgent("beta", "T.Beta", output: "work");

    private static string Yaml(string name, string steps) => $"ordo: 1\nworkflow: {name}\nversion: 1\n{Artifacts}\n{Agents}\nsteps:\n{steps}";

    public static TheoryData<string> Patterns => ["parallel", "foreach", "workflow", "plan", "plan-fallback", "supervise", "board", "auction", "approval"];

    [Theory]
    [MemberData(nameof(Patterns))]
    public async Task BuilderAndYaml_RunTheSame(string pattern)
    {
        var (yaml, built, input) = Case(pattern);
        var fromYaml = await RunAsync(pattern, h => h.LoadAsync("wf.yaml", yaml), input);
        var fromBuilder = await RunAsync(pattern, _ => Task.FromResult(built()), input);

        Assert.Equal(JobStatus.Completed, fromYaml.Status);
        Assert.Equal(fromYaml.Status, fromBuilder.Status);
        Assert.Equal(fromYaml.Outputs, fromBuilder.Outputs);
        Assert.Equal(fromYaml.Artifacts, fromBuilder.Artifacts);
        Assert.Equal(fromYaml.Events, fromBuilder.Events);
        var explains = pattern switch
        {
            "approval" => EventTypes.ApprovalDecided,
            "parallel" or "foreach" or "workflow" => EventTypes.BranchEnded,
            "plan-fallback" => EventTypes.StepSucceeded + " manual",
            _ => EventTypes.PatternProgressed,
        };
        Assert.Contains(fromYaml.Events, e => e.StartsWith(explains, StringComparison.Ordinal));
    }

    private static (string Yaml, Func<WorkflowDefinition> Built, string Input) Case(string pattern) => pattern switch
    {
        "parallel" => (Yaml("fan", """
              - id: fan
                parallel: [a, b, c]
                join: merge
                join_policy: quorum(2)
              - { id: a, agent: echo, input: { who: a } }
              - { id: b, agent: echo, input: { who: b } }
              - { id: c, agent: echo, input: { who: c, slow: true } }
              - { id: merge, agent: echo, input: { a: "${ steps.a.output }", b: "${ steps.b.output }" } }
            """),
            () => Builder("fan")
                .Step("fan", s => s.Parallel(["a", "b", "c"], join: "merge", joinPolicy: "quorum(2)"))
                .Step("a", s => s.Agent("echo", new { who = "a" }))
                .Step("b", s => s.Agent("echo", new { who = "b" }))
                .Step("c", s => s.Agent("echo", new { who = "c", slow = true }))
                .Step("merge", s => s.Agent("echo", new { a = "${ steps.a.output }", b = "${ steps.b.output }" }))
                .Build(),
            "{}"),
        "foreach" => (Yaml("each", """
              - id: each
                foreach: "${ input.items }"
                do: one
                max_concurrency: 2
                next: after
              - { id: one, agent: echo, input: { item: "${ item }", index: "${ index }" } }
              - { id: after, agent: echo, input: { all: "${ steps.each.output }" } }
            """),
            () => Builder("each")
                .Step("each", s => s.Foreach("${ input.items }", "one", maxConcurrency: 2).Next("after"))
                .Step("one", s => s.Agent("echo", new { item = "${ item }", index = "${ index }" }))
                .Step("after", s => s.Agent("echo", new { all = "${ steps.each.output }" }))
                .Build(),
            """{"items": ["x", "y", "z", "w"]}"""),
        "workflow" => (Yaml("parent", """
              - { id: child, workflow: line@1, input: { q: "${ input.q }" }, next: after }
              - { id: after, agent: echo, input: { got: "${ steps.child.output }" } }
            """),
            () => Builder("parent")
                .Step("child", s => s.Workflow("line@1", new { q = "${ input.q }" }).Next("after"))
                .Step("after", s => s.Agent("echo", new { got = "${ steps.child.output }" }))
                .SubWorkflow(Builder("line").Step("look", s => s.Agent("search", new { q = "${ input.q }" })).Build())
                .Build(),
            """{"q": "ducks"}"""),
        "plan" or "plan-fallback" => (Yaml("planned", """
              - id: make
                plan: { agent: planner, catalog: [search], max_steps: 2, fallback: manual }
                input: { topic: "${ input.topic }" }
                next: done
              - { id: manual, agent: manual, input: { by: hand }, next: done }
              - { id: done, agent: echo, input: { result: "${ steps.make.output }" } }
            """),
            () => Builder("planned")
                .Step("make", s => s.Plan("planner", ["search"], maxSteps: 2, fallback: "manual", input: new { topic = "${ input.topic }" }).Next("done"))
                .Step("manual", s => s.Agent("manual", new { by = "hand" }).Next("done"))
                .Step("done", s => s.Agent("echo", new { result = "${ steps.make.output }" }))
                .Build(),
            pattern == "plan" ? """{"topic": "geese", "steps": 2}""" : """{"topic": "geese", "steps": 3}"""),
        "supervise" => (Yaml("supervised", """
              - id: lead
                supervise: { agent: boss, workers: [researcher], max_rounds: 4 }
                input: { goal: "${ input.goal }" }
            """),
            () => Builder("supervised")
                .Step("lead", s => s.Supervise("boss", ["researcher"], maxRounds: 4, input: new { goal = "${ input.goal }" }))
                .Build(),
            """{"goal": "notes"}"""),
        "board" => (Yaml("blackboard", """
              - { id: seed, agent: seeder, next: board }
              - id: board
                board:
                  rules:
                    - { when: "artifacts.question !== undefined && artifacts.found === undefined", run: researcher }
                  until: "artifacts.found !== undefined"
                  max_firings: 3
            """),
            () => Builder("blackboard")
                .Step("seed", s => s.Agent("seeder").Next("board"))
                .Step("board", s => s.Board([("artifacts.question !== undefined && artifacts.found === undefined", "researcher")], "artifacts.found !== undefined", maxFirings: 3))
                .Build(),
            "{}"),
        "auction" => (Yaml("tender", """
              - id: bid
                auction: { bidders: [alpha, beta], task: "${ input.task }", score: "bid.cost - bid.confidence" }
            """),
            () => Builder("tender")
                .Step("bid", s => s.Auction(["alpha", "beta"], "bid.cost - bid.confidence", task: "${ input.task }"))
                .Build(),
            """{"task": "translate"}"""),
        "approval" => (Yaml("payout", """
              - id: sign
                approval: { role: approver, count: 2, expires: 24h, on_expire: fail, show: ["${ input.amount }"] }
                next: pay
              - { id: pay, agent: echo, input: { approvers: "${ steps.sign.output.approvers }" } }
            """),
            () => Builder("payout")
                .Step("sign", s => s.Approval("approver", count: 2, expires: TimeSpan.FromHours(24), onExpire: Route.Fail, show: new[] { "${ input.amount }" }).Next("pay"))
                .Step("pay", s => s.Agent("echo", new { approvers = "${ steps.sign.output.approvers }" }))
                .Build(),
            """{"amount": 1200}"""),
        _ => throw new ArgumentOutOfRangeException(nameof(pattern)),
    };

    private sealed record Run(JobStatus Status, List<string> Outputs, List<string> Artifacts, List<string> Events);

    private static async Task<Run> RunAsync(string pattern, Func<PatternHarness, Task<WorkflowDefinition>> load, string input)
    {
        // One worker, so that the two runs interleave their branches the same way; approvals on a clock that stands still, so
        // that their recorded times are the same too.
        var time = pattern == "approval" ? new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 9, 0, 0, TimeSpan.Zero)) : TimeProvider.System;
        await using var h = new PatternHarness(NewOptions(workers: 1, time));
        h.Write("line.yaml", "ordo: 1\nworkflow: line\nversion: 1\n" + Artifacts + "\n" + Agents + "\nsteps:\n  - { id: look, agent: search, input: { q: \"${ input.q }\" } }\n");
        h.Agent("T.Echo", input => input);
        h.Agent("T.Search", input => J($$"""{"hits": ["{{(input.TryGetProperty("q", out var q) ? q.GetString() : "any")}}-1"]}"""));
        h.Agent("T.Planner", input =>
        {
            // A plan of as many items as the job's input asks: within max_steps (2) it runs, beyond it the fallback does.
            var n = pattern == "plan-fallback" ? 3 : 2;
            var topic = input.GetProperty("task").GetProperty("topic").GetString();
            var items = Enumerable.Range(0, n).Select(i => Ordo.Json.Of(new { agent = "search", input = new { q = $"{topic}-{i}" } }).GetRawText());
            return J($$"""{"plan": [{{string.Join(",", items)}}]}""");
        });
        h.Agent("T.Boss", input => J(input.GetProperty("round").GetInt32() == 1 ? """{"next": "researcher", "input": {"q": "first"}}""" : """{"next": "done"}"""));
        h.Agent("T.Seed", "{\"q\": \"why?\"}");
        h.Agent("T.Alpha", input => J(input.GetProperty("phase").GetString() == "bid" ? """{"cost": 2, "latency_ms": 5, "confidence": 0.5}""" : """{"done_by": "alpha"}"""));
        h.Agent("T.Beta", input => J(input.GetProperty("phase").GetString() == "bid" ? """{"cost": 1, "latency_ms": 9, "confidence": 0.2}""" : """{"done_by": "beta"}"""));

        var workflow = await load(h);
        var state = await h.RunAsync(workflow, input);
        if (pattern == "approval")
        {
            await h.Runtime.DecideAsync(state.JobId, null, "bob", approve: true, "checked");
            await h.Runtime.DecideAsync(state.JobId, null, "carol", approve: true, "checked too");
            state = await h.ContinueAsync(state.JobId);
        }

        var events = new List<string>();
        foreach (var id in new[] { state.JobId }.Concat((await h.ChildrenAsync(state.JobId)).Select(c => c.JobId)))
        {
            events.AddRange((await h.EventsAsync(id)).Select(e => $"{e.Type} {e.StepId} [{e.Scope}] v{e.Visit} a{e.Attempt}"));
        }

        return new Run(
            state.Status,
            [.. state.Steps.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key} {s.Value.Status} {Raw(s.Value.Output)}")],
            [.. state.Artifacts.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key} {Raw(a.Value.Verified?.Value)}")],
            events);
    }
}

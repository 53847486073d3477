using System.Text.Json;
using Ordo.Configuration;
using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

public sealed class WorkflowBuilderTests
{
    private static readonly ExpressionEvaluator Evaluator = new();

    private static WorkflowBuilder Agents(string name = "demo", int version = 1) => WorkflowBuilder.Create(name, version)
        .CodeAgent("a", "Acme.A", output: "result")
        .CodeAgent("b", "Acme.B")
        .CodeAgent("c", "Acme.C");

    private static IReadOnlyList<ValidationProblem> Problems(WorkflowBuilder builder, WorkflowLoadOptions? options = null)
        => Assert.Throws<OrdoValidationException>(() => builder.Build(options)).Problems;

    private static ValidationProblem Problem(IReadOnlyList<ValidationProblem> problems, string path, string message)
    {
        var matches = problems.Where(p => p.Path == path && p.Message.Contains(message, StringComparison.Ordinal)).ToList();
        Assert.True(matches.Count == 1, $"expected one problem at '{path}' containing '{message}', found {matches.Count} in:\n{string.Join("\n", problems)}");
        return matches[0];
    }

    private static JsonElement Json(string text) => JsonElementFactory.Parse(text);

    [Fact]
    public void Build_EveryStepKind_GivesTheSameDefinitionsAsYaml()
    {
        var wf = Agents()
            .Artifact("result", """{ "type": "object" }""")
            .Step("agent", s => s.Agent("a", new { invoices = "${ input.invoices }" }).Next("tool"))
            .Step("tool", s => s.Tool("ledger.post", new { lines = "${ artifacts.result.lines }" }, output: "posting").Next("map"))
            .Step("map", s => s.Transform("total", "${ input.n * 2 }").Next("gate"))
            .Step("gate", s => s.Gate("result", check: "${ artifact.ok }", validator: "b", onReject: "approve").Next("approve"))
            .Step("approve", s => s.Approval("approver", count: 2, expires: TimeSpan.FromHours(24), show: new[] { "${ artifacts.result }" }).Next("fan"))
            .Step("fan", s => s.Parallel(["left", "right"], join: "merge", joinPolicy: "quorum(1)").Next("each"))
            .Step("left", s => s.Agent("b"))
            .Step("right", s => s.Agent("c"))
            .Step("merge", s => s.Agent("a"))
            .Step("each", s => s.Foreach("${ input.lines }", "line", maxConcurrency: 3).Next("child"))
            .Step("line", s => s.Agent("b", new { line = "${ item }" }))
            .Step("child", s => s.Workflow("invoice-line@2", new { id = "${ input.id }" }).Next("plan"))
            .Step("plan", s => s.Plan("a", ["b", "c"], maxSteps: 4, fallback: "manual").Next("lead"))
            .Step("manual", s => s.Agent("c"))
            .Step("lead", s => s.Supervise("a", ["b", "c"], maxRounds: 3).Next("board"))
            .Step("board", s => s.Board([("artifacts.result === undefined", "a")], "artifacts.result !== undefined", maxFirings: 5).Next("bid"))
            .Step("bid", s => s.Auction(["b", "c"], "bid.cost - bid.confidence", task: "${ input.task }").Next("code"))
            .Step("code", s => s.Code(_ => Ordo.Json.Of(new { ok = true }), output: "checked").Next(Route.End))
            .Project(ProjectWithTool("ledger.post"))
            .SubWorkflow(WorkflowBuilder.Create("invoice-line", 2).Step("only", s => s.Transform("line", "${ input }")).Build())
            .Build();

        Assert.Equal("invoice-line@2", Assert.Single(wf.SubWorkflows).Key);
        Assert.Equal(
            ["agent", "tool", "transform", "gate", "approval", "parallel", "agent", "agent", "agent", "foreach", "agent", "workflow", "plan", "agent", "supervise", "board", "auction", "code"],
            wf.Steps.Select(s => s.Kind));
        var scope = new ExpressionScope { Input = Json("""{"invoices": [1], "n": 21, "lines": [5, 6], "id": "X", "task": "t"}""") };
        Assert.Equal("""{"invoices":[1]}""", Assert.IsType<AgentStep>(wf.GetStep("agent")).Input!.Evaluate(Evaluator, scope).GetRawText());
        Assert.Equal("posting", Assert.IsType<ToolStep>(wf.GetStep("tool")).Output);
        Assert.Equal("42", Assert.IsType<TransformStep>(wf.GetStep("map")).Set[0].Value.Evaluate(Evaluator, scope).GetRawText());
        var gate = Assert.IsType<GateStep>(wf.GetStep("gate"));
        Assert.Equal(("result", "b", "approve"), (gate.Artifact, gate.Validator, gate.OnReject));
        Assert.Equal("artifact.ok", gate.Check!.Source.Trim());
        var approval = Assert.IsType<ApprovalStep>(wf.GetStep("approve"));
        Assert.Equal((2, TimeSpan.FromHours(24)), (approval.Count, approval.Expires));
        var fan = Assert.IsType<ParallelStep>(wf.GetStep("fan"));
        Assert.Equal(("merge", "quorum(1)"), (fan.Join, fan.JoinPolicy.ToString()));
        var each = Assert.IsType<ForeachStep>(wf.GetStep("each"));
        Assert.Equal(("line", 3), (each.Do, each.MaxConcurrency));
        Assert.Equal("[5,6]", each.Items.Evaluate(Evaluator, scope).GetRawText());
        Assert.Equal(new WorkflowReference("invoice-line", 2), Assert.IsType<SubWorkflowStep>(wf.GetStep("child")).Workflow);
        Assert.Equal(("manual", 4), (Assert.IsType<PlanStep>(wf.GetStep("plan")).Fallback, Assert.IsType<PlanStep>(wf.GetStep("plan")).MaxSteps));
        Assert.Equal(3, Assert.IsType<SuperviseStep>(wf.GetStep("lead")).MaxRounds);
        Assert.Equal(5, Assert.IsType<BoardStep>(wf.GetStep("board")).MaxFirings);
        Assert.Equal(["b", "c"], Assert.IsType<AuctionStep>(wf.GetStep("bid")).Bidders);
        Assert.Equal("checked", Assert.IsType<CodeStep>(wf.GetStep("code")).Output);
    }

    [Fact]
    public void Build_CommonSettings_AreApplied()
    {
        var wf = Agents()
            .Step("one", s => s.Agent("a")
                .Describe("first")
                .Retry(4, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10), "escalate_tier")
                .Timeout(TimeSpan.FromSeconds(30))
                .AcceptsQuarantined()
                .EscalateOnFailure()
                .Loop(3)
                .When("input.again", "one")
                .Next(Route.End))
            .Build();

        var step = wf.Entry;
        Assert.Equal("first", step.Description);
        Assert.Equal((4, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10)), (step.Retry.MaxAttempts, step.Retry.Backoff, step.Retry.MaxBackoff));
        Assert.Equal(["escalate_tier"], step.Retry.Vary);
        Assert.Equal(TimeSpan.FromSeconds(30), step.Timeout);
        Assert.True(step.AcceptsQuarantined);
        Assert.Equal(FailureAction.Escalate, step.OnFailure);
        Assert.Equal(3, step.MaxIterations);
        Assert.Equal(["one", "end"], step.Next.Select(r => r.Target));
        Assert.True(Evaluator.EvaluateBoolean(step.Next[0].When!, new ExpressionScope { Input = Json("""{"again": true}""") }));
        Assert.Null(step.Next[1].When);
    }

    [Fact]
    public void Build_FirstStepIsTheEntry()
    {
        var wf = Agents().Step("b-first", s => s.Agent("b").Next("a-second")).Step("a-second", s => s.Agent("a")).Build();

        Assert.Equal("b-first", wf.Entry.Id);
        Assert.Equal("demo@1", wf.Ref);
    }

    [Fact]
    public void Build_DefinitionHasAStableNonEmptyHash()
    {
        static WorkflowDefinition Make() => Agents()
            .Artifact("result", """{ "type": "object" }""", evidenceRequired: true, minConfidence: 0.8)
            .Step("one", s => s.Agent("a", new { x = "${ input.x }" }).Next("two"))
            .Step("two", s => s.Transform("total", "${ steps.one.output.v + 1 }"))
            .Build();

        var first = Make();
        var second = Make();

        Assert.StartsWith("sha256:", first.Hash, StringComparison.Ordinal);
        Assert.Equal(71, first.Hash.Length);
        Assert.Equal(first.Hash, second.Hash);
        Assert.Equal(first.Hash, first.Bundle!.ComputeHash());
        Assert.Equal("demo@1", first.Bundle.Entry);
        Assert.NotNull(first.Bundle.CodeDefined);
        Assert.Empty(first.Bundle.Files);
    }

    [Fact]
    public async Task Build_DescriptionLeavesOutEmptyProperties_AndJobsOfEarlierBuildsStillFindTheDefinition()
    {
        var definition = WorkflowBuilder.Create("compat", 1)
            .Step("one", s => s.Code(_ => Ordo.Json.Of(new { ok = true })).Next("two"))
            .Step("two", s => s.Transform("total", "${ 1 }"))
            .Build();

        Assert.DoesNotContain("null", definition.Bundle!.CodeDefined, StringComparison.Ordinal);
        // The hash builds before the compact description gave this very definition (its jobs recorded it).
        const string earlier = "sha256:515d260e1819566ff95549332f10eaae972b12dfdb40e991af2153d3ac2d3ee2";
        Assert.NotEqual(earlier, definition.Hash);
        Assert.Equal([earlier], definition.PreviousHashes);

        var registry = new Ordo.Engine.WorkflowRegistry();
        registry.Register(definition);
        await using var store = new Ordo.Testing.InMemoryOrdoStore();
        Assert.Same(definition, await registry.GetAsync(store, earlier, new WorkflowLoadOptions(), CancellationToken.None));
        Assert.Same(definition, await registry.GetAsync(store, definition.Hash, new WorkflowLoadOptions(), CancellationToken.None));
        Assert.Same(definition, Assert.Single(registry.Registered));
    }

    [Fact]
    public void Build_AParentOfACodeBuiltChild_KeepsTheHashEarlierBuildsGaveIt()
    {
        var child = WorkflowBuilder.Create("child", 1)
            .Step("c1", s => s.Code(_ => Ordo.Json.Of(new { ok = true })))
            .Build();
        var parent = WorkflowBuilder.Create("parent", 1)
            .SubWorkflow(child)
            .Step("p1", s => s.Workflow("child@1").Next("p2"))
            .Step("p2", s => s.Transform("out", new Dictionary<string, object?> { ["k"] = null, ["v"] = "${ 1 }" }))
            .Build();

        // What builds before the compact description gave them: the parent's named its child by the child's full hash.
        Assert.Equal(["sha256:55ab8281db1ae5edeea8727e71ac1a3ea3a9e2a3cc672b24edbfaf3fb2cd146c"], child.PreviousHashes);
        Assert.Equal(["sha256:af3dce753ac4d9699811c73c3e5da0d9591a4631789b0bcab6e001ddb9dec5e6"], parent.PreviousHashes);
    }

    [Fact]
    public void Build_ANullInsideAValueTheWorkflowGives_IsPartOfItsHash()
    {
        static WorkflowDefinition With(Dictionary<string, object?> value) => WorkflowBuilder.Create("values", 1)
            .Step("one", s => s.Transform("out", value))
            .Build();

        var withNull = With(new Dictionary<string, object?> { ["k"] = null, ["v"] = "${ 1 }" });
        var without = With(new Dictionary<string, object?> { ["v"] = "${ 1 }" });

        Assert.NotEqual(withNull.Hash, without.Hash);
        Assert.Contains("null", withNull.Bundle!.CodeDefined, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_HashDoesNotDependOnTheCurrentDirectoryOrBuilder()
    {
        var a = Agents().Step("one", s => s.Agent("a")).Build();
        var b = Agents().Project(ProjectDefinition.Empty(Path.GetTempPath())).Step("one", s => s.Agent("a")).Build();

        Assert.Equal(a.Hash, b.Hash);
    }

    public static TheoryData<string, Func<WorkflowBuilder>, Func<WorkflowBuilder>> DifferentGraphs => new()
    {
        { "route target", () => Agents().Step("x", s => s.Agent("a").Next("y")).Step("y", s => s.Agent("b")).Step("z", s => s.Agent("c")),
                          () => Agents().Step("x", s => s.Agent("a").Next("z")).Step("y", s => s.Agent("b")).Step("z", s => s.Agent("c")) },
        { "route condition", () => Agents().Step("x", s => s.Agent("a").When("input.a", "end")),
                             () => Agents().Step("x", s => s.Agent("a").When("input.b", "end")) },
        { "agent input", () => Agents().Step("x", s => s.Agent("a", new { v = "${ input.a }" })),
                         () => Agents().Step("x", s => s.Agent("a", new { v = "${ input.b }" })) },
        { "transform value", () => Agents().Step("x", s => s.Transform("t", "${ input.a }")),
                             () => Agents().Step("x", s => s.Transform("t", "${ input.b }")) },
        { "parallel branches", () => Agents().Step("p", s => s.Parallel(["l", "r"])).Step("l", s => s.Agent("a")).Step("r", s => s.Agent("b")),
                               () => Agents().Step("p", s => s.Parallel(["l"])).Step("l", s => s.Agent("a")).Step("r", s => s.Agent("b")) },
        { "join policy", () => Agents().Step("p", s => s.Parallel(["l", "r"], joinPolicy: "all")).Step("l", s => s.Agent("a")).Step("r", s => s.Agent("b")),
                         () => Agents().Step("p", s => s.Parallel(["l", "r"], joinPolicy: "any")).Step("l", s => s.Agent("a")).Step("r", s => s.Agent("b")) },
        { "foreach target", () => Agents().Step("f", s => s.Foreach("${ input.l }", "d")).Step("d", s => s.Agent("a")).Step("e", s => s.Agent("b")),
                            () => Agents().Step("f", s => s.Foreach("${ input.l }", "e")).Step("d", s => s.Agent("a")).Step("e", s => s.Agent("b")) },
        { "retry", () => Agents().Step("x", s => s.Agent("a").Retry(2)),
                   () => Agents().Step("x", s => s.Agent("a").Retry(3)) },
        { "timeout", () => Agents().Step("x", s => s.Agent("a").Timeout(TimeSpan.FromSeconds(1))),
                     () => Agents().Step("x", s => s.Agent("a").Timeout(TimeSpan.FromSeconds(2))) },
        { "gate check", () => Agents().Step("x", s => s.Gate("result", "artifact.ok")),
                        () => Agents().Step("x", s => s.Gate("result", "!artifact.ok")) },
        { "agent version", () => WorkflowBuilder.Create("demo", 1).CodeAgent("a", "Acme.A", version: 1).Step("x", s => s.Agent("a")),
                           () => WorkflowBuilder.Create("demo", 1).CodeAgent("a", "Acme.A", version: 2).Step("x", s => s.Agent("a")) },
        { "agent type", () => WorkflowBuilder.Create("demo", 1).CodeAgent("a", "Acme.A").Step("x", s => s.Agent("a")),
                        () => WorkflowBuilder.Create("demo", 1).CodeAgent("a", "Acme.B").Step("x", s => s.Agent("a")) },
        { "artifact schema", () => Agents().Artifact("result", """{ "type": "object" }""").Step("x", s => s.Agent("a")),
                             () => Agents().Artifact("result", """{ "type": "array" }""").Step("x", s => s.Agent("a")) },
        { "version", () => Agents("demo", 1).Step("x", s => s.Agent("a")),
                     () => Agents("demo", 2).Step("x", s => s.Agent("a")) },
    };

    [Theory]
    [MemberData(nameof(DifferentGraphs))]
    public void Build_DifferentGraphs_HaveDifferentHashes(string difference, Func<WorkflowBuilder> one, Func<WorkflowBuilder> other)
        => Assert.True(one().Build().Hash != other().Build().Hash, $"the hash ignores the {difference}");

    [Theory]
    [InlineData("next")]
    [InlineData("when")]
    public void Build_DanglingRoute_IsReported(string how)
    {
        var builder = Agents().Step("one", s => { s.Agent("a"); if (how == "next") s.Next("nowhere"); else s.When("true", "nowhere"); });

        var p = Assert.Single(Problems(builder));

        Assert.StartsWith("steps[one].next", p.Path, StringComparison.Ordinal);
        Assert.Contains("'nowhere' is not a step", p.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("agent")]
    [InlineData("tool")]
    [InlineData("parallel")]
    [InlineData("join")]
    [InlineData("do")]
    [InlineData("fallback")]
    [InlineData("catalog")]
    [InlineData("workers")]
    [InlineData("bidders")]
    [InlineData("board")]
    [InlineData("gate.artifact")]
    [InlineData("gate.on_reject")]
    public void Build_DanglingReference_IsReported(string kind)
    {
        var builder = Agents().Step("one", s => _ = kind switch
        {
            "agent" => s.Agent("ghost"),
            "tool" => s.Tool("ghost"),
            "parallel" => s.Parallel(["ghost"]),
            "join" => s.Parallel(["two"], join: "ghost"),
            "do" => s.Foreach("${ input.l }", "ghost"),
            "fallback" => s.Plan("a", ["b"], fallback: "ghost"),
            "catalog" => s.Plan("a", ["ghost"]),
            "workers" => s.Supervise("a", ["ghost"]),
            "bidders" => s.Auction(["ghost"], "bid.cost"),
            "board" => s.Board([("true", "ghost")], "true"),
            "gate.artifact" => s.Gate("ghost", "true"),
            _ => s.Gate("result", "true", onReject: "ghost"),
        }).Step("two", s => s.Agent("b"));

        var p = Assert.Single(Problems(builder));

        Assert.StartsWith("steps[one].", p.Path, StringComparison.Ordinal);
        Assert.Contains("ghost", p.Message, StringComparison.Ordinal);
        Assert.Null(p.File);
    }

    [Fact]
    public void Build_DuplicateIds_AreReported()
    {
        var p = Assert.Single(Problems(Agents().Step("one", s => s.Agent("a")).Step("one", s => s.Agent("b"))));

        Assert.Equal("steps[one]", p.Path);
        Assert.Contains("used twice", p.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("end")]
    [InlineData("fail")]
    [InlineData("has space")]
    [InlineData("")]
    public void Build_InvalidStepId_IsReported(string id)
        => Assert.Contains("not a valid step id", Assert.Single(Problems(Agents().Step(id, s => s.Agent("a")))).Message, StringComparison.Ordinal);

    [Fact]
    public void Build_UnboundedLoop_ReportsEveryStepOfTheCycle()
    {
        var builder = Agents()
            .Step("start", s => s.Agent("a").Next("draft"))
            .Step("draft", s => s.Agent("a").Next("review"))
            .Step("review", s => s.Agent("b").When("steps.review.output.ok", Route.End).Next("draft"));

        var problems = Problems(builder);

        Assert.Equal(2, problems.Count);
        Problem(problems, "steps[draft]", "can be reached again");
        Problem(problems, "steps[review]", "can be reached again");
    }

    [Fact]
    public void Build_BoundedLoop_IsValid()
    {
        var wf = Agents()
            .Step("draft", s => s.Agent("a").Next("review").Loop(3))
            .Step("review", s => s.Agent("b").Loop(3).When("steps.review.output.ok", Route.End).Next("draft"))
            .Build();

        Assert.Equal(2, wf.Steps.Count);
    }

    [Fact]
    public void Build_SelfLoopWithoutBound_IsReported()
        => Problem(Problems(Agents().Step("poll", s => s.Agent("a").When("!steps.poll.output.ready", "poll"))), "steps[poll]", "can be reached again");

    [Fact]
    public void Build_StepWithoutKind_IsReported()
        => Problem(Problems(Agents().Step("one", s => s.Next(Route.End))), "steps[one]", "has no kind");

    [Fact]
    public void Build_StepWithTwoKinds_IsReportedByBuild()
    {
        var builder = Agents().Step("one", s => s.Agent("a").Tool("ledger.post"));

        Problem(Problems(builder), "steps[one]", "exactly one kind");
    }

    [Fact]
    public void Build_NoSteps_IsReported()
        => Problem(Problems(WorkflowBuilder.Create("empty", 1)), "steps", "at least one step");

    [Theory]
    [InlineData("when")]
    [InlineData("gate")]
    [InlineData("board")]
    [InlineData("auction")]
    [InlineData("template")]
    [InlineData("unclosed")]
    public void Build_InvalidExpressions_AreReportedByBuild(string where)
    {
        var builder = Agents().Step("one", s => _ = where switch
        {
            "when" => s.Agent("a").When("input.x >", Route.End),
            "gate" => s.Gate("result", "artifact.ok &&"),
            "board" => s.Board([("(", "a")], "true"),
            "auction" => s.Auction(["a"], "bid.cost +"),
            "template" => s.Transform("t", "${ input.x + }"),
            _ => s.Agent("a", new { v = "${ input.x" }),
        });

        var p = Assert.Single(Problems(builder));
        Assert.Equal("steps[one]", p.Path);
    }

    [Theory]
    [InlineData("retry")]
    [InlineData("backoff")]
    [InlineData("vary")]
    [InlineData("loop")]
    [InlineData("timeout")]
    [InlineData("approval")]
    [InlineData("join policy")]
    [InlineData("quorum")]
    [InlineData("max concurrency")]
    [InlineData("workflow reference")]
    [InlineData("gate")]
    public void Build_InvalidSettings_AreReported(string what)
    {
        var builder = Agents().Step("one", s => _ = what switch
        {
            "retry" => s.Agent("a").Retry(0),
            "backoff" => s.Agent("a").Retry(3, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1)),
            "vary" => s.Agent("a").Retry(3, vary: "louder"),
            "loop" => s.Agent("a").Loop(0),
            "timeout" => s.Agent("a").Timeout(TimeSpan.Zero),
            "approval" => s.Approval("approver", count: 0),
            "join policy" => s.Parallel(["two"], joinPolicy: "most"),
            "quorum" => s.Parallel(["two"], joinPolicy: "quorum(2)"),
            "max concurrency" => s.Foreach("${ input.l }", "two", maxConcurrency: 0),
            "workflow reference" => s.Workflow("Child@x"),
            _ => s.Gate("result"),
        }).Step("two", s => s.Agent("b"));

        var p = Assert.Single(Problems(builder));
        Assert.Equal("steps[one]", p.Path);
    }

    [Fact]
    public void Build_ReportsEveryProblemAtOnce()
    {
        var builder = Agents()
            .Step("one", s => s.Agent("ghost").Next("nowhere"))
            .Step("one", s => s.Agent("a"))
            .Step("two", s => s.Transform("t", "${ ) }"))
            .Step("three", s => s.Agent("a").Next("three"));

        var problems = Problems(builder);

        Problem(problems, "steps[one].agent", "agent 'ghost' is not defined");
        Problem(problems, "steps[one].next", "'nowhere' is not a step");
        Problem(problems, "steps[one]", "used twice");
        Problem(problems, "steps[two]", "invalid expression");
        Problem(problems, "steps[three]", "can be reached again");
    }

    [Fact]
    public void Build_CodeAgentRegistry_IsConsulted()
    {
        var builder = Agents().Step("one", s => s.Agent("a"));

        var p = Assert.Single(Problems(builder, new WorkflowLoadOptions { CodeAgentExists = t => t != "Acme.B" }));

        Assert.Equal("agents.b.type", p.Path);
        Assert.Contains("'Acme.B' is not registered", p.Message, StringComparison.Ordinal);
        builder.Build(new WorkflowLoadOptions { CodeAgentExists = _ => true });
    }

    [Fact]
    public async Task Build_LlmAgentTier_MustBeConfiguredInTheProject()
    {
        using var ws = new TempWorkspace();
        ws.Write("ordo.yaml", "models: { fast: { provider: ollama, model: m } }\n");
        var project = await WorkflowLoader.LoadProjectAsync(ws.PathOf("ordo.yaml"));
        WorkflowBuilder Make(string tier) => WorkflowBuilder.Create("llm", 1)
            .Agent(new AgentDefinition { Name = "x", Kind = AgentKind.Llm, Tier = tier })
            .Project(project)
            .Step("one", s => s.Agent("x"));

        Make("fast").Build();
        var p = Assert.Single(Problems(Make("turbo")));

        Assert.Equal("agents.x.tier", p.Path);
        Assert.Contains("model tier 'turbo' is not configured (defined: fast)", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_HttpAgentUrl_MustBeAbsolute()
    {
        var builder = WorkflowBuilder.Create("h", 1)
            .Agent(new AgentDefinition { Name = "x", Kind = AgentKind.Http, Url = "/agents/x" })
            .Step("one", s => s.Agent("x"));

        Assert.Equal("agents.x.url", Assert.Single(Problems(builder)).Path);
    }

    [Fact]
    public async Task Build_ToolSteps_UseTheToolsOfTheProject()
    {
        using var ws = new TempWorkspace();
        ws.Write("ordo.yaml", "tools: [tools.yaml]\n");
        ws.Write("tools.yaml", "tools:\n  calc.sum: { kind: code, effect: read }\n");
        var project = await WorkflowLoader.LoadProjectAsync(ws.PathOf("ordo.yaml"));

        var wf = WorkflowBuilder.Create("tools", 1).Project(project).Step("sum", s => s.Tool("calc.sum", new { a = 1 })).Build();

        Assert.Same(project, wf.Project);
        Assert.Equal("""{"a":1}""", Assert.IsType<ToolStep>(wf.Entry).Args!.Evaluate(Evaluator, new ExpressionScope()).GetRawText());
        Problem(Problems(WorkflowBuilder.Create("tools", 1).Project(project).Step("sum", s => s.Tool("calc.summ"))), "steps[sum].tool", "tool 'calc.summ' is not defined");
    }

    [Fact]
    public void Chain_RoutesEachCodeStepToTheNext()
    {
        static ValueTask<JsonElement> Run(CodeStepContext ctx, CancellationToken ct) => ValueTask.FromResult(Ordo.Json.Of(new { ok = true }));
        var wf = WorkflowBuilder.Create("chain", 1).Chain([("a", Run), ("b", Run), ("c", Run)]).Build();

        Assert.Equal(["b", "c"], wf.Steps.Take(2).Select(s => Assert.Single(s.Next).Target));
        Assert.Empty(wf.Steps[2].Next);
    }

    [Fact]
    public void Header_SettingsAreKept()
    {
        var constraints = new JobConstraints { Deadline = TimeSpan.FromMinutes(10), MaxCost = 2m, Flags = new Dictionary<string, bool> { ["no_web"] = true } };
        var wf = Agents()
            .Describe("described")
            .Input("""{ "type": "object", "required": ["n"] }""")
            .Constraints(constraints)
            .Artifact("result", """{ "type": "object" }""", evidenceRequired: true, minConfidence: 0.75)
            .Step("one", s => s.Agent("a"))
            .Build();

        Assert.Equal("described", wf.Description);
        Assert.NotEmpty(wf.InputSchema!.Validate(Json("{}")));
        Assert.Same(constraints, wf.Constraints);
        Assert.True(wf.Artifacts["result"].EvidenceRequired);
        Assert.Equal(0.75, wf.Artifacts["result"].MinConfidence);
        Assert.Equal(AgentKind.Code, wf.Agents["a"].Kind);
    }

    [Theory]
    [InlineData("Invoice")]
    [InlineData("with_underscore")]
    [InlineData("")]
    public void Create_InvalidName_Throws(string name)
        => Assert.Throws<ArgumentException>(() => WorkflowBuilder.Create(name, 1));

    [Fact]
    public void Create_VersionBelowOne_Throws()
        => Assert.Throws<ArgumentOutOfRangeException>(() => WorkflowBuilder.Create("ok", 0));

    [Fact]
    public void Input_InvalidSchema_Throws()
        => Assert.Throws<InvalidDataException>(() => WorkflowBuilder.Create("ok", 1).Input("{ not json"));

    private static ProjectDefinition ProjectWithTool(string name) => new()
    {
        BaseDirectory = Path.GetTempPath(),
        Tools = new Dictionary<string, Ordo.Tools.ToolDefinition> { [name] = new() { Name = name, Kind = "code" } },
    };
}

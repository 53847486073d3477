using System.Text.Json;
using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>Step kinds, their keys and the keys common to every step.</summary>
public sealed partial class WorkflowLoaderTests
{
    private async Task<T> LoadStepAsync<T>(string steps, string? extra = null, int index = 0) where T : StepDefinition
    {
        _ws.Write("wf.yaml", Workflow(steps, extra));
        var wf = await _ws.LoadAsync();
        return Assert.IsType<T>(wf.Steps[index]);
    }

    [Fact]
    public async Task AgentStep_ReadsAgentAndInputTemplate()
    {
        var step = await LoadStepAsync<AgentStep>("""
              - id: extract
                agent: a
                input: { invoices: "${ input.invoices }", count: "${ input.invoices.length }", label: "n=${ input.invoices.length }", fixed: 3, flag: true, name: x }
            """);

        Assert.Equal("a", step.Agent);
        var value = Eval(step.Input, new ExpressionScope { Input = TestJson("""{"invoices": [{"id": 1}, {"id": 2}]}""") });
        Assert.Equal("""{"invoices":[{"id":1},{"id":2}],"count":2,"label":"n=2","fixed":3,"flag":true,"name":"x"}""", value.GetRawText());
    }

    [Fact]
    public async Task AgentStep_WithoutInput_HasNoInputTemplate()
    {
        var step = await LoadStepAsync<AgentStep>("  - { id: one, agent: a }");
        Assert.Null(step.Input);
    }

    [Fact]
    public async Task ConstantValues_KeepTheirYamlTypes()
    {
        var step = await LoadStepAsync<AgentStep>("""
              - id: one
                agent: a
                input: { int: 3, neg: -2, float: 2.5, yes: true, no: false, nil: null, tilde: ~, quoted: "3", word: yes, date: 2024-01-01, list: [1, "a", null], deep: { k: [ { v: 1.0 } ] } }
            """);

        Assert.True(step.Input!.IsConstant);
        Assert.Equal("""{"int":3,"neg":-2,"float":2.5,"yes":true,"no":false,"nil":null,"tilde":null,"quoted":"3","word":"yes","date":"2024-01-01","list":[1,"a",null],"deep":{"k":[{"v":1}]}}""", Eval(step.Input).GetRawText());
    }

    [Fact]
    public async Task ToolStep_ReadsToolArgsAndOutput()
    {
        WriteProject();
        var step = await LoadStepAsync<ToolStep>("""
              - id: post
                tool: ledger.post
                args: { lines: "${ input.lines }", note: "posted ${ input.lines.length } lines" }
                output: posting
            """);

        Assert.Equal("ledger.post", step.Tool);
        Assert.Equal("posting", step.Output);
        Assert.Equal("""{"lines":[1,2],"note":"posted 2 lines"}""", Eval(step.Args, new ExpressionScope { Input = TestJson("""{"lines": [1, 2]}""") }).GetRawText());
    }

    [Fact]
    public async Task TransformStep_ReadsEveryArtifactOfSet()
    {
        var step = await LoadStepAsync<TransformStep>("""
              - id: map
                transform:
                  set:
                    total: "${ input.lines.reduce((s, l) => s + l, 0) }"
                    summary: { count: "${ input.lines.length }", source: fixed }
            """);

        Assert.Equal(["total", "summary"], step.Set.Select(kv => kv.Key));
        var scope = new ExpressionScope { Input = TestJson("""{"lines": [1, 2, 3]}""") };
        Assert.Equal("6", Eval(step.Set[0].Value, scope).GetRawText());
        Assert.Equal("""{"count":3,"source":"fixed"}""", Eval(step.Set[1].Value, scope).GetRawText());
    }

    [Fact]
    public async Task GateStep_ReadsArtifactCheckValidatorAndOnReject()
    {
        var step = await LoadStepAsync<GateStep>("""
              - id: produce
                agent: a
                next: check
              - id: check
                gate: { artifact: result, check: "artifact.confidence >= 0.8", validator: b, on_reject: redo }
              - id: redo
                agent: c
            """, index: 1);

        Assert.Equal("result", step.Artifact);
        Assert.Equal("artifact.confidence >= 0.8", step.Check!.Source);
        Assert.Equal("b", step.Validator);
        Assert.Equal("redo", step.OnReject);
    }

    [Fact]
    public async Task GateStep_CheckAsTemplateAndDefaultOnReject()
    {
        var step = await LoadStepAsync<GateStep>("""
              - id: produce
                agent: a
                next: check
              - id: check
                gate: { artifact: result, check: "${ artifact.ok }" }
            """, index: 1);

        Assert.Equal("artifact.ok", step.Check!.Source.Trim());
        Assert.Equal(Route.Fail, step.OnReject);
        Assert.Null(step.Validator);
    }

    [Fact]
    public async Task ApprovalStep_ReadsRoleCountExpiresOnExpireAndShow()
    {
        var step = await LoadStepAsync<ApprovalStep>("""
              - id: approve
                approval: { role: approver, count: 2, expires: 24h, on_expire: fail, show: ["${ input.amount }", "fixed"] }
            """);

        Assert.Equal("approver", step.Role);
        Assert.Equal(2, step.Count);
        Assert.Equal(TimeSpan.FromHours(24), step.Expires);
        Assert.Equal(Route.Fail, step.OnExpire);
        Assert.Equal("""[12.5,"fixed"]""", Eval(step.Show, new ExpressionScope { Input = TestJson("""{"amount": 12.5}""") }).GetRawText());
    }

    [Fact]
    public async Task ApprovalStep_Defaults()
    {
        var step = await LoadStepAsync<ApprovalStep>("  - { id: approve, approval: { role: approver } }");
        Assert.Equal(1, step.Count);
        Assert.Null(step.Expires);
        Assert.Equal(Route.Fail, step.OnExpire);
        Assert.Null(step.Show);
    }

    [Theory]
    [InlineData("all", "all", 0)]
    [InlineData("any", "any", 1)]
    [InlineData("quorum(2)", "quorum", 2)]
    [InlineData("quorum( 3 )", "quorum", 3)]
    public async Task ParallelStep_ReadsBranchesJoinAndJoinPolicy(string policy, string mode, int quorum)
    {
        var step = await LoadStepAsync<ParallelStep>($"""
              - id: fan
                parallel: [one, two, three]
                join: merge
                join_policy: {policy}
              - {"{"} id: one, agent: a {"}"}
              - {"{"} id: two, agent: b {"}"}
              - {"{"} id: three, agent: c {"}"}
              - {"{"} id: merge, agent: a {"}"}
            """);

        Assert.Equal(["one", "two", "three"], step.Branches);
        Assert.Equal("merge", step.Join);
        Assert.Equal(mode, step.JoinPolicy.Mode);
        Assert.Equal(quorum, step.JoinPolicy.Quorum);
        Assert.Equal(policy.Replace(" ", "", StringComparison.Ordinal), step.JoinPolicy.ToString());
    }

    [Fact]
    public async Task ParallelStep_DefaultsToJoinAll()
    {
        var step = await LoadStepAsync<ParallelStep>("""
              - { id: fan, parallel: [one, two] }
              - { id: one, agent: a }
              - { id: two, agent: b }
            """);

        Assert.Same(JoinPolicy.All, step.JoinPolicy);
        Assert.Null(step.Join);
    }

    [Fact]
    public async Task ForeachStep_ReadsItemsDoAndMaxConcurrency()
    {
        var step = await LoadStepAsync<ForeachStep>("""
              - id: each
                foreach: "${ input.lines }"
                do: handle
                max_concurrency: 4
              - { id: handle, agent: a, input: { line: "${ item }", at: "${ index }" } }
            """);

        Assert.Equal("handle", step.Do);
        Assert.Null(step.DoWorkflow);
        Assert.Equal(4, step.MaxConcurrency);
        Assert.Equal("[1,2]", Eval(step.Items, new ExpressionScope { Input = TestJson("""{"lines": [1, 2]}""") }).GetRawText());
    }

    [Fact]
    public async Task ForeachStep_DoWorkflowReference_RunsASubWorkflowPerItem()
    {
        WriteChild("invoice-line", 2);
        var step = await LoadStepAsync<ForeachStep>("""
              - { id: each, foreach: "${ input.lines }", do: invoice-line@2 }
            """);

        Assert.Null(step.Do);
        Assert.Equal(new WorkflowReference("invoice-line", 2), step.DoWorkflow);
        Assert.Equal("invoice-line@2", step.DoWorkflow!.ToString());
        Assert.Equal(8, step.MaxConcurrency);
    }

    [Fact]
    public async Task SubWorkflowStep_ReadsReferenceAndInput()
    {
        WriteChild("invoice-line", 3);
        var step = await LoadStepAsync<SubWorkflowStep>("""
              - { id: child, workflow: invoice-line@3, input: { line: "${ input.lines[0] }" } }
            """);

        Assert.Equal(new WorkflowReference("invoice-line", 3), step.Workflow);
        Assert.Equal("""{"line":7}""", Eval(step.Input, new ExpressionScope { Input = TestJson("""{"lines": [7]}""") }).GetRawText());
    }

    [Fact]
    public async Task SubWorkflowStep_WorkflowExistsOption_IsConsulted()
    {
        _ws.Write("wf.yaml", Workflow("  - { id: child, workflow: invoice-line@3 }"));
        var asked = new List<WorkflowReference>();

        var problems = await _ws.ProblemsAsync(options: new WorkflowLoadOptions { WorkflowExists = r => { asked.Add(r); return false; } });

        Assert.Equal([new WorkflowReference("invoice-line", 3)], asked);
        Problem(problems, "steps[0].workflow", "invoice-line@3");
    }

    [Fact]
    public async Task ForeachStep_DoWorkflow_IsCheckedWithWorkflowExists()
    {
        _ws.Write("wf.yaml", Workflow("  - { id: each, foreach: \"${ input.lines }\", do: invoice-line@2 }"));

        var problems = await _ws.ProblemsAsync(options: new WorkflowLoadOptions { WorkflowExists = r => r.Version != 2 });

        Problem(problems, "steps[0].do", "workflow 'invoice-line@2' was not found");
        WriteChild("invoice-line", 2);
        await _ws.LoadAsync(options: new WorkflowLoadOptions { WorkflowExists = _ => true });
    }

    [Fact]
    public async Task SubWorkflows_AreFoundBesideTheParent_LoadedAndPinnedWithIt()
    {
        WriteChild("invoice-line", 2);
        WriteChild("invoice-line", 3);
        _ws.Write("wf.yaml", Workflow("""
              - { id: one, workflow: invoice-line@3, next: each }
              - { id: each, foreach: "${ input.lines }", do: invoice-line@2 }
            """));

        var wf = await _ws.LoadAsync();

        Assert.Equal(["invoice-line@2", "invoice-line@3"], wf.SubWorkflows.Keys.Order(StringComparer.Ordinal));
        var child = wf.SubWorkflows["invoice-line@3"];
        Assert.Equal("invoice-line@3", child.Ref);
        Assert.NotEqual(wf.Hash, child.Hash);
        Assert.Equal("child-invoice-line-3.yaml", wf.Bundle!.Workflows!["invoice-line@3"]);
        Assert.Contains("child-invoice-line-3.yaml", wf.Bundle.Files.Keys);

        // The stored definition resolves its children from the bundle alone.
        var stored = await WorkflowLoader.LoadBundleAsync(DefinitionBundle.FromBytes(wf.Bundle.ToBytes()));
        Assert.Equal(child.Hash, stored.SubWorkflows["invoice-line@3"].Hash);
    }

    [Fact]
    public async Task SubWorkflows_Missing_OrInACycle_AreErrorsAtTheStep()
    {
        _ws.Write("wf.yaml", Workflow("  - { id: one, workflow: nowhere@1 }"));
        Problem(await _ws.ProblemsAsync(), "steps[0].workflow", "workflow 'nowhere@1' was not found");

        _ws.Write("loop.yaml", """
            ordo: 1
            workflow: loop
            version: 1
            steps:
              - { id: again, workflow: demo@1 }
            """);
        _ws.Write("wf.yaml", Workflow("  - { id: one, workflow: loop@1 }"));
        Problem(await _ws.ProblemsAsync(), "steps[0].workflow", "sub-workflow cycle: demo@1 → loop@1 → demo@1");
    }

    private void WriteChild(string name, int version) => _ws.Write($"child-{name}-{version}.yaml", string.Join("\n",
        "ordo: 1", $"workflow: {name}", $"version: {version}", "steps:", "  - { id: only, transform: { set: { line: \"${ input }\" } } }", ""));

    [Fact]
    public async Task PlanStep_ReadsAgentCatalogMaxStepsAndFallback()
    {
        var step = await LoadStepAsync<PlanStep>("""
              - id: plan
                plan: { agent: a, catalog: [b, c], max_steps: 5, fallback: manual }
              - { id: manual, agent: c }
            """);

        Assert.Equal("a", step.Agent);
        Assert.Equal(["b", "c"], step.Catalog);
        Assert.Equal(5, step.MaxSteps);
        Assert.Equal("manual", step.Fallback);
    }

    [Fact]
    public async Task SuperviseStep_ReadsAgentWorkersAndMaxRounds()
    {
        var step = await LoadStepAsync<SuperviseStep>("""
              - id: lead
                supervise: { agent: a, workers: [b, c], max_rounds: 3 }
            """);

        Assert.Equal("a", step.Agent);
        Assert.Equal(["b", "c"], step.Workers);
        Assert.Equal(3, step.MaxRounds);
    }

    [Fact]
    public async Task BoardStep_ReadsRulesUntilAndMaxFirings()
    {
        var step = await LoadStepAsync<BoardStep>("""
              - id: board
                board:
                  rules:
                    - { when: "artifacts.result === undefined", run: a }
                    - { when: "${ artifacts.result !== undefined }", run: b }
                  until: "artifacts.done !== undefined"
                  max_firings: 10
            """);

        Assert.Equal(["a", "b"], step.Rules.Select(r => r.Run));
        Assert.Equal("artifacts.result === undefined", step.Rules[0].When.Source);
        Assert.Equal("artifacts.done !== undefined", step.Until.Source);
        Assert.Equal(10, step.MaxFirings);
        Assert.Equal(2, step.Rules.Select(r => r.Id).Distinct().Count());
    }

    [Fact]
    public async Task AuctionStep_ReadsBiddersTaskAndScore()
    {
        var step = await LoadStepAsync<AuctionStep>("""
              - id: bid
                auction: { bidders: [a, b, c], task: "${ input.task }", score: "bid.cost + 0.01 * bid.latency_ms - bid.confidence" }
            """);

        Assert.Equal(["a", "b", "c"], step.Bidders);
        Assert.Equal("\"translate\"", Eval(step.Task, new ExpressionScope { Input = TestJson("""{"task": "translate"}""") }).GetRawText());
        var scope = new ExpressionScope().With("bid", TestJson("""{"cost": 1, "latency_ms": 200, "confidence": 0.5}"""));
        Assert.Equal(2.5, Evaluator.EvaluateNumber(step.Score, scope), 9);
    }

    [Theory]
    [InlineData("next: two", "two")]
    [InlineData("next: end", "end")]
    [InlineData("next: fail", "fail")]
    public async Task Next_AsAString_IsOneUnconditionalRoute(string next, string target)
    {
        var step = await LoadStepAsync<AgentStep>($"""
              - id: one
                agent: a
                {next}
              - {"{"} id: two, agent: b {"}"}
            """);

        var route = Assert.Single(step.Next);
        Assert.Null(route.When);
        Assert.Equal(target, route.Target);
    }

    [Fact]
    public async Task Next_AsAList_KeepsConditionsInOrder()
    {
        var step = await LoadStepAsync<AgentStep>("""
              - id: one
                agent: a
                next:
                  - { when: "input.n > 10", to: big }
                  - { when: "${ input.n > 5 }", to: medium }
                  - { to: small }
              - { id: big, agent: a }
              - { id: medium, agent: b }
              - { id: small, agent: c }
            """);

        Assert.Equal(["big", "medium", "small"], step.Next.Select(r => r.Target));
        Assert.NotNull(step.Next[0].When);
        Assert.NotNull(step.Next[1].When);
        Assert.Null(step.Next[2].When);
        var scope = new ExpressionScope { Input = TestJson("""{"n": 7}""") };
        Assert.False(Evaluator.EvaluateBoolean(step.Next[0].When!, scope));
        Assert.True(Evaluator.EvaluateBoolean(step.Next[1].When!, scope));
    }

    [Fact]
    public async Task CommonKeys_AreRead()
    {
        var step = await LoadStepAsync<AgentStep>("""
              - id: one
                description: Does the first thing.
                agent: a
                retry: { max_attempts: 4, backoff: 250ms, max_backoff: 5m, vary: [escalate_tier, require_citations, switch_tool] }
                timeout: 90s
                accepts_quarantined: true
                loop: { max_iterations: 3 }
                on_failure: escalate
                next: one
            """);

        Assert.Equal("Does the first thing.", step.Description);
        Assert.Equal(4, step.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(250), step.Retry.Backoff);
        Assert.Equal(TimeSpan.FromMinutes(5), step.Retry.MaxBackoff);
        Assert.Equal(["escalate_tier", "require_citations", "switch_tool"], step.Retry.Vary);
        Assert.Equal(TimeSpan.FromSeconds(90), step.Timeout);
        Assert.True(step.AcceptsQuarantined);
        Assert.Equal(3, step.MaxIterations);
        Assert.Equal(FailureAction.Escalate, step.OnFailure);
        Assert.Equal("steps[0]", step.Location.Path);
        Assert.Equal(_ws.PathOf("wf.yaml"), Path.GetFullPath(step.Location.File!));
        Assert.True(step.Location.Line > 0);
    }

    [Fact]
    public async Task CommonKeys_Defaults()
    {
        var step = await LoadStepAsync<AgentStep>("  - { id: one, agent: a }");

        Assert.Same(RetryPolicy.None, step.Retry);
        Assert.Equal(1, step.Retry.MaxAttempts);
        Assert.Null(step.Timeout);
        Assert.False(step.AcceptsQuarantined);
        Assert.Null(step.MaxIterations);
        Assert.Equal(FailureAction.Fail, step.OnFailure);
        Assert.Null(step.Description);
    }

    [Fact]
    public async Task Retry_WithoutMaxAttempts_DefaultsToThreeAttempts()
    {
        var step = await LoadStepAsync<AgentStep>("  - { id: one, agent: a, retry: { backoff: 2s } }");

        Assert.Equal(3, step.Retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(2), step.Retry.Backoff);
    }

    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("2h", 7_200_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("1.5s", 1_500)]
    public async Task Durations_AcceptEveryDocumentedUnit(string text, double milliseconds)
    {
        var step = await LoadStepAsync<AgentStep>($"  - {"{"} id: one, agent: a, timeout: {text} {"}"}");
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), step.Timeout);
    }

    [Fact]
    public async Task CycleWhereEveryStepDeclaresLoop_IsValid()
    {
        _ws.Write("wf.yaml", Workflow("""
              - { id: draft, agent: a, next: review, loop: { max_iterations: 3 } }
              - id: review
                agent: b
                loop: { max_iterations: 3 }
                next:
                  - { when: "steps.review.output.ok", to: end }
                  - { to: draft }
            """));

        var wf = await _ws.LoadAsync();

        Assert.Equal([3, 3], wf.Steps.Select(s => s.MaxIterations ?? 0));
    }
}

using Ordo.Workflows;

namespace Ordo.Tests.Workflows;

/// <summary>Invalid files: every problem names file, line, column and key path, and all of a file's problems come together.</summary>
public sealed partial class WorkflowLoaderTests
{
    private async Task<(IReadOnlyList<ValidationProblem> Problems, string Text)> InvalidAsync(string steps, string? extra = null, WorkflowLoadOptions? options = null)
    {
        var text = Workflow(steps, extra);
        _ws.Write("wf.yaml", text);
        return (await _ws.ProblemsAsync(options: options), text);
    }

    [Fact]
    public async Task UnknownKey_AtTopLevel_IsReportedWithASuggestion()
    {
        var (problems, text) = await InvalidAsync("  - { id: one, agent: a }", "descripton: typo");

        var p = Problem(problems, "descripton", "unknown key 'descripton'");
        Assert.Contains("did you mean 'description'", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "descripton");
    }

    [Fact]
    public async Task UnknownKey_InAStep_IsReportedWithASuggestion()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                nxt: end
            """);

        var p = Problem(problems, "steps[0].nxt", "did you mean 'next'");
        AssertAt(p, "wf.yaml", text, "nxt");
    }

    [Fact]
    public async Task UnknownKey_Nested_NamesTheFullKeyPath()
    {
        var (problems, text) = await InvalidAsync("""
              - { id: one, agent: a, next: two }
              - id: two
                agent: b
                retry: { max_attempts: 3, backof: 2s }
            """);

        var p = Problem(problems, "steps[1].retry.backof", "did you mean 'backoff'");
        AssertAt(p, "wf.yaml", text, "backof");
    }

    [Fact]
    public async Task UnknownKey_WithoutACloseMatch_ListsTheKnownKeys()
    {
        var (problems, _) = await InvalidAsync("  - { id: one, agent: a, zzzzzzzz: 1 }");

        var p = Problem(problems, "steps[0].zzzzzzzz", "unknown key");
        Assert.DoesNotContain("did you mean", p.Message, StringComparison.Ordinal);
        Assert.Contains("expected one of", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingRequiredKeys_AreReported()
    {
        var text = "ordo: 1\nsteps:\n  - { agent: a }\n";
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        Assert.Equal(1, problems[0].Line);
        Problem(problems, "workflow", "missing required key 'workflow'");
        Problem(problems, "version", "missing required key 'version'");
        var id = Problem(problems, "steps[0].id", "missing required key 'id'");
        AssertAt(id, "wf.yaml", text, "{ agent");
    }

    [Fact]
    public async Task MissingRequiredKey_InAStepKind_IsReported()
    {
        var (problems, text) = await InvalidAsync("""
              - id: approve
                approval: { count: 2 }
            """);

        var p = Problem(problems, "steps[0].approval.role", "missing required key 'role'");
        AssertAt(p, "wf.yaml", text, "{ count");
    }

    [Theory]
    [InlineData("version: three", "version", "expected an integer")]
    [InlineData("version: 0", "version", "at least 1")]
    [InlineData("workflow: Invoice_Recon", "workflow", "not a valid workflow name")]
    [InlineData("ordo: 2", "ordo", "unsupported format version")]
    [InlineData("steps: { a: 1 }", "steps", "expected a non-empty list of steps")]
    [InlineData("steps: []", "steps", "expected a non-empty list of steps")]
    [InlineData("agents: [a, b]", "agents", "expected a mapping")]
    [InlineData("constraints: { max_cost: cheap }", "constraints.max_cost", "expected a number")]
    [InlineData("constraints: { max_tokens: -1 }", "constraints.max_tokens", "at least 0")]
    [InlineData("constraints: { no_web: sometimes }", "constraints.no_web", "expected true or false")]
    [InlineData("constraints: { deadline: soon }", "constraints.deadline", "invalid duration")]
    public async Task WrongTypes_InTheHeader_AreReported(string line, string path, string message)
    {
        var lines = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ordo"] = "ordo: 1", ["workflow"] = "workflow: demo", ["version"] = "version: 1",
            ["agents"] = "agents: { a: { kind: code, type: A } }", ["steps"] = "steps:\n  - { id: one, agent: a }",
        };
        lines[line.Split(':')[0]] = line;
        var text = string.Join("\n", lines.Values) + "\n";
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        var p = Problem(problems, path, message);
        Assert.True(p.Line > 0 && p.Column > 0, p.ToString());
    }

    [Theory]
    [InlineData("timeout: [1]", "steps[0].timeout", "invalid duration")]
    [InlineData("timeout: 0s", "steps[0].timeout", "must be longer than 0")]
    [InlineData("accepts_quarantined: maybe", "steps[0].accepts_quarantined", "expected true or false")]
    [InlineData("on_failure: retry", "steps[0].on_failure", "not one of")]
    [InlineData("loop: { max_iterations: 0 }", "steps[0].loop.max_iterations", "between 1 and")]
    [InlineData("loop: 3", "steps[0].loop", "expected")]
    [InlineData("retry: { max_attempts: 1.5 }", "steps[0].retry.max_attempts", "expected an integer")]
    [InlineData("retry: { max_attempts: 3, vary: [louder] }", "steps[0].retry.vary", "'louder' is not one of")]
    [InlineData("retry: { backoff: 10s, max_backoff: 1s }", "steps[0].retry", "max_backoff")]
    [InlineData("description: [a]", "steps[0].description", "expected a string")]
    [InlineData("next: { to: end }", "steps[0].next", "expected a step id")]
    public async Task WrongTypes_InCommonStepKeys_AreReported(string line, string path, string message)
    {
        var (problems, _) = await InvalidAsync($"""
              - id: one
                agent: a
                {line}
            """);

        var p = Problem(problems, path, message);
        Assert.True(p.Line > 0 && p.Column > 0, p.ToString());
    }

    [Theory]
    [InlineData("timeout: 30x", "steps[0].timeout", "30x")]
    [InlineData("retry: { max_attempts: 3, backoff: 2 seconds }", "steps[0].retry.backoff", "2 seconds")]
    [InlineData("retry: { max_attempts: 3, max_backoff: -1s }", "steps[0].retry.max_backoff", "-1s")]
    public async Task BadDurations_AreReportedWhereTheyAre(string line, string path, string token)
    {
        var (problems, text) = await InvalidAsync($"""
              - id: one
                agent: a
                {line}
            """);

        var p = Problem(problems, path, "invalid duration");
        Assert.Contains("250ms, 30s, 5m, 2h, 1d", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, token);
    }

    [Fact]
    public async Task UnknownStepReference_InNext_IsReportedAtTheReference()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                next: nowhere
            """);

        var p = Problem(problems, "steps[0].next", "'nowhere' is not a step");
        Assert.Contains("one", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "nowhere");
    }

    [Fact]
    public async Task UnknownStepReference_InAConditionalRoute_IsReportedAtTheReference()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                next:
                  - { when: "input.x", to: end }
                  - { to: ghost }
            """);

        var p = Problem(problems, "steps[0].next[1].to", "'ghost' is not a step");
        AssertAt(p, "wf.yaml", text, "ghost");
    }

    [Theory]
    [InlineData("{ id: s, parallel: [one, ghost], join: one }", "steps[1].parallel[1]")]
    [InlineData("{ id: s, parallel: [one], join: ghost }", "steps[1].join")]
    [InlineData("{ id: s, foreach: \"${ input.l }\", do: ghost }", "steps[1].do")]
    [InlineData("{ id: s, plan: { agent: a, catalog: [b], fallback: ghost } }", "steps[1].plan.fallback")]
    [InlineData("{ id: s, gate: { artifact: result, check: \"true\", on_reject: ghost } }", "steps[1].gate.on_reject")]
    [InlineData("{ id: s, approval: { role: r, on_expire: ghost } }", "steps[1].approval.on_expire")]
    public async Task UnknownStepReference_InAStepKind_IsReportedAtTheReference(string step, string path)
    {
        var (problems, text) = await InvalidAsync($"""
              - {"{"} id: one, agent: a {"}"}
              - {step}
            """);

        var p = Problem(problems, path, "'ghost' is not a step");
        AssertAt(p, "wf.yaml", text, "ghost");
    }

    [Theory]
    [InlineData("{ id: s, agent: ghost }", "steps[0].agent")]
    [InlineData("{ id: s, plan: { agent: ghost, catalog: [a] } }", "steps[0].plan.agent")]
    [InlineData("{ id: s, plan: { agent: a, catalog: [b, ghost] } }", "steps[0].plan.catalog[1]")]
    [InlineData("{ id: s, supervise: { agent: ghost, workers: [a] } }", "steps[0].supervise.agent")]
    [InlineData("{ id: s, supervise: { agent: a, workers: [ghost] } }", "steps[0].supervise.workers[0]")]
    [InlineData("{ id: s, auction: { bidders: [a, ghost], score: \"bid.cost\" } }", "steps[0].auction.bidders[1]")]
    [InlineData("{ id: s, board: { rules: [ { when: \"true\", run: ghost } ], until: \"true\" } }", "steps[0].board.rules[0].run")]
    public async Task UnknownAgentReference_IsReportedAtTheReference(string step, string path)
    {
        var (problems, text) = await InvalidAsync($"  - {step}");

        var p = Problem(problems, path, "agent 'ghost' is not defined");
        AssertAt(p, "wf.yaml", text, "ghost");
    }

    [Fact]
    public async Task UnknownToolReference_InAToolStep_IsReported()
    {
        WriteProject();
        var (problems, text) = await InvalidAsync("  - { id: s, tool: ledger.qery }");

        var p = Problem(problems, "steps[0].tool", "tool 'ledger.qery' is not defined");
        Assert.Contains("ledger.query", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "ledger.qery");
    }

    [Fact]
    public async Task UnknownToolReference_InAnAgentToolsList_IsReportedAtTheItem()
    {
        WriteProject();
        var text = """
            workflow: demo
            version: 1
            agents:
              x: { kind: code, type: X, tools: [ledger.query, web.search] }
            steps:
              - { id: s, agent: x }
            """;
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        var p = Problem(problems, "agents.x.tools[1]", "tool 'web.search' is not defined");
        AssertAt(p, "wf.yaml", text, "web.search");
    }

    [Fact]
    public async Task UnknownToolReference_InAuthoritative_IsReported()
    {
        WriteProject();
        var (problems, text) = await InvalidAsync("  - { id: s, agent: a }", "artifacts: { result: { authoritative: { amount: ledger.lookup } } }");

        var p = Problem(problems, "artifacts.result.authoritative.amount", "tool 'ledger.lookup' is not defined");
        AssertAt(p, "wf.yaml", text, "ledger.lookup");
    }

    [Fact]
    public async Task UnknownArtifactReference_InAGate_IsReported()
    {
        var (problems, text) = await InvalidAsync("  - { id: s, gate: { artifact: finding, check: \"true\" } }");

        var p = Problem(problems, "steps[0].gate.artifact", "artifact 'finding' is not declared");
        AssertAt(p, "wf.yaml", text, "finding");
    }

    [Fact]
    public async Task MisspelledArtifact_InAnAgentOutput_IsReportedAtTheAgent()
    {
        var text = """
            workflow: demo
            version: 1
            artifacts: { finding: { evidence: required } }
            agents:
              x: { kind: code, type: X, output: findng }
            steps:
              - { id: s, agent: x }
            """;
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        var p = Problem(problems, "agents.x.output", "did you mean 'finding'");
        AssertAt(p, "wf.yaml", text, "findng");
    }

    [Fact]
    public async Task StepWithTwoKinds_IsReported()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                tool: ledger.post
            """);

        var p = Problem(problems, "steps[0]", "exactly one kind");
        Assert.Contains("agent and tool", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "id: one");
    }

    [Fact]
    public async Task StepWithoutKind_IsReported()
    {
        var (problems, _) = await InvalidAsync("""
              - id: one
                next: end
            """);

        var p = Problem(problems, "steps[0]", "exactly one kind key");
        Assert.Contains("agent, tool, gate, approval, transform, parallel, foreach, workflow, plan, supervise, board, auction", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DuplicateStepIds_AreReportedAtTheSecond()
    {
        var (problems, text) = await InvalidAsync("""
              - { id: one, agent: a, next: two }
              - { id: two, agent: b }
              - { id: one, agent: c }
            """);

        var p = Problem(problems, "steps[2].id", "step id 'one' is already used");
        AssertAt(p, "wf.yaml", text, "one, agent: c");
    }

    [Theory]
    [InlineData("end")]
    [InlineData("fail")]
    public async Task ReservedRouteTargets_CannotBeStepIds(string id)
    {
        var (problems, _) = await InvalidAsync($"  - {"{"} id: {id}, agent: a {"}"}");
        Problem(problems, "steps[0].id", "reserved");
    }

    [Fact]
    public async Task CycleWithoutLoop_ReportsEveryStepOfTheCycle()
    {
        var (problems, text) = await InvalidAsync("""
              - { id: start, agent: a, next: draft }
              - { id: draft, agent: a, next: review }
              - { id: review, agent: b, next: revise }
              - id: revise
                agent: c
                next:
                  - { when: "steps.review.output.ok", to: end }
                  - { to: draft }
            """);

        Assert.Equal(3, problems.Count);
        AssertAt(Problem(problems, "steps[1]", "step 'draft' can be reached again"), "wf.yaml", text, "{ id: draft");
        AssertAt(Problem(problems, "steps[2]", "step 'review' can be reached again"), "wf.yaml", text, "{ id: review");
        AssertAt(Problem(problems, "steps[3]", "step 'revise' can be reached again"), "wf.yaml", text, "id: revise");
        Assert.All(problems, p => Assert.Contains("loop: { max_iterations: N }", p.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task CycleWhereOnlySomeStepsDeclareLoop_ReportsTheOthers()
    {
        var (problems, _) = await InvalidAsync("""
              - { id: draft, agent: a, next: review, loop: { max_iterations: 2 } }
              - { id: review, agent: b, next: draft }
            """);

        Problem(problems, "steps[1]", "step 'review' can be reached again");
        Assert.Single(problems);
    }

    [Theory]
    [InlineData("{ max_iterations: 0 }")]
    [InlineData("{ max_iterations: 1.5 }")]
    [InlineData("3")]
    public async Task ALoopThatCannotBeRead_IsReportedAsSuch_NotAsMissing(string loop)
    {
        var (problems, _) = await InvalidAsync($$"""
              - { id: poll, agent: a, next: poll, loop: {{loop}} }
            """);

        Assert.StartsWith("steps[0].loop", Assert.Single(problems).Path, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SelfLoopWithoutLoop_IsReported()
    {
        var (problems, _) = await InvalidAsync("""
              - id: poll
                agent: a
                next:
                  - { when: "!steps.poll.output.ready", to: poll }
                  - { to: end }
            """);

        Problem(problems, "steps[0]", "step 'poll' can be reached again");
    }

    [Fact]
    public async Task CycleThroughGateRejection_IsReported()
    {
        var (problems, _) = await InvalidAsync("""
              - { id: produce, agent: a, next: check }
              - { id: check, gate: { artifact: result, check: "artifact.ok", on_reject: produce } }
            """);

        Problem(problems, "steps[0]", "step 'produce' can be reached again");
        Problem(problems, "steps[1]", "step 'check' can be reached again");
    }

    [Fact]
    public async Task CycleThroughAJoin_IsReported()
    {
        var (problems, _) = await InvalidAsync("""
              - { id: fan, parallel: [left, right], join: merge }
              - { id: left, agent: a }
              - { id: right, agent: b }
              - { id: merge, agent: c, next: fan }
            """);

        Problem(problems, "steps[0]", "step 'fan' can be reached again");
        Problem(problems, "steps[3]", "step 'merge' can be reached again");
    }

    [Fact]
    public async Task InvalidYamlSyntax_IsReportedWithItsLocation()
    {
        var text = "workflow: demo\nversion: 1\nsteps:\n  - { id: one, agent: a\n  - { id: two }\n";
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        var p = Assert.Single(problems);
        Assert.Contains("invalid YAML", p.Message, StringComparison.Ordinal);
        Assert.Equal(_ws.PathOf("wf.yaml"), Path.GetFullPath(p.File!));
        Assert.True(p.Line >= 4 && p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task BadIndentation_IsReportedWithItsLocation()
    {
        var text = "workflow: demo\nversion: 1\nsteps:\n  - id: one\n    agent: a\n   next: end\n";
        _ws.Write("wf.yaml", text);

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Contains("YAML", p.Message, StringComparison.Ordinal);
        Assert.True(p.Line >= 5, p.ToString());
    }

    [Fact]
    public async Task DuplicateYamlKeys_AreReported()
    {
        var text = "workflow: demo\nversion: 1\nversion: 2\nagents: { a: { kind: code, type: A } }\nsteps:\n  - { id: one, agent: a }\n";
        _ws.Write("wf.yaml", text);

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.True(p.Line >= 2, p.ToString());
    }

    [Fact]
    public async Task EmptyFile_IsReported()
    {
        _ws.Write("wf.yaml", "");
        var p = Assert.Single(await _ws.ProblemsAsync());
        Assert.Contains("empty", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingWorkflowFile_IsReported()
    {
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => WorkflowLoader.LoadFileAsync(_ws.PathOf("nope.yaml")));
        Assert.Contains("does not exist", Assert.Single(e.Problems).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JavaScriptSyntaxError_InWhen_IsReported()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                next:
                  - { when: "input.x >", to: end }
            """);

        var p = Problem(problems, "steps[0].next[0].when", "invalid expression");
        AssertAt(p, "wf.yaml", text, "\"input.x >\"");
    }

    [Theory]
    [InlineData("input: { v: \"${ input.x + }\" }", "steps[0].input.v", "invalid expression")]
    [InlineData("input: { v: \"total ${ input..x } EUR\" }", "steps[0].input.v", "invalid expression")]
    [InlineData("input: { v: \"${ input.x\" }", "steps[0].input.v", "never closed")]
    [InlineData("input: { v: \"value: ${ input.x \" }", "steps[0].input.v", "never closed")]
    [InlineData("input: { list: [ok, \"${ ) }\"] }", "steps[0].input.list[1]", "invalid expression")]
    public async Task TemplateErrors_AreReportedWhereTheyAre(string line, string path, string message)
    {
        var (problems, text) = await InvalidAsync($"""
              - id: one
                agent: a
                {line}
            """);

        var p = Problem(problems, path, message);
        Assert.Equal(Locate(text, "${").Line, p.Line);
        Assert.True(p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task TransformEntry_WithAnInvalidExpression_IsTheOnlyProblemReported()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                transform: { set: { total: "${ input.( }" } }
            """);

        var p = Assert.Single(problems);
        Assert.Equal("steps[0].transform.set.total", p.Path);
        Assert.Contains("invalid expression", p.Message, StringComparison.Ordinal);
        Assert.Equal(Locate(text, "${").Line, p.Line);
    }

    [Fact]
    public async Task TemplateErrors_InOneList_AreAllReported()
    {
        var (problems, _) = await InvalidAsync("""
              - id: one
                agent: a
                input: { list: ["${ ) }", "${ ( }", "${ x"] }
            """);

        Problem(problems, "steps[0].input.list[0]", "invalid expression");
        Problem(problems, "steps[0].input.list[1]", "invalid expression");
        Problem(problems, "steps[0].input.list[2]", "never closed");
    }

    [Theory]
    [InlineData("{ id: s, foreach: \"${ input.lines.map( }\", do: one }", "steps[1].foreach")]
    [InlineData("{ id: s, gate: { artifact: result, check: \"artifact.ok &&\" } }", "steps[1].gate.check")]
    [InlineData("{ id: s, board: { rules: [ { when: \"(\", run: a } ], until: \"true\" } }", "steps[1].board.rules[0].when")]
    [InlineData("{ id: s, board: { rules: [ { when: \"true\", run: a } ], until: \"a b\" } }", "steps[1].board.until")]
    [InlineData("{ id: s, auction: { bidders: [a], score: \"bid.cost +\" } }", "steps[1].auction.score")]
    [InlineData("{ id: s, auction: { bidders: [a], task: \"${ ! }\", score: \"bid.cost\" } }", "steps[1].auction.task")]
    [InlineData("{ id: s, transform: { set: { total: \"${ 1 + }\" } } }", "steps[1].transform.set.total")]
    [InlineData("{ id: s, approval: { role: r, show: [\"${ } }\"] } }", "steps[1].approval.show[0]")]
    public async Task ExpressionErrors_InStepKinds_AreReported(string step, string path)
    {
        var (problems, _) = await InvalidAsync($"""
              - {"{"} id: one, agent: a {"}"}
              - {step}
            """);

        var p = Assert.Single(problems, p => p.Path == path);
        Assert.True(p.Line > 0 && p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task SecretInAWorkflowFile_IsRejected()
    {
        var (problems, text) = await InvalidAsync("""
              - id: one
                agent: a
                input: { token: "${secret:CRM_TOKEN}" }
            """);

        var p = Assert.Single(problems);
        Assert.Equal("steps[0].input.token", p.Path);
        Assert.Contains("secret", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "\"${secret:CRM_TOKEN}\"");
    }

    [Fact]
    public async Task SecretInACondition_IsReportedOnce()
    {
        var (problems, _) = await InvalidAsync("""
              - id: one
                agent: a
                next: [ { when: "${secret:KEY} == 'x'", to: end } ]
            """);

        Assert.Equal("steps[0].next[0].when", Assert.Single(problems).Path);
    }

    [Fact]
    public async Task SecretInsideText_InAWorkflowFile_IsRejected()
    {
        var (problems, _) = await InvalidAsync("  - { id: one, agent: a }", "description: \"uses ${secret:KEY} somewhere\"");
        Assert.Equal("description", Assert.Single(problems).Path);
    }

    [Fact]
    public async Task MissingSchemaFile_IsReportedAtTheReference()
    {
        var (problems, text) = await InvalidAsync("  - { id: one, agent: a }", """
            artifacts:
              result: { schema: { $ref: schemas/missing.json } }
              other: { schema: schemas/also-missing.json }
            """);

        AssertAt(Problem(problems, "artifacts.result.schema.$ref", "schema file"), "wf.yaml", text, "schemas/missing.json");
        AssertAt(Problem(problems, "artifacts.other.schema", "does not exist"), "wf.yaml", text, "schemas/also-missing.json");
    }

    [Fact]
    public async Task MissingInputSchemaFile_IsReported()
    {
        var (problems, _) = await InvalidAsync("  - { id: one, agent: a }", "input: { $ref: schemas/input.json }");
        Problem(problems, "input.$ref", "does not exist");
    }

    [Fact]
    public async Task InvalidJsonInASchemaFile_IsReportedInThatFile()
    {
        _ws.Write("schemas/bad.json", "{\n  \"type\": \"object\",\n  \"properties\": { oops }\n}");
        var (problems, _) = await InvalidAsync("  - { id: one, agent: a }", "input: { $ref: schemas/bad.json }");

        var p = Assert.Single(problems);
        Assert.Equal(_ws.PathOf("schemas/bad.json"), Path.GetFullPath(p.File!));
        Assert.Equal(3, p.Line);
        Assert.Contains("invalid JSON", p.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("input: { type: object, properties: { n: { type: integr } } }", "input", "\"integr\" at $.properties.n.type")]
    [InlineData("artifacts: { result: { schema: { type: objekt } } }", "artifacts.result.schema", "is not a JSON type")]
    [InlineData("artifacts: { result: { schema: { type: [string, nothing] } } }", "artifacts.result.schema", "\"nothing\"")]
    [InlineData("artifacts: { result: { schema: { required: x } } }", "artifacts.result.schema", "invalid JSON Schema")]
    [InlineData("artifacts: { result: { schema: [1, 2] } }", "artifacts.result.schema", "expected a JSON Schema")]
    public async Task InvalidSchemas_AreReported(string header, string path, string message)
    {
        var (problems, text) = await InvalidAsync("  - { id: one, agent: a }", header);

        var p = Problem(problems, path, message);
        Assert.Equal(Locate(text, header).Line, p.Line);
    }

    [Fact]
    public async Task SchemaWhoseNestedReferenceIsMissing_IsReported()
    {
        _ws.Write("schemas/outer.json", """{ "type": "object", "properties": { "line": { "$ref": "line.json" } } }""");
        var (problems, _) = await InvalidAsync("  - { id: one, agent: a }", "input: { $ref: schemas/outer.json }");

        Assert.Contains("line.json", Assert.Single(problems).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingPromptFile_IsReportedAtTheAgent()
    {
        _ws.Write("ordo.yaml", "models: { fast: { provider: ollama, model: m } }\nprompts: prompts\n");
        Directory.CreateDirectory(_ws.PathOf("prompts"));
        var text = "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: fast, prompt: extract } }\nsteps:\n  - { id: one, agent: x }\n";
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        var p = Problem(problems, "agents.x.prompt", "prompt file");
        Assert.Contains("extract.md", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "extract");
    }

    [Fact]
    public async Task PromptWithAnInvalidExpression_IsReportedInThePromptFile()
    {
        _ws.Write("ordo.yaml", "models: { fast: { provider: ollama, model: m } }\n");
        _ws.Write("prompts/ask.md", "---\nversion: 1\n---\nLine one.\nYou get ${ input.items.length + } items.\n");
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: fast, prompt: ask } }\nsteps:\n  - { id: one, agent: x }\n");

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Equal(_ws.PathOf("prompts/ask.md"), Path.GetFullPath(p.File!));
        Assert.Contains("invalid expression", p.Message, StringComparison.Ordinal);
        Assert.Equal(5, p.Line);
        Assert.Equal(9, p.Column);
    }

    [Fact]
    public async Task PromptWithAnUnclosedExpression_IsReportedInThePromptFile()
    {
        _ws.Write("ordo.yaml", "models: { fast: { provider: ollama, model: m } }\n");
        _ws.Write("prompts/ask.md", "Hello ${ input.name\n");
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: fast, prompt: ask } }\nsteps:\n  - { id: one, agent: x }\n");

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Equal(_ws.PathOf("prompts/ask.md"), Path.GetFullPath(p.File!));
        Assert.Contains("never closed", p.Message, StringComparison.Ordinal);
        Assert.Equal((1, 7), (p.Line, p.Column));
    }

    [Fact]
    public async Task PromptWithInvalidFrontMatter_IsReportedAtItsLine()
    {
        _ws.Write("ordo.yaml", "models: { fast: { provider: ollama, model: m } }\n");
        _ws.Write("prompts/ask.md", "---\nversion: 1\nauthor: me\n---\nHello.\n");
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: fast, prompt: ask } }\nsteps:\n  - { id: one, agent: x }\n");

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Equal(_ws.PathOf("prompts/ask.md"), Path.GetFullPath(p.File!));
        Assert.Contains("unknown key 'author'", p.Message, StringComparison.Ordinal);
        Assert.Equal((3, 1), (p.Line, p.Column));
    }

    [Fact]
    public async Task LlmAgentWithAnUnconfiguredTier_IsReported()
    {
        WriteProject();
        var text = "workflow: p\nversion: 1\nagents: { x: { kind: llm, tier: turbo } }\nsteps:\n  - { id: one, agent: x }\n";
        _ws.Write("wf.yaml", text);

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Equal("agents.x.tier", p.Path);
        Assert.Contains("model tier 'turbo' is not configured", p.Message, StringComparison.Ordinal);
        Assert.Contains("fast, high, standard", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "turbo");
    }

    [Fact]
    public async Task LlmAgentWithoutAnyModels_IsReported()
    {
        _ws.Write("wf.yaml", "workflow: p\nversion: 1\nagents: { x: { kind: llm } }\nsteps:\n  - { id: one, agent: x }\n");

        var p = Assert.Single(await _ws.ProblemsAsync());

        Assert.Contains("model tier 'standard' is not configured", p.Message, StringComparison.Ordinal);
        Assert.Contains("models:", p.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CodeAgentWithAnUnregisteredType_IsReportedWhenTheRegistryIsGiven()
    {
        var text = Workflow("  - { id: one, agent: a }");
        _ws.Write("wf.yaml", text);
        var options = new WorkflowLoadOptions { CodeAgentExists = type => type != "Acme.A" };

        var p = Assert.Single(await _ws.ProblemsAsync(options: options));

        Assert.Equal("agents.a.type", p.Path);
        Assert.Contains("code agent type 'Acme.A' is not registered", p.Message, StringComparison.Ordinal);
        AssertAt(p, "wf.yaml", text, "Acme.A");
        await _ws.LoadAsync(options: new WorkflowLoadOptions { CodeAgentExists = _ => true });
    }

    [Theory]
    [InlineData("{ kind: code }", "agents.x.type", "missing required key 'type'")]
    [InlineData("{ kind: http }", "agents.x.url", "missing required key 'url'")]
    [InlineData("{ kind: http, url: not-a-url }", "agents.x.url", "not an absolute URL")]
    [InlineData("{ kind: http, url: /agents/fx }", "agents.x.url", "not an absolute URL")]
    [InlineData("{ kind: robot, type: X }", "agents.x.kind", "not one of: llm, code, http")]
    [InlineData("{ type: X }", "agents.x.kind", "missing required key 'kind'")]
    [InlineData("{ kind: code, type: X, tier: fast }", "agents.x.tier", "applies only to agents of kind llm")]
    [InlineData("{ kind: code, type: X, version: 0 }", "agents.x.version", "at least 1")]
    [InlineData("{ kind: code, type: X, critical: yes }", "agents.x.critical", "expected true or false")]
    [InlineData("{ kind: code, type: X, outptu: r }", "agents.x.outptu", "did you mean 'output'")]
    public async Task InvalidAgents_AreReported(string agent, string path, string message)
    {
        _ws.Write("wf.yaml", $"workflow: p\nversion: 1\nagents:\n  x: {agent}\nsteps:\n  - {"{"} id: one, agent: x {"}"}\n");

        var problems = await _ws.ProblemsAsync();

        var p = Assert.Single(problems);
        Assert.Equal(path, p.Path);
        Assert.Contains(message, p.Message, StringComparison.Ordinal);
        Assert.Equal(4, p.Line);
    }

    [Theory]
    [InlineData("{ id: s, parallel: [one], join_policy: most }", "steps[1].join_policy", "not a join policy")]
    [InlineData("{ id: s, parallel: [one], join_policy: quorum(0) }", "steps[1].join_policy", "not a join policy")]
    [InlineData("{ id: s, parallel: [one], join_policy: quorum(2) }", "steps[1].join_policy", "quorum(2) needs at least 2 branches")]
    [InlineData("{ id: s, parallel: [] }", "steps[1].parallel", "at least one branch")]
    [InlineData("{ id: s, foreach: \"${ input.l }\" }", "steps[1].do", "missing required key 'do'")]
    [InlineData("{ id: s, foreach: \"${ input.l }\", do: one, max_concurrency: 0 }", "steps[1].max_concurrency", "between 1 and")]
    [InlineData("{ id: s, foreach: \"${ input.l }\", do: child@x }", "steps[1].do", "not a workflow reference")]
    [InlineData("{ id: s, workflow: child }", "steps[1].workflow", "not a workflow reference")]
    [InlineData("{ id: s, workflow: Child@1 }", "steps[1].workflow", "not a workflow reference")]
    [InlineData("{ id: s, plan: { agent: a } }", "steps[1].plan.catalog", "missing required key 'catalog'")]
    [InlineData("{ id: s, plan: { agent: a, catalog: [b], max_steps: 0 } }", "steps[1].plan.max_steps", "between 1 and")]
    [InlineData("{ id: s, supervise: { agent: a } }", "steps[1].supervise.workers", "missing required key 'workers'")]
    [InlineData("{ id: s, board: { rules: [ { when: \"true\", run: a } ] } }", "steps[1].board.until", "missing required key 'until'")]
    [InlineData("{ id: s, board: { rules: [ { when: \"true\" } ], until: \"true\" } }", "steps[1].board.rules[0].run", "missing required key 'run'")]
    [InlineData("{ id: s, board: { rules: { when: x }, until: \"true\" } }", "steps[1].board.rules", "expected a non-empty list of rules")]
    [InlineData("{ id: s, board: { rules: [], until: \"true\" } }", "steps[1].board.rules", "expected a non-empty list of rules")]
    [InlineData("{ id: s, auction: { bidders: [], score: \"bid.cost\" } }", "steps[1].auction.bidders", "at least one bidder")]
    [InlineData("{ id: s, plan: { agent: a, catalog: [] } }", "steps[1].plan.catalog", "at least one agent")]
    [InlineData("{ id: s, supervise: { agent: a, workers: [] } }", "steps[1].supervise.workers", "at least one worker")]
    [InlineData("{ id: s, auction: { bidders: [a] } }", "steps[1].auction.score", "missing required key 'score'")]
    [InlineData("{ id: s, transform: { set: {} } }", "steps[1].transform.set", "at least one entry")]
    [InlineData("{ id: s, transform: { put: { x: 1 } } }", "steps[1].transform.put", "unknown key")]
    [InlineData("{ id: s, gate: { artifact: result } }", "steps[1].gate", "needs 'check', 'validator' or both")]
    [InlineData("{ id: s, approval: { role: r, count: 0 } }", "steps[1].approval.count", "between 1 and 10")]
    [InlineData("{ id: s, approval: { role: r, expires: tomorrow } }", "steps[1].approval.expires", "invalid duration")]
    [InlineData("{ id: s, tool: x, input: {} }", "steps[1].input", "unknown key")]
    [InlineData("{ id: s, agent: a, args: {} }", "steps[1].args", "unknown key")]
    public async Task InvalidStepKinds_AreReported(string step, string path, string message)
    {
        var (problems, _) = await InvalidAsync($"""
              - {"{"} id: one, agent: a {"}"}
              - {step}
            """);

        var p = Problem(problems, path, message);
        Assert.True(p.Line > 0 && p.Column > 0, p.ToString());
    }

    [Fact]
    public async Task EveryProblemOfAFile_IsReportedInOneException()
    {
        var text = Workflow("""
              - id: one
                agent: ghost
                timeout: 30x
                nxt: two
              - id: one
                tool: nothing
              - id: three
                next: nowhere
              - id: four
                agent: a
                input: { v: "${ input.x +  }" }
                next:
                  - { when: "input.x >", to: four }
            """, "descripton: typo");
        _ws.Write("wf.yaml", text);

        var problems = await _ws.ProblemsAsync();

        Problem(problems, "descripton", "unknown key");
        Problem(problems, "steps[0].agent", "agent 'ghost' is not defined");
        Problem(problems, "steps[0].timeout", "invalid duration");
        Problem(problems, "steps[0].nxt", "unknown key");
        Problem(problems, "steps[1].id", "already used");
        Problem(problems, "steps[2]", "exactly one kind key");
        Problem(problems, "steps[3].input.v", "invalid expression");
        Problem(problems, "steps[3].next[0].when", "invalid expression");
        Problem(problems, "steps[3]", "can be reached again");
        Assert.All(problems, p => Assert.Equal(_ws.PathOf("wf.yaml"), Path.GetFullPath(p.File!)));
        Assert.All(problems, p => Assert.True(p.Line > 0 && p.Column > 0, p.ToString()));
        Assert.Equal(problems.OrderBy(p => p.Line).ThenBy(p => p.Column), problems);
    }

    [Fact]
    public async Task ProblemsOfTheConfigToolsAndWorkflow_AreReportedTogether()
    {
        WriteProject(
            ordoYaml: "models: { fast: { provider: openia, model: m } }\ntools: [tools.yaml]\nconnections: { ledger: { sqlite: l.db } }\n",
            toolsYaml: "tools:\n  ledger.post: { kind: sql, connection: ledger, query: \"x\", effect: write, cache: 5m }\n");
        _ws.Write("wf.yaml", Workflow("  - { id: one, agent: ghost }"));

        var problems = await _ws.ProblemsAsync();

        Assert.Contains(problems, p => p.File!.EndsWith("ordo.yaml", StringComparison.Ordinal) && p.Path == "models.fast.provider");
        Assert.Contains(problems, p => p.File!.EndsWith("tools.yaml", StringComparison.Ordinal) && p.Path == "tools.ledger.post.cache");
        Assert.Contains(problems, p => p.File!.EndsWith("wf.yaml", StringComparison.Ordinal) && p.Path == "steps[0].agent");
    }

    [Fact]
    public async Task ValidationException_MessageListsEveryProblemWithItsLocation()
    {
        var (problems, _) = await InvalidAsync("  - { id: one, agent: ghost, timeout: 30x }");
        var e = new OrdoValidationException(problems);

        Assert.Contains("2 problems", e.Message, StringComparison.Ordinal);
        Assert.Contains("wf.yaml:", e.Message, StringComparison.Ordinal);
        Assert.Contains("steps[0].timeout: invalid duration", e.Message, StringComparison.Ordinal);
    }
}

using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>workflow: NAME@VERSION</c> steps run from YAML: child jobs, their links, results and failures, input checks, resolution errors.</summary>
public sealed class SubWorkflowTests
{
    private const string Child = """
        ordo: 1
        workflow: child
        version: 1
        input: { type: object, required: [n], properties: { n: { type: integer } } }
        artifacts:
          doubled: { schema: { type: object, required: [value] } }
          guess:   { schema: { type: object }, verify: { min_confidence: 0.9 } }
        agents:
          doubler: { kind: code, type: T.Double, output: doubled }
          guesser: { kind: code, type: T.Guess, output: guess }
        steps:
          - { id: double, agent: doubler, input: { n: "${ input.n }" }, next: guess }
          - { id: guess, agent: guesser }
        """;

    private const string Parent = """
        ordo: 1
        workflow: parent
        version: 1
        agents:
          user: { kind: code, type: T.Use }
        steps:
          - { id: sub, workflow: child@1, input: { n: "${ input.n }" }, next: use }
          - { id: use, agent: user, input: { got: "${ steps.sub.output }" } }
        """;

    private static PatternHarness Harness()
    {
        var h = new PatternHarness();
        h.Agent("T.Double", input => J($$"""{"value": {{input.GetProperty("n").GetInt32() * 2}}}"""));
        h.Agent("T.Guess", "{\"hunch\": 7, \"confidence\": 0.2}");
        h.Agent("T.Use", input => input);
        h.Write("child.yaml", Child);
        return h;
    }

    [Fact]
    public async Task ASubWorkflowInsideACancelledBranch_IsCancelled_AndItsLateEndChangesNothing()
    {
        await using var h = Harness();
        h.Write("waits.yaml", """
            ordo: 1
            workflow: waits
            version: 1
            steps:
              - { id: hold, approval: { role: approver }, next: done }
              - { id: done, transform: { set: { waited: "${ input.n }" } } }
            """);
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: race
            version: 1
            steps:
              - id: fan
                parallel: [fast, slow]
                join: pick
                join_policy: any
              - { id: fast, workflow: child@1, input: { n: 1 } }
              - { id: slow, workflow: waits@1, input: { n: 2 } }
              - { id: pick, transform: { set: { winner: "${ steps.fast.output }" } } }
            """));

        Assert.Equal(JobStatus.Completed, state.Status);
        var children = (await h.ChildrenAsync(state.JobId)).ToDictionary(c => c.Workflow);
        Assert.Equal(JobStatus.Completed, children["child"].Status);

        // The losing branch's sub-workflow, paused at its approval, was asked to stop and is cancelled.
        var loser = (await h.ContinueAsync(children["waits"].JobId))!;
        Assert.Equal(JobStatus.Cancelled, loser.Status);
        var nested = state.Patterns.Values.Single(p => p.StepId == "slow");
        Assert.True(nested.Ended);
        Assert.Equal("cancelled", nested.Branches.Values.Single().Status);
        Assert.Contains("fan#1/slow was cancelled", nested.Branches.Values.Single().Reason, StringComparison.Ordinal);

        // Approving the cancelled child is refused, and the parent's log does not move.
        var seq = (await h.Runtime.GetStateAsync(state.JobId))!.Seq;
        await Assert.ThrowsAsync<ApprovalException>(() => h.Runtime.DecideAsync(loser.JobId, null, "bob", approve: true, null));
        await h.ContinueAsync(state.JobId);
        Assert.Equal(seq, (await h.Runtime.GetStateAsync(state.JobId))!.Seq);
    }

    [Fact]
    public async Task ChildJob_IsLinkedToItsParent_AndItsVerifiedArtifactsAreTheStepsOutput()
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Parent), """{"n": 21}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        // The quarantined artifact of the child is not part of its result.
        Assert.Equal("""{"doubled":{"value":42}}""", Raw(state.Steps["sub"].Output));
        Assert.Equal("""{"doubled":{"value":42}}""", Raw(h.Inputs("T.Use").Single().GetProperty("got")));

        var child = Assert.Single(await h.ChildrenAsync(state.JobId));
        Assert.Equal<JobId?>(state.JobId, child.ParentJobId);
        Assert.Equal(state.JobId, child.RootJobId);
        Assert.Equal(("child", 1, JobStatus.Completed), (child.Workflow, child.Version, child.Status));
        var childState = (await h.Runtime.GetStateAsync(child.JobId))!;
        Assert.Equal("""{"n":21}""", Raw(childState.Input));
        Assert.NotNull(childState.Artifacts["guess"].Quarantined);

        var events = await h.EventsAsync(state.JobId);
        var started = events.Single(e => e.Type == EventTypes.BranchStarted).GetPayload<BranchStartedPayload>();
        Assert.Equal((child.JobId.Value, "child@1", "sub#1/child"), (started.ChildJobId, started.Workflow, started.Scope));
        var ended = events.Single(e => e.Type == EventTypes.BranchEnded).GetPayload<BranchEndedPayload>();
        Assert.Equal(("succeeded", child.JobId.Value), (ended.Status, ended.ChildJobId));
        Assert.Equal("""{"doubled":{"value":42}}""", Raw(ended.Output));
        var order = events.Select(e => e.StepId is null ? e.Type : $"{e.Type}:{e.StepId}").ToList();
        Assert.True(order.IndexOf("BranchStarted:sub") < order.IndexOf("BranchEnded:sub"));
        Assert.True(order.IndexOf("BranchEnded:sub") < order.IndexOf("StepSucceeded:sub"));
        Assert.Equal(EventTypes.JobCompleted, events[^1].Type);

        // The child's log starts with its submission, naming the parent.
        var childEvents = await h.EventsAsync(child.JobId);
        var submitted = childEvents[0].GetPayload<JobSubmittedPayload>();
        Assert.Equal(state.JobId.Value, submitted.ParentJobId);
    }

    [Fact]
    public async Task GrandChild_HasTheTopJobAsItsRoot_AndItsOwnParent()
    {
        await using var h = Harness();
        h.Write("middle.yaml", """
            ordo: 1
            workflow: middle
            version: 3
            steps:
              - { id: deeper, workflow: child@1, input: { n: "${ input.n + 1 }" } }
            """);
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: top
            version: 1
            steps:
              - { id: sub, workflow: middle@3, input: { n: "${ input.n }" } }
            """);
        var state = await h.RunAsync(wf, """{"n": 4}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        var middle = Assert.Single(await h.ChildrenAsync(state.JobId));
        var grandchild = Assert.Single(await h.ChildrenAsync(middle.JobId));
        Assert.Equal(state.JobId, middle.RootJobId);
        Assert.Equal(state.JobId, grandchild.RootJobId);
        Assert.Equal<JobId?>(middle.JobId, grandchild.ParentJobId);
        Assert.Equal(JobStatus.Completed, grandchild.Status);
        // middle has no artifacts of its own; its step output is its child's result.
        var middleState = (await h.Runtime.GetStateAsync(middle.JobId))!;
        Assert.Equal("""{"doubled":{"value":10}}""", Raw(middleState.Steps["deeper"].Output));
        Assert.Equal("{}", Raw(state.Steps["sub"].Output));
    }

    [Fact]
    public async Task ChildFailure_FailsTheParentStep_WithAReasonNamingTheChildJob()
    {
        await using var h = Harness();
        h.Agent("T.Double", (_, _) => Task.FromException<JsonElement>(new InvalidOperationException("cannot double")));
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Parent), """{"n": 1}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        var child = Assert.Single(await h.ChildrenAsync(state.JobId));
        Assert.Equal(JobStatus.Failed, child.Status);
        Assert.Contains($"child job {child.JobId} (child@1) failed", state.Reason);
        Assert.Contains("cannot double", state.Reason);
        Assert.Equal(0, h.Calls("T.Use"));
        var events = await h.EventsAsync(state.JobId);
        var ended = events.Single(e => e.Type == EventTypes.BranchEnded).GetPayload<BranchEndedPayload>();
        Assert.Equal(("failed", child.JobId.Value), (ended.Status, ended.ChildJobId));
        var failed = events.Single(e => e.Type == EventTypes.StepFailed && e.StepId == "sub").GetPayload<StepFailedPayload>();
        Assert.Equal("branch_failed", failed.Error);
        Assert.Contains("the child job failed", failed.Message);
    }

    [Fact]
    public async Task InvalidChildInput_IsRefusedBeforeAnyChildJobIsCreated()
    {
        await using var h = Harness();
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Parent), """{"n": "twenty"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("the input does not match the input schema of child@1", state.Reason);
        Assert.Empty(await h.ChildrenAsync(state.JobId));
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("invalid_child_input", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.DoesNotContain(events, e => e.Type is EventTypes.PatternStarted or EventTypes.BranchStarted);
    }

    [Fact]
    public async Task ForeachOverASubWorkflow_OneInvalidItem_RefusesEveryItemBeforeAnyChildIsCreated()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: many
            version: 1
            steps:
              - { id: each, foreach: "${ input.items }", do: child@1 }
            """);
        var state = await h.RunAsync(wf, """{"items": [{"n": 1}, {"n": 2}, {"m": 3}]}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("item 2 does not match the input schema of child@1", state.Reason);
        Assert.Empty(await h.ChildrenAsync(state.JobId));
        Assert.Equal(0, h.Calls("T.Double"));
    }

    [Fact]
    public async Task MissingSubWorkflow_IsAValidationError_NamingFileLineAndKey()
    {
        await using var h = Harness();
        h.Write("wf.yaml", """
            ordo: 1
            workflow: parent
            version: 1
            steps:
              - { id: first, workflow: child@1, input: { n: 1 }, next: second }
              - id: second
                workflow: nowhere@4
            """);
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => h.LoadAsync());
        var p = Assert.Single(e.Problems);
        Assert.EndsWith("wf.yaml", p.File);
        Assert.Equal(7, p.Line);
        Assert.Equal("steps[1].workflow", p.Path);
        Assert.Contains("workflow 'nowhere@4' was not found", p.Message);
    }

    [Fact]
    public async Task MissingForeachSubWorkflow_IsAValidationError_NamingTheDoKey()
    {
        await using var h = Harness();
        h.Write("wf.yaml", """
            ordo: 1
            workflow: parent
            version: 1
            steps:
              - { id: each, foreach: "${ input.items }", do: child@2 }
            """);
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => h.LoadAsync());
        var p = Assert.Single(e.Problems);
        Assert.EndsWith("wf.yaml", p.File);
        Assert.Equal(5, p.Line);
        Assert.Equal("steps[0].do", p.Path);
        Assert.Contains("workflow 'child@2' was not found", p.Message);
    }

    [Fact]
    public async Task SubWorkflow_IsFoundInTheProjectsWorkflowFolders()
    {
        await using var h = Harness();
        File.Delete(Path.Combine(h.Dir, "child.yaml"));
        h.Write("lib/child.yaml", Child);
        h.Write("ordo.yaml", "workflows: [lib]\n");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Parent), """{"n": 5}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"doubled":{"value":10}}""", Raw(state.Steps["sub"].Output));
    }

    [Fact]
    public async Task ChildDefinition_IsPinnedWithTheParent_ChangingTheFileLaterChangesNothing()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Parent);
        h.Write("child.yaml", Child.Replace("\"${ input.n }\"", "\"${ input.n * 100 }\"", StringComparison.Ordinal));
        var state = await h.RunAsync(wf, """{"n": 1}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"doubled":{"value":2}}""", Raw(state.Steps["sub"].Output));
        Assert.True(wf.SubWorkflows.ContainsKey("child@1"));
    }
}

using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>foreach</c> steps run from YAML: input order, max_concurrency, item/index, empty and invalid lists, failures, sub-workflows per item.</summary>
public sealed class ForeachTests
{
    private static string Workflow(string each, string rest) => $$"""
        ordo: 1
        workflow: mapper
        version: 1
        agents:
          proc:    { kind: code, type: T.Proc }
          tagger:  { kind: code, type: T.Tag }
          collect: { kind: code, type: T.Collect }
        steps:
          - {{each}}
        {{rest}}
          - { id: after, agent: collect, input: { results: "${ steps.each.output }" } }
        """;

    private static PatternHarness Harness()
    {
        var h = new PatternHarness();
        h.Agent("T.Proc", input => J($$"""{"v": {{input.GetProperty("value").GetRawText()}}, "at": {{input.GetProperty("at").GetRawText()}}}"""));
        h.Agent("T.Tag", input => input);
        h.Agent("T.Collect", input => input);
        return h;
    }

    private static List<BranchEndedPayload> ItemEnds(List<EventEnvelope> events)
        => events.Where(e => e.Type == EventTypes.BranchEnded && e.StepId == "each").Select(e => e.GetPayload<BranchEndedPayload>()).ToList();

    [Fact]
    public async Task Results_AreInInputOrder_WhenItemsFinishOutOfOrder_AndNoMoreThanMaxConcurrencyItemsEverRunAtOnce()
    {
        await using var h = Harness();
        var gates = Enumerable.Range(0, 5).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var started = Enumerable.Range(0, 5).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var gate = new Lock();
        int running = 0, most = 0;
        h.Agent("T.Proc", async (ctx, ct) =>
        {
            var i = ctx.Input.GetProperty("at").GetInt32();
            lock (gate)
            {
                running++;
                most = Math.Max(most, running);
            }

            started[i].TrySetResult();
            await gates[i].Task.WaitAsync(ct);
            lock (gate) running--;
            return J($$"""{"v": {{ctx.Input.GetProperty("value").GetRawText()}}, "at": {{i}}}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, max_concurrency: 2, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item }", at: "${ index }" } }
            """));
        var id = await h.SubmitAsync(wf, """{"items": ["a", "b", "c", "d", "e"]}""");
        var run = h.ContinueAsync(id);

        // Finish order 1, 2, 0, 4, 3: each release lets exactly one more item start.
        await Task.WhenAll(started[0].Task, started[1].Task).WaitAsync(Patience);
        gates[1].SetResult();
        await started[2].Task.WaitAsync(Patience);
        gates[2].SetResult();
        await started[3].Task.WaitAsync(Patience);
        gates[0].SetResult();
        await started[4].Task.WaitAsync(Patience);
        gates[4].SetResult();
        await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "4");
        gates[3].SetResult();
        var state = await run;

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal(2, most);
        Assert.Equal("""[{"v":"a","at":0},{"v":"b","at":1},{"v":"c","at":2},{"v":"d","at":3},{"v":"e","at":4}]""", Raw(state.Steps["each"].Output));
        Assert.Equal(state.Steps["each"].Output!.Value.GetRawText(), h.Inputs("T.Collect").Single().GetProperty("results").GetRawText());

        var events = await h.EventsAsync(id);
        var pattern = events.Single(e => e.Type == EventTypes.PatternStarted).GetPayload<PatternStartedPayload>();
        Assert.Equal(("foreach", 5, 2, "process"), (pattern.Kind, pattern.Count, pattern.MaxConcurrency, pattern.Do));
        Assert.Equal(["1", "2", "0", "4", "3"], ItemEnds(events).Select(b => b.Label));
        Assert.All(ItemEnds(events), b => Assert.Equal("succeeded", b.Status));
        var scheduled = events.Where(e => e.Type == EventTypes.StepScheduled && e.GetPayload<StepScheduledPayload>().Reason == "item").Select(e => e.Scope).ToList();
        Assert.Equal(["each#1/0", "each#1/1", "each#1/2", "each#1/3", "each#1/4"], scheduled);

        // Replaying the log: at no point were more than two items started and not yet ended.
        var open = 0;
        foreach (var e in events)
        {
            if (e.Type == EventTypes.StepScheduled && e.GetPayload<StepScheduledPayload>().Reason == "item") open++;
            if (e.Type == EventTypes.BranchEnded && e.StepId == "each") open--;
            Assert.InRange(open, 0, 2);
        }
    }

    [Fact]
    public async Task ItemAndIndex_AreVisibleInEveryStepOfAnItem_AndStepsMeansTheItemsOwnSteps()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, max_concurrency: 3, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item.name }", at: "${ index }" }, next: tag }
              - { id: tag, agent: tagger, input: { own: "${ steps.process.output.v }", item: "${ item.name }", index: "${ index }", label: "${ item.name + '#' + index }" } }
            """));
        var state = await h.RunAsync(wf, """{"items": [{"name": "x"}, {"name": "y"}, {"name": "z"}]}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        // The item's result is the output of its last step.
        Assert.Equal(
            """[{"own":"x","item":"x","index":0,"label":"x#0"},{"own":"y","item":"y","index":1,"label":"y#1"},{"own":"z","item":"z","index":2,"label":"z#2"}]""",
            Raw(state.Steps["each"].Output));
        Assert.All(h.Inputs("T.Tag"), i => Assert.Equal(i.GetProperty("item").GetString(), i.GetProperty("own").GetString()));
        var tagged = h.CalledFor("T.Tag").Select(s => s.Scope).Order(StringComparer.Ordinal);
        Assert.Equal(["each#1/0", "each#1/1", "each#1/2"], tagged);
    }

    [Fact]
    public async Task EmptyList_SucceedsAtOnce_WithAnEmptyList_AndRunsNoItem()
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item }", at: "${ index }" } }
            """));
        var state = await h.RunAsync(wf, """{"items": []}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("[]", Raw(state.Steps["each"].Output));
        Assert.Equal("[]", Raw(h.Inputs("T.Collect").Single().GetProperty("results")));
        Assert.Equal(0, h.Calls("T.Proc"));
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal(0, events.Single(e => e.Type == EventTypes.PatternStarted).GetPayload<PatternStartedPayload>().Count);
        Assert.DoesNotContain(events, e => e.Type is EventTypes.BranchEnded || (e.Type == EventTypes.StepScheduled && e.StepId == "process"));
    }

    [Theory]
    [InlineData("\"abc\"", "a string")]
    [InlineData("{\"a\": 1}", "an object")]
    [InlineData("42", "a number")]
    [InlineData("null", "null")]
    public async Task NotAList_FailsTheStep_SayingWhatItGot(string items, string what)
    {
        await using var h = Harness();
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item }", at: "${ index }" } }
            """));
        var state = await h.RunAsync(wf, $$"""{"items": {{items}}}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains($"foreach: the expression gave {what}, not a list", state.Reason);
        Assert.Contains("step 'each'", state.Reason);
        var failed = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>();
        Assert.Equal("foreach_not_a_list", failed.Error);
        Assert.False(failed.Retryable);
        Assert.Equal(0, h.Calls("T.Proc"));
        Assert.Equal(0, h.Calls("T.Collect"));
    }

    [Fact]
    public async Task AFailingItem_FailsTheStep_NamingTheItem_AndLaterItemsNeverStart()
    {
        await using var h = Harness();
        h.Agent("T.Proc", input => input.GetProperty("value").GetInt32() == 2
            ? throw new InvalidOperationException("two is not allowed")
            : J($$"""{"v": {{input.GetProperty("value").GetInt32()}}}"""));
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, max_concurrency: 1, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item }", at: "${ index }" } }
            """));
        var state = await h.RunAsync(wf, """{"items": [1, 2, 3]}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("item 1 failed", state.Reason);
        Assert.Contains("two is not allowed", state.Reason);
        Assert.Equal(2, h.Calls("T.Proc"));
        Assert.Equal(0, h.Calls("T.Collect"));
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal([("0", "succeeded"), ("1", "failed")], ItemEnds(events).Select(b => (b.Label, b.Status)));
        Assert.Equal("branch_failed", events.Single(e => e.Type == EventTypes.StepFailed && e.StepId == "each").GetPayload<StepFailedPayload>().Error);
        Assert.DoesNotContain(events, e => e.Scope == "each#1/2");
    }

    [Fact]
    public async Task AFailingItem_CancelsTheItemsStillRunning_WhichSaySo()
    {
        await using var h = Harness();
        h.Agent("T.Proc", async (ctx, ct) =>
        {
            var v = ctx.Input.GetProperty("value").GetInt32();
            if (v == 2)
            {
                await h.WhenAsync(e => e.Type == EventTypes.BranchEnded && e.GetPayload<BranchEndedPayload>().Label == "0");
                throw new InvalidOperationException("two is not allowed");
            }

            if (v == 3) await h.WhenAnyJobEndsAsync();
            return J($$"""{"v": {{v}}}""");
        });
        var wf = await h.LoadAsync("wf.yaml", Workflow("""{ id: each, foreach: "${ input.items }", do: process, max_concurrency: 3, next: after }""", """
              - { id: process, agent: proc, input: { value: "${ item }", at: "${ index }" } }
            """));
        var state = await h.RunAsync(wf, """{"items": [1, 2, 3]}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        var ends = ItemEnds(await h.EventsAsync(state.JobId));
        Assert.Equal([("0", "succeeded"), ("1", "failed"), ("2", "cancelled")], ends.Select(b => (b.Label, b.Status)));
        Assert.Equal("cancelled: item 1 failed", ends[2].Reason);
        Assert.Contains("two is not allowed", ends[1].Reason);
    }

    [Fact]
    public async Task DoSubWorkflow_RunsEachItemAsALinkedChildJob_WithTheItemAsInput_ResultsInInputOrder()
    {
        await using var h = Harness();
        h.Agent("T.Price", input => J($$"""{"sku": "{{input.GetProperty("sku").GetString()}}", "total": {{input.GetProperty("qty").GetInt32() * 10}}}"""));
        h.Write("line.yaml", """
            ordo: 1
            workflow: line-item
            version: 2
            input: { type: object, required: [sku, qty], properties: { sku: { type: string }, qty: { type: integer } } }
            artifacts:
              priced: { schema: { type: object, required: [sku, total] } }
            agents:
              pricer: { kind: code, type: T.Price, output: priced }
            steps:
              - { id: price, agent: pricer }
            """);
        var wf = await h.LoadAsync("wf.yaml", """
            ordo: 1
            workflow: order
            version: 1
            agents:
              collect: { kind: code, type: T.Collect }
            steps:
              - { id: each, foreach: "${ input.lines }", do: line-item@2, max_concurrency: 2, next: after }
              - { id: after, agent: collect, input: { results: "${ steps.each.output }" } }
            """);
        var state = await h.RunAsync(wf, """{"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, {"sku": "C", "qty": 3}]}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""[{"priced":{"sku":"A","total":10}},{"priced":{"sku":"B","total":20}},{"priced":{"sku":"C","total":30}}]""", Raw(state.Steps["each"].Output));
        var children = await h.ChildrenAsync(state.JobId);
        Assert.Equal(3, children.Count);
        Assert.All(children, c =>
        {
            Assert.Equal<JobId?>(state.JobId, c.ParentJobId);
            Assert.Equal(state.JobId, c.RootJobId);
            Assert.Equal(("line-item", 2, JobStatus.Completed), (c.Workflow, c.Version, c.Status));
        });

        var events = await h.EventsAsync(state.JobId);
        var branchStarts = events.Where(e => e.Type == EventTypes.BranchStarted).Select(e => e.GetPayload<BranchStartedPayload>()).ToList();
        Assert.Equal(["0", "1", "2"], branchStarts.Select(b => b.Label));
        Assert.All(branchStarts, b => Assert.Equal("line-item@2", b.Workflow));
        Assert.Equal(children.Select(c => c.JobId.Value).Order(StringComparer.Ordinal), branchStarts.Select(b => b.ChildJobId!).Order(StringComparer.Ordinal));
        foreach (var b in branchStarts)
        {
            var child = (await h.Runtime.GetStateAsync(new JobId(b.ChildJobId!)))!;
            var index = int.Parse(b.Label, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(new[] { "A", "B", "C" }[index], child.Input!.Value.GetProperty("sku").GetString());
            var end = ItemEnds(events).Single(e => e.Label == b.Label);
            Assert.Equal(b.ChildJobId, end.ChildJobId);
        }
    }
}

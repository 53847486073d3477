using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using static Ordo.Tests.Patterns.PatternHarness;

namespace Ordo.Tests.Patterns;

/// <summary><c>auction</c> (contract-net) steps run from YAML: bids, scores, ties, invalid bids, the award.</summary>
public sealed class AuctionTests
{
    private static string Workflow(string bidders) => $$"""
        ordo: 1
        workflow: tender
        version: 1
        artifacts:
          work: { schema: { type: object, required: [done_by] } }
        agents:
          alpha: { kind: code, type: T.Alpha, output: work }
          beta:  { kind: code, type: T.Beta, output: work }
          gamma: { kind: code, type: T.Gamma, output: work }
        steps:
          - id: bid
            auction:
              bidders: [{{bidders}}]
              task: "${ input.task }"
              score: "bid.cost + 0.01 * bid.latency_ms - bid.confidence"
        """;

    /// <summary>Registers a bidder: in the bid phase it returns <paramref name="bid"/>, in the award phase the work.</summary>
    private static void Bidder(PatternHarness h, string type, string name, string bid)
        => h.Agent(type, input => input.GetProperty("phase").GetString() == "bid"
            ? J(bid)
            : J($$"""{"done_by": "{{name}}", "task": {{input.GetProperty("task").GetRawText()}}}"""));

    /// <summary>A harness where every bidder bids the same until a test says otherwise.</summary>
    private static PatternHarness Harness()
    {
        var h = new PatternHarness();
        foreach (var (type, name) in new[] { ("T.Alpha", "alpha"), ("T.Beta", "beta"), ("T.Gamma", "gamma") })
        {
            Bidder(h, type, name, """{"cost": 1, "latency_ms": 0, "confidence": 0}""");
        }

        return h;
    }

    private static List<PatternProgressedPayload> Units(List<EventEnvelope> events)
        => events.Where(e => e.Type == EventTypes.PatternProgressed).Select(e => e.GetPayload<PatternProgressedPayload>()).ToList();

    [Fact]
    public async Task LowestScoreWins_EveryBidderIsAskedToBid_AndOnlyTheWinnerIsAwarded()
    {
        await using var h = Harness();
        Bidder(h, "T.Alpha", "alpha", """{"cost": 1, "latency_ms": 100, "confidence": 0.5}""");  // 1.5
        Bidder(h, "T.Beta", "beta", """{"cost": 2, "latency_ms": 10, "confidence": 0.9}""");     // 1.2
        Bidder(h, "T.Gamma", "gamma", """{"cost": 3, "latency_ms": 0, "confidence": 1}""");      // 2.0
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("alpha, beta, gamma")), """{"task": {"translate": "hello"}}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("""{"done_by":"beta","task":{"translate":"hello"}}""", Raw(state.Steps["bid"].Output));
        Assert.Equal("""{"phase":"bid","task":{"translate":"hello"}}""", Raw(h.Inputs("T.Alpha").Single()));
        Assert.Equal(["""{"phase":"bid","task":{"translate":"hello"}}""", """{"phase":"award","task":{"translate":"hello"}}"""], h.Inputs("T.Beta").Select(i => Raw(i)));
        Assert.Equal(1, h.Calls("T.Gamma"));
        Assert.Equal("beta", state.Artifacts["work"].Verified!.Value.GetProperty("done_by").GetString());

        var units = Units(await h.EventsAsync(state.JobId));
        Assert.Equal(["bid", "bid", "bid", "award"], units.Select(u => u.Phase));
        Assert.Equal(["alpha", "beta", "gamma"], units.Take(3).Select(u => u.Data.GetProperty("bidder").GetString()));
        Assert.All(units.Take(3), u => Assert.True(u.Data.GetProperty("valid").GetBoolean()));
        var award = units[3].Data;
        Assert.Equal("beta", award.GetProperty("winner").GetString());
        Assert.Equal(1.2, award.GetProperty("score").GetDouble(), 9);
        Assert.Equal(1.5, award.GetProperty("scores").GetProperty("alpha").GetDouble(), 9);
        Assert.Equal(2.0, award.GetProperty("scores").GetProperty("gamma").GetDouble(), 9);
    }

    [Fact]
    public async Task ATie_GoesToTheBidderListedFirst()
    {
        await using var h = Harness();
        Bidder(h, "T.Alpha", "alpha", """{"cost": 1, "latency_ms": 50, "confidence": 0.5}""");
        Bidder(h, "T.Beta", "beta", """{"cost": 1, "latency_ms": 50, "confidence": 0.5}""");
        Bidder(h, "T.Gamma", "gamma", """{"cost": 1, "latency_ms": 50, "confidence": 0.5}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("gamma, alpha, beta")), """{"task": "t"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("gamma", state.Steps["bid"].Output!.Value.GetProperty("done_by").GetString());
        Assert.Equal(["gamma", "alpha", "beta"], Units(await h.EventsAsync(state.JobId)).Where(u => u.Phase == "bid").Select(u => u.Data.GetProperty("bidder").GetString()));
    }

    [Fact]
    public async Task AnInvalidBid_IsExcludedWithItsReason_EvenWhenItWouldScoreBest()
    {
        await using var h = Harness();
        Bidder(h, "T.Alpha", "alpha", """{"cost": -100, "latency_ms": 0, "confidence": 2}""");
        Bidder(h, "T.Beta", "beta", """{"cost": 5, "latency_ms": 0, "confidence": 0}""");
        h.Agent("T.Gamma", input => input.GetProperty("phase").GetString() == "bid" ? throw new InvalidOperationException("no capacity") : J("{}"));
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("alpha, beta, gamma")), """{"task": "t"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("beta", state.Steps["bid"].Output!.Value.GetProperty("done_by").GetString());
        var units = Units(await h.EventsAsync(state.JobId));
        var alpha = units[0].Data;
        Assert.False(alpha.GetProperty("valid").GetBoolean());
        Assert.Equal("'cost' is negative, 'confidence' is above 1", alpha.GetProperty("reason").GetString());
        var gamma = units[2].Data;
        Assert.False(gamma.GetProperty("valid").GetBoolean());
        Assert.Contains("the bidder failed", gamma.GetProperty("reason").GetString());
        Assert.Contains("no capacity", gamma.GetProperty("reason").GetString());
        var award = units[3].Data;
        Assert.Equal("""{"beta":5}""", Raw(award.GetProperty("scores")));
        var excluded = award.GetProperty("excluded").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(2, excluded.Count);
        Assert.StartsWith("alpha: 'cost' is negative", excluded[0]);
        Assert.StartsWith("gamma: the bidder failed", excluded[1]);
        Assert.Equal(1, h.Calls("T.Alpha"));
    }

    [Theory]
    [InlineData("""{"cost": 1, "confidence": 0.5}""", "'latency_ms' is missing or not a number")]
    [InlineData("""{"cost": "cheap", "latency_ms": 1, "confidence": 0.5}""", "'cost' is missing or not a number")]
    [InlineData("""{"cost": 1, "latency_ms": -1, "confidence": 0.5}""", "'latency_ms' is negative")]
    public async Task BidSchema_IsChecked_FieldByField(string bid, string reason)
    {
        await using var h = Harness();
        Bidder(h, "T.Alpha", "alpha", bid);
        Bidder(h, "T.Beta", "beta", """{"cost": 9, "latency_ms": 0, "confidence": 0}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("alpha, beta")), """{"task": "t"}""");

        Assert.Equal(JobStatus.Completed, state.Status);
        Assert.Equal("beta", state.Steps["bid"].Output!.Value.GetProperty("done_by").GetString());
        var alpha = Units(await h.EventsAsync(state.JobId))[0].Data;
        Assert.Equal(reason, alpha.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task NoValidBid_FailsTheStep_WithEveryBiddersReason_AndNobodyIsAwarded()
    {
        await using var h = Harness();
        Bidder(h, "T.Alpha", "alpha", """{"cost": -1, "latency_ms": 0, "confidence": 0.5}""");
        Bidder(h, "T.Beta", "beta", """{"price": 1}""");
        var state = await h.RunAsync(await h.LoadAsync("wf.yaml", Workflow("alpha, beta")), """{"task": "t"}""");

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.Contains("no valid bid: alpha: 'cost' is negative; beta: 'cost' is missing or not a number", state.Reason);
        var events = await h.EventsAsync(state.JobId);
        Assert.Equal("no_valid_bid", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
        Assert.DoesNotContain(Units(events), u => u.Phase == "award");
        Assert.Equal(1, h.Calls("T.Alpha"));
        Assert.Equal(1, h.Calls("T.Beta"));
    }
}

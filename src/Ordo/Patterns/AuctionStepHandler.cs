using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>
/// Runs <c>auction</c> (contract-net) steps. Each bidder, in order, is asked <c>{ "phase": "bid", "task" }</c> — one
/// unit per bid, checked against the bid schema (<c>cost</c> and <c>latency_ms</c> non-negative numbers,
/// <c>confidence</c> in [0, 1]); an invalid bid or a failed bidder is recorded and excluded. Then the award: each valid
/// bid is scored with <c>score</c> (with <c>bid</c> and <c>task</c>), the lowest wins and ties go to the bidder listed
/// first; the decision is recorded with every score. Last, the winner is asked <c>{ "phase": "award", "task" }</c> and
/// its output (verified like any agent output) is the step's output. No valid bid fails the step.
/// </summary>
internal sealed class AuctionStepHandler(AgentInvoker agents) : IStepHandler
{
    public string Kind => "auction";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (AuctionStep)execution.Definition;
        JsonElement task;
        try
        {
            task = step.Task?.Evaluate(execution.Evaluator, execution.Scope) ?? execution.State.Input ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("auction.task"), retryable: false);
        }

        var units = MultiPhase.Units(execution);
        var bids = units.Where(u => u.Phase == "bid").ToList();
        if (bids.Count < step.Bidders.Count)
        {
            var bidder = step.Bidders[bids.Count];
            var request = new JsonObject { ["phase"] = "bid", ["task"] = MultiPhase.Node(task) };
            var outcome = await MultiPhase.InvokeAsync(agents, execution, bidder, JsonElementFactory.FromNode(request), cancellationToken).ConfigureAwait(false);
            var problem = outcome.Succeeded ? CheckBid(outcome.Output!.Value) : $"the bidder failed: {outcome.Message}";
            var data = new JsonObject { ["bidder"] = bidder, ["valid"] = problem is null, ["bid"] = MultiPhase.Node(outcome.Output) };
            if (problem is not null) data["reason"] = problem;
            return MultiPhase.Unit(execution, Kind, "bid", data, outcome with { Output = null });
        }

        var award = units.FirstOrDefault(u => u.Phase == "award");
        if (award is null)
        {
            return Award(execution, step, task, bids);
        }

        var winner = MultiPhase.Text(award.Data, "winner")!;
        var call = new JsonObject { ["phase"] = "award", ["task"] = MultiPhase.Node(task) };
        var result = await MultiPhase.InvokeAsync(agents, execution, winner, JsonElementFactory.FromNode(call), cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            return result with { Message = $"the winner {winner}: {result.Message}" };
        }

        var artifacts = execution.Workflow.Agents.TryGetValue(winner, out var agent) && agent.Output is { } name ? new[] { new ArtifactCandidate(name, result.Output!.Value) } : [];
        return result with { Artifacts = artifacts };
    }

    private static StepOutcome Award(StepExecution execution, AuctionStep step, JsonElement task, List<State.ProgressUnit> bids)
    {
        var scores = new JsonObject();
        string? winner = null;
        var best = double.PositiveInfinity;
        var reasons = new List<string>();
        foreach (var unit in bids)
        {
            var bidder = MultiPhase.Text(unit.Data, "bidder")!;
            if (unit.Data.TryGetProperty("valid", out var valid) && valid.ValueKind == JsonValueKind.False)
            {
                reasons.Add($"{bidder}: {MultiPhase.Text(unit.Data, "reason")}");
                continue;
            }

            double score;
            try
            {
                score = execution.Evaluator.EvaluateNumber(step.Score, execution.Scope.With("bid", unit.Data.GetProperty("bid")).With("task", task));
            }
            catch (ExpressionEvaluationException e)
            {
                reasons.Add($"{bidder}: the score could not be computed: {e.Message}");
                continue;
            }

            scores[bidder] = score;
            if (score < best)
            {
                best = score;
                winner = bidder;
            }
        }

        if (winner is null)
        {
            var why = bids.Count == 0 ? "there are no bidders" : string.Join("; ", reasons);
            return StepOutcome.Failure("no_valid_bid", $"no valid bid: {why}", retryable: false);
        }

        var data = new JsonObject { ["winner"] = winner, ["score"] = best, ["scores"] = scores };
        if (reasons.Count > 0) data["excluded"] = new JsonArray(reasons.Select(r => (JsonNode)r).ToArray());
        return MultiPhase.Unit(execution, "auction", "award", data);
    }

    /// <summary>Why a bid does not match the bid schema, or null.</summary>
    internal static string? CheckBid(JsonElement bid)
    {
        if (bid.ValueKind != JsonValueKind.Object) return $"the bid is {ForeachStepHandler.Describe(bid)}, not an object {{ cost, latency_ms, confidence }}";
        var problems = new List<string>();
        foreach (var field in new[] { "cost", "latency_ms", "confidence" })
        {
            if (!bid.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.Number) problems.Add($"'{field}' is missing or not a number");
            else if (v.GetDouble() < 0) problems.Add($"'{field}' is negative");
            else if (field == "confidence" && v.GetDouble() > 1) problems.Add("'confidence' is above 1");
        }

        return problems.Count == 0 ? null : string.Join(", ", problems);
    }
}

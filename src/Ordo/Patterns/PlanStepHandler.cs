using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>
/// Runs <c>plan</c> steps. Unit 0: the planner returns <c>{ "plan": [ { "agent", "input" } ] }</c>; the plan is checked
/// against <c>catalog</c> and <c>max_steps</c> as a whole — an invalid plan is rejected with every reason and never
/// partly run, and the <c>fallback</c> step runs instead (without one, the step fails). Then each plan item runs in
/// order, one unit each, its output verified like any agent output. The step's output is
/// <c>{ "plan": [...], "results": [...] }</c>.
/// </summary>
internal sealed class PlanStepHandler(AgentInvoker agents) : IStepHandler
{
    public string Kind => "plan";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (PlanStep)execution.Definition;
        var units = MultiPhase.Units(execution);
        if (units.Count == 0)
        {
            return await MakePlanAsync(execution, step, cancellationToken).ConfigureAwait(false);
        }

        var plan = units[0].Data.GetProperty("plan");
        var items = units.Skip(1).Where(u => u.Phase == "item").ToList();
        var done = items.Where(MultiPhase.Accepted).ToList();
        if (items.Count > 0 && !MultiPhase.Accepted(items[^1]) && MultiPhase.Int(items[^1].Data, "attempt") == execution.Step.Attempt)
        {
            var last = items[^1].Data;
            return StepOutcome.Failure("plan_item_rejected",
                $"plan item {MultiPhase.Int(last, "index")} ({MultiPhase.Text(last, "agent")}): its output was {MultiPhase.Text(last, "verdict")}: {MultiPhase.Text(last, "verdict_reason")}", retryable: true);
        }

        var index = done.Count;
        if (index >= plan.GetArrayLength())
        {
            var results = new JsonArray(done.Select(u => MultiPhase.Node(u.Data.TryGetProperty("output", out var o) ? o : null)).ToArray());
            return StepOutcome.Success(JsonElementFactory.FromNode(new JsonObject { ["plan"] = MultiPhase.Node(plan), ["results"] = results }));
        }

        var entry = plan[index];
        var agent = entry.GetProperty("agent").GetString()!;
        var input = entry.TryGetProperty("input", out var i) ? i : JsonElementFactory.EmptyObject;
        var outcome = await MultiPhase.InvokeAsync(agents, execution, agent, input, cancellationToken).ConfigureAwait(false);
        if (!outcome.Succeeded)
        {
            return outcome with { Message = $"plan item {index} ({agent}): {outcome.Message}" };
        }

        var data = new JsonObject
        {
            ["index"] = index, ["agent"] = agent, ["input"] = MultiPhase.Node(input), ["output"] = MultiPhase.Node(outcome.Output), ["attempt"] = execution.Step.Attempt,
        };
        return MultiPhase.Unit(execution, Kind, "item", data, outcome, agent);
    }

    private async ValueTask<StepOutcome> MakePlanAsync(StepExecution execution, PlanStep step, CancellationToken cancellationToken)
    {
        JsonElement task;
        try
        {
            task = step.Input?.Evaluate(execution.Evaluator, execution.Scope) ?? execution.State.Input ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("plan.input"), retryable: false);
        }

        var request = new JsonObject { ["task"] = MultiPhase.Node(task), ["catalog"] = new JsonArray(step.Catalog.Select(c => (JsonNode)c).ToArray()), ["max_steps"] = step.MaxSteps };
        var outcome = await MultiPhase.InvokeAsync(agents, execution, step.Agent, JsonElementFactory.FromNode(request), cancellationToken).ConfigureAwait(false);
        var problems = outcome.Succeeded ? Validate(outcome.Output, step) : [$"the planner failed: {outcome.Message}"];
        if (problems.Count == 0)
        {
            return MultiPhase.Unit(execution, Kind, "plan", new JsonObject { ["plan"] = MultiPhase.Node(outcome.Output!.Value.GetProperty("plan")) }, outcome with { Output = null });
        }

        var reason = $"plan rejected: {string.Join("; ", problems)}";
        if (step.Fallback is { } fallback)
        {
            var output = new JsonObject { ["rejected"] = reason, ["fallback"] = fallback, ["plan"] = MultiPhase.Node(outcome.Output) };
            return StepOutcome.Success(JsonElementFactory.FromNode(output)) with { RouteTo = fallback, Agent = outcome.Agent, PromptHash = outcome.PromptHash, Model = outcome.Model };
        }

        return StepOutcome.Failure("plan_rejected", reason, retryable: true, outcome.Output) with { Agent = outcome.Agent, PromptHash = outcome.PromptHash, Model = outcome.Model };
    }

    /// <summary>Every reason the plan cannot run, or none.</summary>
    internal static List<string> Validate(JsonElement? output, PlanStep step)
    {
        var problems = new List<string>();
        if (output is not { ValueKind: JsonValueKind.Object } o || !o.TryGetProperty("plan", out var plan) || plan.ValueKind != JsonValueKind.Array)
        {
            problems.Add("the planner's output has no 'plan' list");
            return problems;
        }

        var n = plan.GetArrayLength();
        if (n == 0) problems.Add("the plan is empty");
        if (n > step.MaxSteps) problems.Add($"the plan has {n} steps; max_steps is {step.MaxSteps}");
        var i = 0;
        foreach (var entry in plan.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"plan[{i}] is not an object");
            }
            else
            {
                var agent = MultiPhase.Text(entry, "agent");
                if (agent is null) problems.Add($"plan[{i}] has no 'agent'");
                else if (!step.Catalog.Contains(agent, StringComparer.Ordinal)) problems.Add($"plan[{i}].agent '{agent}' is not in the catalog ({string.Join(", ", step.Catalog)})");
                if (entry.TryGetProperty("input", out var input) && input.ValueKind != JsonValueKind.Object) problems.Add($"plan[{i}].input is not an object");
                foreach (var p in entry.EnumerateObject().Where(p => p.Name is not ("agent" or "input")))
                {
                    problems.Add($"plan[{i}] has an unknown key '{p.Name}'");
                }
            }

            i++;
        }

        return problems;
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>
/// Runs <c>supervise</c> steps. Each round is two units: the supervisor's decision
/// (<c>{ "next": WORKER | "done", "input": { } }</c>, given <c>{ "round", "results", "task" }</c>), then the chosen
/// worker's result, verified like any agent output before the supervisor sees it (a quarantined or rejected result
/// reaches it as a verdict without the value). <c>done</c> ends the step with the list of results; more than
/// <c>max_rounds</c> rounds fails it.
/// </summary>
internal sealed class SuperviseStepHandler(AgentInvoker agents) : IStepHandler
{
    public string Kind => "supervise";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (SuperviseStep)execution.Definition;
        var units = MultiPhase.Units(execution);
        var results = units.Where(u => u.Phase == "result").ToList();
        if (units.Count > 0 && units[^1].Phase == "decision")
        {
            var chosen = units[^1].Data;
            var worker = MultiPhase.Text(chosen, "next")!;
            var input = chosen.TryGetProperty("input", out var i) ? i : JsonElementFactory.EmptyObject;
            var outcome = await MultiPhase.InvokeAsync(agents, execution, worker, input, cancellationToken).ConfigureAwait(false);
            if (!outcome.Succeeded)
            {
                return outcome with { Message = $"round {results.Count + 1}, worker {worker}: {outcome.Message}" };
            }

            var data = new JsonObject
            {
                ["round"] = results.Count + 1, ["worker"] = worker, ["input"] = MultiPhase.Node(input), ["output"] = MultiPhase.Node(outcome.Output), ["attempt"] = execution.Step.Attempt,
            };
            return MultiPhase.Unit(execution, Kind, "result", data, outcome, worker);
        }

        JsonElement task;
        try
        {
            task = step.Input?.Evaluate(execution.Evaluator, execution.Scope) ?? execution.State.Input ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("supervise.input"), retryable: false);
        }

        var seen = new JsonArray(results.Select(r => (JsonNode?)Seen(r.Data)).ToArray());
        if (results.Count >= step.MaxRounds)
        {
            return StepOutcome.Failure("max_rounds", $"the supervisor did not answer 'done' within max_rounds ({step.MaxRounds})", retryable: false, JsonElementFactory.FromNode(seen));
        }

        var request = new JsonObject { ["round"] = results.Count + 1, ["results"] = seen, ["task"] = MultiPhase.Node(task) };
        var answer = await MultiPhase.InvokeAsync(agents, execution, step.Agent, JsonElementFactory.FromNode(request), cancellationToken).ConfigureAwait(false);
        if (!answer.Succeeded)
        {
            return answer with { Message = $"round {results.Count + 1}, supervisor {step.Agent}: {answer.Message}" };
        }

        var value = answer.Output!.Value;
        var next = MultiPhase.Text(value, "next");
        var stamps = (answer.Agent, answer.PromptHash, answer.Model);
        if (next == "done")
        {
            var output = JsonElementFactory.FromNode(new JsonArray(results.Select(r => (JsonNode?)Seen(r.Data)).ToArray()));
            return StepOutcome.Success(output) with { Agent = stamps.Agent, PromptHash = stamps.PromptHash, Model = stamps.Model };
        }

        if (next is null || !step.Workers.Contains(next, StringComparer.Ordinal))
        {
            var got = next is null ? $"an answer without 'next' ({value.GetRawText()})" : $"'{next}'";
            return StepOutcome.Failure("invalid_decision", $"round {results.Count + 1}: the supervisor chose {got}, which is neither one of its workers ({string.Join(", ", step.Workers)}) nor 'done'", retryable: true)
                with { Agent = stamps.Agent, PromptHash = stamps.PromptHash, Model = stamps.Model };
        }

        if (value.TryGetProperty("input", out var workerInput) && workerInput.ValueKind != JsonValueKind.Object)
        {
            return StepOutcome.Failure("invalid_decision", $"round {results.Count + 1}: the supervisor's 'input' for {next} is not an object", retryable: true);
        }

        var decision = new JsonObject { ["round"] = results.Count + 1, ["next"] = next, ["input"] = MultiPhase.Node(value.TryGetProperty("input", out var wi) ? wi : JsonElementFactory.EmptyObject) };
        return MultiPhase.Unit(execution, Kind, "decision", decision, answer with { Output = null });
    }

    /// <summary>A result as the supervisor (and the step's output) shows it: the value only when it was verified.</summary>
    private static JsonObject Seen(JsonElement result)
    {
        var o = new JsonObject
        {
            ["round"] = MultiPhase.Int(result, "round"),
            ["worker"] = MultiPhase.Text(result, "worker"),
            // A held result is seen only once its approval was granted.
            ["verdict"] = MultiPhase.Text(result, "verdict") switch { null => "verified", "held" => "approved", var v => v },
        };
        if (result.TryGetProperty("output", out var output)) o["output"] = MultiPhase.Node(output);
        if (MultiPhase.Text(result, "verdict_reason") is { } why) o["reason"] = why;
        return o;
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>
/// Runs <c>board</c> (blackboard) steps. Before each firing, <c>until</c> is checked (it holds: the step succeeds with
/// the list of firings); then the rules, in order: the first whose <c>when</c> holds over the verified artifacts, and
/// that has not fired yet for the same versions of the artifacts its condition names, fires its agent — one unit,
/// recorded with the rule and the artifacts that triggered it; the agent's output becomes its artifact, verified like
/// any agent output. The step fails at <c>max_firings</c>, or when no rule can fire and <c>until</c> does not hold.
/// </summary>
internal sealed partial class BoardStepHandler(AgentInvoker agents) : IStepHandler
{
    public string Kind => "board";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (BoardStep)execution.Definition;
        var firings = MultiPhase.Units(execution).Where(u => u.Phase == "firing").ToList();
        var scope = execution.Scope;
        try
        {
            if (execution.Evaluator.EvaluateBoolean(step.Until, scope))
            {
                return StepOutcome.Success(JsonElementFactory.FromNode(new JsonObject { ["firings"] = new JsonArray(firings.Select(f => MultiPhase.Node(f.Data)).ToArray()) }));
            }
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("board.until"), retryable: false);
        }

        if (firings.Count >= step.MaxFirings)
        {
            return StepOutcome.Failure("max_firings", $"'until' did not hold after max_firings ({step.MaxFirings}) firings", retryable: false);
        }

        var fired = firings.Select(f => MultiPhase.Text(f.Data, "signature")).ToHashSet(StringComparer.Ordinal);
        foreach (var rule in step.Rules)
        {
            bool matches;
            try
            {
                matches = execution.Evaluator.EvaluateBoolean(rule.When, scope);
            }
            catch (ExpressionEvaluationException e)
            {
                return StepOutcome.Failure("expression_error", e.In($"board rule '{rule.Id}'"), retryable: false);
            }

            if (!matches) continue;
            var triggers = Triggers(execution, rule);
            var signature = $"{rule.Id}|{string.Join(",", triggers)}";
            if (fired.Contains(signature)) continue;

            var input = new JsonObject { ["rule"] = rule.Id, ["artifacts"] = VerifiedArtifacts(execution), ["triggered_by"] = new JsonArray(triggers.Select(t => (JsonNode)t).ToArray()) };
            var outcome = await MultiPhase.InvokeAsync(agents, execution, rule.Run, JsonElementFactory.FromNode(input), cancellationToken).ConfigureAwait(false);
            if (!outcome.Succeeded)
            {
                return outcome with { Message = $"board rule '{rule.Id}' ({rule.Run}): {outcome.Message}" };
            }

            var data = new JsonObject
            {
                ["firing"] = firings.Count + 1, ["rule"] = rule.Id, ["agent"] = rule.Run,
                ["triggered_by"] = new JsonArray(triggers.Select(t => (JsonNode)t).ToArray()), ["signature"] = signature,
                ["output"] = MultiPhase.Node(outcome.Output),
            };
            return MultiPhase.Unit(execution, Kind, "firing", data, outcome, rule.Run);
        }

        return StepOutcome.Failure("board_stuck", $"no rule can fire and 'until' does not hold (after {firings.Count} firings)", retryable: false);
    }

    /// <summary>The verified artifacts the rule's condition names, as <c>name@version</c>.</summary>
    private static List<string> Triggers(StepExecution execution, BoardRule rule)
        => ArtifactNames().Matches(rule.When.Source).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Where(n => execution.State.Artifacts.TryGetValue(n, out var a) && a.Verified is not null)
            .Select(n => $"{n}@{execution.State.Artifacts[n].Verified!.Version}")
            .ToList();

    private static JsonObject VerifiedArtifacts(StepExecution execution)
    {
        var o = new JsonObject();
        foreach (var a in execution.State.Artifacts.Values.Where(a => a.Verified is not null).OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            o[a.Name] = MultiPhase.Node(a.Verified!.Value);
        }

        return o;
    }

    // Both spellings name an artifact: artifacts.NAME and artifacts['NAME'] (or "NAME"); not some_other.artifacts.NAME.
    [GeneratedRegex(@"(?<![A-Za-z0-9_$.])artifacts\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['""]([^'""]+)['""]\s*\])")]
    private static partial Regex ArtifactNames();
}

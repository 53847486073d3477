using System.Text.Json;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Steps;

/// <summary>
/// Runs <c>gate</c> steps: checks the latest version of an artifact (quarantined or verified) with an expression
/// (<c>artifact</c> is its value) and/or a validator — an agent of the workflow or a registered code agent that
/// answers <c>{ "valid": true|false, "reason": "…" }</c> — then promotes it to verified or rejects it. A rejection
/// takes <c>on_reject</c>: <c>fail</c> fails the job, a step id routes there.
/// </summary>
internal sealed class GateStepHandler(AgentInvoker agents, CodeRegistry code) : IStepHandler
{
    public string Kind => "gate";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (GateStep)execution.Definition;
        if (!execution.State.Artifacts.TryGetValue(step.Artifact, out var artifact))
        {
            return StepOutcome.Failure("no_artifact", $"gate '{step.Id}': artifact '{step.Artifact}' has not been produced", retryable: false);
        }

        var latest = artifact.Latest;
        var reasons = new List<string>();
        var pass = latest.Status != "rejected";
        if (!pass) reasons.Add($"version {latest.Version} was already rejected: {latest.Reason}");

        if (pass && step.Check is { } check)
        {
            var scope = new ExpressionScope { State = execution.State, Attempt = execution.Step.Attempt, IncludeQuarantined = true, Constraints = execution.Workflow.ConstraintsJson, StepScope = execution.Step.Scope }
                .With("artifact", latest.Value);
            try
            {
                if (!execution.Evaluator.EvaluateBoolean(check, scope))
                {
                    pass = false;
                    reasons.Add($"check '{check.Source}' is false");
                }
            }
            catch (ExpressionEvaluationException e)
            {
                return StepOutcome.Failure("expression_error", e.In($"gate '{step.Id}'"), retryable: false);
            }
        }

        string? agentRef = null;
        if (pass && step.Validator is { } validator)
        {
            var definition = execution.Workflow.Agents.TryGetValue(validator, out var a) ? a
                : code.HasAgent(validator) ? new AgentDefinition { Name = validator, Kind = AgentKind.Code, Type = validator }
                : null;
            if (definition is null)
            {
                return StepOutcome.Failure("config_error", $"gate '{step.Id}': validator '{validator}' is neither an agent of the workflow nor a registered code validator", retryable: false);
            }

            agentRef = definition.Ref;
            var input = Json.Of(new { artifact = step.Artifact, version = latest.Version, status = latest.Status, value = latest.Value });
            var answer = await agents.InvokeAsync(execution, definition, input, execution.Variations, cancellationToken).ConfigureAwait(false);
            if (!answer.Succeeded)
            {
                return answer with { Message = $"gate '{step.Id}': validator '{validator}' failed: {answer.Message}" };
            }

            var (valid, why) = Verdict(answer.Output!.Value);
            if (valid is null)
            {
                return StepOutcome.Failure("invalid_output", $"gate '{step.Id}': validator '{validator}' must answer {{ \"valid\": true|false, \"reason\": \"…\" }}, got {answer.Output.Value.GetRawText()}", retryable: true);
            }

            if (!valid.Value)
            {
                pass = false;
                reasons.Add($"validator '{validator}' rejected it{(why is null ? "" : $": {why}")}");
            }
            else if (why is not null)
            {
                reasons.Add(why);
            }
        }

        var reason = reasons.Count == 0 ? null : string.Join("; ", reasons);
        var verdict = pass ? "verified" : "rejected";
        var output = Json.Of(new { artifact = step.Artifact, version = latest.Version, verdict, reason });
        var outcome = StepOutcome.Success(output) with { Agent = agentRef };
        if (pass)
        {
            return latest.Status == "verified" ? outcome : outcome with { Verdicts = [new ArtifactVerdict(step.Artifact, latest.Version, "verified", reason ?? $"promoted by gate '{step.Id}'")] };
        }

        var rejection = $"gate '{step.Id}' rejected artifact '{step.Artifact}' v{latest.Version}: {reason}";
        return outcome with
        {
            Verdicts = latest.Status == "rejected" ? [] : [new ArtifactVerdict(step.Artifact, latest.Version, "rejected", rejection)],
            RouteTo = step.OnReject,
            RouteReason = rejection,
        };
    }

    private static (bool? Valid, string? Reason) Verdict(JsonElement output)
    {
        var reason = output.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        if (output.TryGetProperty("valid", out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False) return (v.GetBoolean(), reason);
        if (output.TryGetProperty("pass", out var p) && p.ValueKind is JsonValueKind.True or JsonValueKind.False) return (p.GetBoolean(), reason);
        if (output.TryGetProperty("verdict", out var d) && d.ValueKind == JsonValueKind.String)
        {
            return d.GetString() switch
            {
                "pass" or "valid" or "verified" or "approve" => (true, reason),
                "fail" or "invalid" or "rejected" or "reject" => (false, reason),
                _ => (null, reason),
            };
        }

        return (null, reason);
    }
}

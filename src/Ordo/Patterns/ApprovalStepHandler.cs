using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>
/// Runs <c>approval</c> steps: the first run asks for the decision (role, <c>count</c> distinct approvers — none of them
/// the submitter — <c>expires</c> and <c>on_expire</c>, what approvers are shown) and pauses the job; once approved,
/// the step runs again and succeeds with the decisions, and its routes are taken. A deny fails the job with the reason.
/// </summary>
internal sealed class ApprovalStepHandler(TimeProvider time) : IStepHandler
{
    public string Kind => "approval";

    public ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (ApprovalStep)execution.Definition;
        var id = execution.Step.WorkKey;
        if (execution.State.Approvals.TryGetValue(id, out var approval) && approval.Status == "approved")
        {
            var decisions = new JsonArray(approval.Decisions.Select(d => (JsonNode)new JsonObject
            {
                ["by"] = d.By, ["decision"] = d.Decision, ["reason"] = d.Reason, ["at"] = d.At.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            }).ToArray());
            var output = new JsonObject { ["approved"] = true, ["approval"] = id, ["approvers"] = new JsonArray(approval.Approvers.Select(a => (JsonNode)a).ToArray()), ["decisions"] = decisions };
            return ValueTask.FromResult(StepOutcome.Success(JsonElementFactory.FromNode(output)));
        }

        System.Text.Json.JsonElement? show;
        try
        {
            show = step.Show?.Evaluate(execution.Evaluator, execution.Scope);
        }
        catch (ExpressionEvaluationException e)
        {
            return ValueTask.FromResult(StepOutcome.Failure("expression_error", e.In("approval.show"), retryable: false));
        }

        var expires = step.Expires is { } after ? time.GetUtcNow() + after : (DateTimeOffset?)null;
        var request = new ApprovalRequest(id, "approval_step", step.Role, step.Count, expires, step.OnExpire, step.Description ?? $"step '{step.Id}' needs approval", null, null, step.Id, show);
        var interrupt = new StepInterrupt("approval", $"step '{step.Id}' waits for {step.Count} approval(s) by role '{step.Role}'", null, null, request);
        return ValueTask.FromResult(new StepOutcome { Succeeded = true, Interrupt = interrupt });
    }
}

using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.Workflows;

namespace Ordo.Steps;

/// <summary>Runs <c>tool</c> steps: a direct tool call through the gateway; the result is the step output (and its <c>output:</c> artifact).</summary>
internal sealed class ToolStepHandler(ToolGateway gateway) : IStepHandler
{
    public string Kind => "tool";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (ToolStep)execution.Definition;
        System.Text.Json.JsonElement args;
        try
        {
            args = step.Args?.Evaluate(execution.Evaluator, execution.Scope) ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("args"), retryable: false);
        }

        try
        {
            var result = await gateway.CallAsync(execution, agent: null, step.Tool, args, cancellationToken).ConfigureAwait(false);
            // A call skipped in dry run returned no real value: it becomes the step's output, never an artifact.
            var artifact = step.Output is null || result.Skipped ? null : new[] { new ArtifactCandidate(step.Output, result.Value) };
            return StepOutcome.Success(result.Value, artifact) with { ToolCalls = [result.CallId] };
        }
        catch (ToolCallException e)
        {
            return StepOutcome.Failure(e.Error, e.Message, e.Retryable) with { ToolCalls = [e.CallId] };
        }
    }
}

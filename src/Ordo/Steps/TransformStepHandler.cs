using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Workflows;

namespace Ordo.Steps;

/// <summary>Runs <c>transform</c> steps: evaluates each <c>set</c> entry into a named artifact. Pure: no side effects.</summary>
internal sealed class TransformStepHandler : IStepHandler
{
    public string Kind => "transform";

    public ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (TransformStep)execution.Definition;
        var scope = execution.Scope;
        var output = new JsonObject();
        var artifacts = new List<ArtifactCandidate>();
        foreach (var (name, template) in step.Set)
        {
            try
            {
                var value = template.Evaluate(execution.Evaluator, scope);
                artifacts.Add(new ArtifactCandidate(name, value));
                output[name] = JsonNode.Parse(value.GetRawText());
            }
            catch (ExpressionEvaluationException e)
            {
                return ValueTask.FromResult(StepOutcome.Failure("expression_error", e.In($"transform.set.{name}"), retryable: false));
            }
        }

        return ValueTask.FromResult(StepOutcome.Success(JsonElementFactory.FromNode(output), artifacts));
    }
}

using System.Text.Json;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Steps;
using Ordo.Workflows;

namespace Ordo.Patterns;

/// <summary>Runs <c>parallel</c> steps: starts every branch in its own scope; the join policy decides when the step ends.</summary>
internal sealed class ParallelStepHandler : IStepHandler
{
    public string Kind => "parallel";

    public ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (ParallelStep)execution.Definition;
        var needed = step.JoinPolicy.Mode switch
        {
            "all" => step.Branches.Count,
            "any" => 1,
            _ => step.JoinPolicy.Quorum,
        };
        return ValueTask.FromResult(StepOutcome.Starting(new PatternStart("parallel", step.Branches.Count, step.Branches, null, step.JoinPolicy.Mode, needed, null, null)));
    }
}

/// <summary>
/// Runs <c>foreach</c> steps: evaluates the list once (it is recorded, so a resumed job maps over the same list), then
/// runs <c>do</c> per element, at most <c>max_concurrency</c> at a time, each element its own durable unit.
/// </summary>
internal sealed class ForeachStepHandler : IStepHandler
{
    public string Kind => "foreach";

    public ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (ForeachStep)execution.Definition;
        JsonElement items;
        try
        {
            items = step.Items.Evaluate(execution.Evaluator, execution.Scope);
        }
        catch (ExpressionEvaluationException e)
        {
            return ValueTask.FromResult(StepOutcome.Failure("expression_error", e.In("foreach"), retryable: false));
        }

        if (items.ValueKind != JsonValueKind.Array)
        {
            return ValueTask.FromResult(StepOutcome.Failure("foreach_not_a_list", $"foreach: the expression gave {Describe(items)}, not a list", retryable: false));
        }

        var doName = step.Do ?? step.DoWorkflow!.ToString();
        if (step.DoWorkflow is { } reference && SubWorkflowStepHandler.CheckInputs(execution.Workflow, reference, items.EnumerateArray().ToList(), "item") is { } invalid)
        {
            return ValueTask.FromResult(invalid);
        }

        var count = items.GetArrayLength();
        return ValueTask.FromResult(StepOutcome.Starting(new PatternStart("foreach", count, null, items, "all", count, step.MaxConcurrency, doName)));
    }

    internal static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString().ToLowerInvariant(),
    };
}

/// <summary>Runs <c>workflow</c> steps: the child workflow, pinned with the parent, runs as its own job linked to this step.</summary>
internal sealed class SubWorkflowStepHandler : IStepHandler
{
    public string Kind => "workflow";

    public ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (SubWorkflowStep)execution.Definition;
        JsonElement input;
        try
        {
            input = step.Input?.Evaluate(execution.Evaluator, execution.Scope) ?? execution.State.Input ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return ValueTask.FromResult(StepOutcome.Failure("expression_error", e.In("input"), retryable: false));
        }

        if (CheckInputs(execution.Workflow, step.Workflow, [input], "input") is { } invalid)
        {
            return ValueTask.FromResult(invalid);
        }

        var items = JsonElementFactory.Parse("[" + input.GetRawText() + "]");
        return ValueTask.FromResult(StepOutcome.Starting(new PatternStart("workflow", 1, ["child"], items, "all", 1, null, step.Workflow.ToString())) with { Input = input });
    }

    /// <summary>Checks child inputs against the child's input schema before any child is created; a failure names the item and the error.</summary>
    internal static StepOutcome? CheckInputs(WorkflowDefinition parent, WorkflowReference reference, IReadOnlyList<JsonElement> inputs, string what)
    {
        if (!parent.SubWorkflows.TryGetValue(reference.ToString(), out var child))
        {
            return StepOutcome.Failure("config_error", $"workflow {reference} is not pinned with {parent.Ref}", retryable: false);
        }

        if (child.InputSchema is not { } schema) return null;
        for (var i = 0; i < inputs.Count; i++)
        {
            if (schema.Validate(inputs[i]) is { Count: > 0 } errors)
            {
                var which = inputs.Count == 1 && what == "input" ? "the input" : $"{what} {i}";
                return StepOutcome.Failure("invalid_child_input", $"{which} does not match the input schema of {child.Ref}: {string.Join("; ", errors)}", retryable: false);
            }
        }

        return null;
    }
}

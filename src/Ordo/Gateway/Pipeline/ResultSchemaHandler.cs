using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>Checks a result against the tool's <c>result</c> schema (<c>invalid_result</c>, retryable by the step).</summary>
internal sealed class ResultSchemaHandler : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("a result is checked after the tool is found");
        var result = await next(context, cancellationToken).ConfigureAwait(false);
        if (tool.Result is { } schema && schema.Validate(result.Value) is { Count: > 0 } errors)
        {
            throw new ToolExecutionException("invalid_result", "the result does not match the tool's result schema: " + string.Join("; ", errors), retryable: true);
        }

        return result;
    }
}

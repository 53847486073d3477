using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>Finds the executor of the tool's kind (<c>unsupported_kind</c> when this process has none).</summary>
internal sealed class ExecutorRoutingHandler(IReadOnlyDictionary<string, IToolExecutor> executors) : IToolCallHandler
{
    /// <inheritdoc />
    public ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("the executor is found after the tool");
        if (!executors.TryGetValue(tool.Kind, out var executor))
        {
            throw context.Refuse("unsupported_kind", $"tools of kind '{tool.Kind}' cannot run in this process");
        }

        context.Executor = executor;
        return next(context, cancellationToken);
    }
}

using System.Text.Json;
using Ordo.Agents;

namespace Ordo.Tools;

/// <summary>Runs <c>code</c> tools registered in C# (by type or by tool name) or loaded from plugins.</summary>
public sealed class CodeToolExecutor(CodeRegistry registry, IServiceProvider? services = null) : IToolExecutor
{
    /// <inheritdoc />
    public string Kind => "code";

    /// <inheritdoc />
    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var name = invocation.Tool.Type ?? invocation.Tool.Name;
        ICodeTool tool;
        try
        {
            tool = registry.CreateTool(name, services);
        }
        catch (OrdoException e)
        {
            throw new ToolExecutionException("config_error", e.Message, retryable: false, e);
        }

        try
        {
            return await tool.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
        }
        catch (ToolExecutionException)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new ToolExecutionException("exception", $"{e.GetType().Name}: {e.Message}", retryable: true, e);
        }
    }
}

/// <summary>A code tool made from a delegate.</summary>
public sealed class DelegateCodeTool(Func<ToolInvocation, CancellationToken, ValueTask<JsonElement>> run) : ICodeTool
{
    /// <inheritdoc />
    public ValueTask<JsonElement> InvokeAsync(ToolInvocation invocation, CancellationToken cancellationToken) => run(invocation, cancellationToken);
}

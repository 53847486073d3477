namespace Ordo.Gateway.Pipeline;

/// <summary>Composes handlers into one <see cref="ToolCallDelegate"/>: the first handler added is the outermost.</summary>
internal sealed class ToolCallPipelineBuilder
{
    private readonly List<IToolCallHandler> _handlers = [];

    /// <summary>Adds a handler inside those added before it.</summary>
    public ToolCallPipelineBuilder Use(IToolCallHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _handlers.Add(handler);
        return this;
    }

    /// <summary>Adds handlers, in order, inside those added before them.</summary>
    public ToolCallPipelineBuilder Use(IEnumerable<IToolCallHandler> handlers)
    {
        ArgumentNullException.ThrowIfNull(handlers);
        foreach (var handler in handlers) Use(handler);
        return this;
    }

    /// <summary>The pipeline: the handlers in the order they were added, then <paramref name="terminal"/>.</summary>
    public ToolCallDelegate Build(ToolCallDelegate terminal)
    {
        ArgumentNullException.ThrowIfNull(terminal);
        var next = terminal;
        for (var i = _handlers.Count - 1; i >= 0; i--)
        {
            var handler = _handlers[i];
            var inner = next;
            next = (context, cancellationToken) => handler.HandleAsync(context, inner, cancellationToken);
        }

        return next;
    }
}

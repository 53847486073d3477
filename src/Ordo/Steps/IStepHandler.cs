using Ordo.Engine;

namespace Ordo.Steps;

/// <summary>Runs one kind of step. One handler per kind, registered in <see cref="StepHandlers"/>; side effects go through the gateway.</summary>
public interface IStepHandler
{
    /// <summary>The step kind (<c>agent</c>, <c>tool</c>, …).</summary>
    string Kind { get; }

    /// <summary>Runs one attempt.</summary>
    ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken);
}

/// <summary>The table of step handlers by kind.</summary>
public sealed class StepHandlers
{
    private readonly Dictionary<string, IStepHandler> _byKind;

    /// <summary>Creates the table.</summary>
    /// <exception cref="ArgumentException">Two handlers claim the same kind.</exception>
    public StepHandlers(IEnumerable<IStepHandler> handlers)
    {
        ArgumentNullException.ThrowIfNull(handlers);
        _byKind = new Dictionary<string, IStepHandler>(StringComparer.Ordinal);
        foreach (var h in handlers)
        {
            if (!_byKind.TryAdd(h.Kind, h))
            {
                throw new ArgumentException($"two handlers for step kind '{h.Kind}'", nameof(handlers));
            }
        }
    }

    /// <summary>Finds the handler of a kind.</summary>
    public IStepHandler? Find(string kind) => _byKind.GetValueOrDefault(kind);

    /// <summary>The kinds handled.</summary>
    public IEnumerable<string> Kinds => _byKind.Keys;
}

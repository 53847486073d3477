using System.Text.Json;
using Ordo.State;

namespace Ordo.Expressions;

/// <summary>
/// The read-only context an expression sees: <c>input</c>, <c>artifacts</c>, <c>job</c>, <c>steps</c>,
/// <c>item</c>/<c>index</c> inside <c>foreach</c>, and at policy points <c>agent</c>, <c>tool</c>, <c>args</c>, <c>artifact</c>.
/// </summary>
public sealed class ExpressionScope
{
    /// <summary>The names an expression can use, in parameter order.</summary>
    public static readonly IReadOnlyList<string> Names = ["input", "artifacts", "job", "steps", "item", "index", "agent", "tool", "args", "artifact", "bid", "task", "step", "round", "tool_results"];

    /// <summary>The job state: source of <c>artifacts</c>, <c>steps</c> and <c>job</c>.</summary>
    public JobState? State { get; init; }

    /// <summary>The job input; defaults to the state's input.</summary>
    public JsonElement? Input { get; init; }

    /// <summary>Constraints shown as <c>job.constraints</c>.</summary>
    public JsonElement? Constraints { get; init; }

    /// <summary>The attempt shown as <c>job.attempt</c>.</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>Whether <c>artifacts.quarantined.X</c> is visible (steps that accept quarantined artifacts).</summary>
    public bool IncludeQuarantined { get; init; }

    /// <summary>The scope of the step evaluating (a branch or an item): <c>steps.X</c> resolves there first, and <c>item</c>/<c>index</c> come from its foreach.</summary>
    public string? StepScope { get; init; }

    /// <summary>The current element inside <c>foreach</c>.</summary>
    public JsonElement? Item { get; init; }

    /// <summary>The current index inside <c>foreach</c>.</summary>
    public int? Index { get; init; }

    /// <summary>Other names: <c>agent</c>, <c>tool</c>, <c>args</c>, <c>artifact</c>, <c>bid</c>, <c>task</c>.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Bindings { get; init; }

    /// <summary>A copy with more bindings.</summary>
    public ExpressionScope With(string name, JsonElement value)
    {
        var b = Bindings is null ? new Dictionary<string, JsonElement>(StringComparer.Ordinal) : new Dictionary<string, JsonElement>(Bindings, StringComparer.Ordinal);
        b[name] = value;
        return new ExpressionScope
        {
            State = State, Input = Input, Constraints = Constraints, Attempt = Attempt, IncludeQuarantined = IncludeQuarantined,
            Item = Item, Index = Index, Bindings = b, StepScope = StepScope,
        };
    }
}

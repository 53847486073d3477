using Ordo.Agents;
using Ordo.Gateway;
using Ordo.Patterns;

namespace Ordo.Steps;

/// <summary>
/// The step kinds every runtime runs, each registered here once: its kind and how its handler is made. A handler
/// added in a host (<c>AddStepHandler</c>, <see cref="Engine.OrdoComponents.StepHandlers"/>) adds a kind or replaces one.
/// </summary>
internal static class BuiltInSteps
{
    /// <summary>What built-in handlers are made from.</summary>
    private sealed record Parts(AgentInvoker Agents, ToolGateway Gateway, CodeRegistry Code, TimeProvider Time);

    private static readonly (string Kind, Func<Parts, IStepHandler> Create)[] Table =
    [
        ("agent", p => new AgentStepHandler(p.Agents)),
        ("tool", p => new ToolStepHandler(p.Gateway)),
        ("transform", _ => new TransformStepHandler()),
        ("code", _ => new CodeStepHandler()),
        ("gate", p => new GateStepHandler(p.Agents, p.Code)),
        ("approval", p => new ApprovalStepHandler(p.Time)),
        ("parallel", _ => new ParallelStepHandler()),
        ("foreach", _ => new ForeachStepHandler()),
        ("workflow", _ => new SubWorkflowStepHandler()),
        ("plan", p => new PlanStepHandler(p.Agents)),
        ("supervise", p => new SuperviseStepHandler(p.Agents)),
        ("board", p => new BoardStepHandler(p.Agents)),
        ("auction", p => new AuctionStepHandler(p.Agents)),
    ];

    /// <summary>The built-in kinds.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [.. Table.Select(t => t.Kind)];

    /// <summary>The handler table of a runtime: the built-in ones, then <paramref name="extra"/> (the last one of a kind wins).</summary>
    /// <exception cref="InvalidOperationException">A built-in handler does not handle the kind it is registered under.</exception>
    public static StepHandlers Handlers(AgentInvoker agents, ToolGateway gateway, CodeRegistry code, TimeProvider time, IEnumerable<IStepHandler> extra)
    {
        var parts = new Parts(agents, gateway, code, time);
        var handlers = Table.Select(t =>
        {
            var handler = t.Create(parts);
            return handler.Kind == t.Kind ? handler : throw new InvalidOperationException($"the handler registered for step kind '{t.Kind}' handles '{handler.Kind}'");
        }).Concat(extra);
        return new StepHandlers(handlers.GroupBy(h => h.Kind).Select(g => g.Last()));
    }
}

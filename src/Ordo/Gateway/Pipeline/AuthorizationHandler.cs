namespace Ordo.Gateway.Pipeline;

/// <summary>
/// The first step: the tool exists (<c>unknown_tool</c>), the agent lists it among its tools, and the tool's
/// <c>allow: { agents, tenants }</c> admits the agent and the tenant (<c>not_allowed</c>). Sets <see cref="ToolCallContext.Tool"/>.
/// </summary>
internal sealed class AuthorizationHandler : IToolCallHandler
{
    /// <inheritdoc />
    public ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var scope = context.Scope;
        var toolName = context.ToolName;
        var agent = context.Agent;
        if (!scope.Project.Tools.TryGetValue(toolName, out var tool))
        {
            throw context.Refuse("unknown_tool", scope.Project.Tools.Count == 0
                ? $"tool '{toolName}' is not defined (no tools are configured)"
                : $"tool '{toolName}' is not defined (defined: {string.Join(", ", scope.Project.Tools.Keys.Order(StringComparer.Ordinal))})");
        }

        if (agent is not null && !agent.Tools.Contains(toolName, StringComparer.Ordinal))
        {
            throw context.Refuse("not_allowed", $"agent '{agent.Name}' may not call '{toolName}' (its tools: {(agent.Tools.Count == 0 ? "none" : string.Join(", ", agent.Tools))})");
        }

        if (tool.AllowAgents is { } agents && agent is not null && !agents.Contains(agent.Name, StringComparer.Ordinal))
        {
            throw context.Refuse("not_allowed", $"tool '{toolName}' does not allow agent '{agent.Name}'");
        }

        if (tool.AllowTenants is { } tenants && !tenants.Contains(scope.Tenant, StringComparer.Ordinal))
        {
            throw context.Refuse("not_allowed", $"tool '{toolName}' is not allowed for tenant '{scope.Tenant}'");
        }

        context.Tool = tool;
        return next(context, cancellationToken);
    }
}

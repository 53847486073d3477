using Ordo.Configuration;

namespace Ordo.Tools.Mcp;

/// <summary>Lists the tools an MCP server offers, with their input schemas (to offer them to models, or to check arguments).</summary>
/// <remarks>Implementations are thread-safe.</remarks>
public interface IMcpToolCatalog
{
    /// <summary>
    /// The tools of the server named <paramref name="serverName"/> under <c>mcp_servers</c> in <paramref name="project"/>,
    /// starting its session if none is running. The list is cached for the life of the session (a restarted server is asked again).
    /// </summary>
    /// <exception cref="ToolExecutionException">
    /// The server is not defined (<c>config_error</c>), cannot be started or reached (<c>mcp_unavailable</c>, retryable), or
    /// failed to answer (<c>mcp_transport_error</c>, retryable; <c>mcp_error</c>).
    /// </exception>
    ValueTask<IReadOnlyList<McpToolInfo>> ListToolsAsync(ProjectDefinition project, string serverName, CancellationToken cancellationToken = default);
}

using ModelContextProtocol;

namespace Ordo.Tools.Mcp;

/// <summary>How failures of MCP calls become tool errors.</summary>
internal static class McpErrors
{
    /// <summary>
    /// The tool error for a failed request on a session. A JSON-RPC error from the server is <c>mcp_error</c> (retryable
    /// only for an internal error); anything else is the transport failing: the session is marked broken, so that the
    /// next call starts a new one, and the error is <c>mcp_transport_error</c>, retryable.
    /// </summary>
    public static async Task<ToolExecutionException> FromCallAsync(McpServerSession session, string doing, Exception e)
    {
        if (e is McpProtocolException protocol)
        {
            var retryable = protocol.ErrorCode is McpErrorCode.InternalError;
            return new ToolExecutionException("mcp_error", $"{session.Description} answered an error while {doing} ({(int)protocol.ErrorCode}): {protocol.Message}", retryable, e);
        }

        session.MarkBroken();
        var reason = session.Client.Completion.IsCompleted || e is IOException ? await session.ClosedReasonAsync().ConfigureAwait(false) : Describe(e);
        return new ToolExecutionException("mcp_transport_error", $"{session.Description} failed while {doing}: {reason}{session.StderrSuffix()}", retryable: true, e);
    }

    /// <summary>An exception's message with those of its causes, for errors.</summary>
    public static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (Exception? x = e; x is not null && parts.Count < 3; x = x.InnerException)
        {
            if (!parts.Contains(x.Message, StringComparer.Ordinal)) parts.Add(x.Message);
        }

        return string.Join(": ", parts);
    }
}

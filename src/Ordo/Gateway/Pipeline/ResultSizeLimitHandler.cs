using System.Runtime.InteropServices;
using Ordo.Tools;

namespace Ordo.Gateway.Pipeline;

/// <summary>
/// Whatever the tool's kind, no result larger than its limit goes further (<c>result_too_large</c>, not retried): an
/// http tool's own limit is on the answer it reads, a sql tool's on the rows it reads; a code or MCP tool has only this one.
/// </summary>
internal sealed class ResultSizeLimitHandler : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("a result is checked after the tool is found");
        var result = await next(context, cancellationToken).ConfigureAwait(false);
        var limit = tool.Kind == "http" ? Math.Max(tool.MaxResultBytes, tool.MaxResponseBytes) : tool.MaxResultBytes;
        if (JsonMarshal.GetRawUtf8Value(result.Value).Length is var size && size > limit)
        {
            throw new ToolExecutionException("result_too_large", $"tool '{context.ToolName}' returned {size} bytes, more than its limit of {limit} (max_result_bytes)", retryable: false);
        }

        return result;
    }
}

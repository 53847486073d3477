using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Ordo.Tools.Mcp;

/// <summary>
/// Runs <c>mcp</c> tools: calls the tool named by <c>tool:</c> on the server named by <c>server:</c>, with the call's
/// arguments, through the session the <see cref="McpServerPool"/> keeps with that server.
/// </summary>
/// <remarks>
/// <para>
/// The result is the call's <c>structuredContent</c> when the server sends one, else its text content parsed as JSON,
/// else <c>{ "text": "..." }</c>; a result with only non-text content (images, resources) is <c>{ "content": [...] }</c>
/// as the server sent it. A result larger than <see cref="ToolDefinition.MaxResultBytes"/> fails as <c>result_too_large</c>.
/// </para>
/// <para>
/// Errors: an error result (<c>isError: true</c>) is <c>mcp_tool_error</c> with the server's text, not retryable; a
/// JSON-RPC error is <c>mcp_error</c>; a session that cannot be started is <c>mcp_unavailable</c> and one that breaks
/// during the call <c>mcp_transport_error</c>, both retryable. When the tool has no <c>args:</c> schema, the arguments are
/// checked against the input schema the server gives for the tool, before the call (<c>invalid_args</c>), and a tool the
/// server does not list is <c>unknown_mcp_tool</c>. Thread-safe.
/// </para>
/// </remarks>
public sealed class McpToolExecutor(McpServerPool pool) : IToolExecutor
{
    /// <summary>How much of an error result's text is quoted in the error.</summary>
    private const int ErrorTextChars = 2000;

    /// <inheritdoc />
    public string Kind => "mcp";

    /// <summary>The <c>_meta</c> key of a call's idempotency key (stable across the step's retries and a crash).</summary>
    public const string IdempotencyKeyMeta = "ordo/idempotency-key";

    /// <summary>The <c>_meta</c> key of the job a call is made for.</summary>
    public const string JobMeta = "ordo/job";

    /// <inheritdoc />
    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var tool = invocation.Tool;
        if (tool.Server is not { Length: > 0 } serverName || tool.McpTool is not { Length: > 0 } toolName)
        {
            throw new ToolExecutionException("config_error", $"mcp tool '{tool.Name}' needs 'server' and 'tool'", retryable: false);
        }

        var args = invocation.Args.ValueKind == JsonValueKind.Object ? invocation.Args : JsonElementFactory.EmptyObject;
        McpServerSession session;
        try
        {
            session = await pool.GetSessionAsync(invocation.Project, serverName, cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException e)
        {
            throw new ToolExecutionException("mcp_unavailable", $"MCP server '{serverName}': the runtime is stopping", retryable: true, e);
        }

        if (tool.Args is null)
        {
            await CheckArgsAsync(session, tool, toolName, args, cancellationToken).ConfigureAwait(false);
        }

        var request = new CallToolRequestParams
        {
            Name = toolName,
            Arguments = args.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal),
            // The call's idempotency key travels in the request's _meta, as an http tool's in its Idempotency-Key header:
            // a server that keeps effects once per key turns a repeated call (after a crash) into a no-op.
            Meta = new System.Text.Json.Nodes.JsonObject
            {
                [IdempotencyKeyMeta] = invocation.IdempotencyKey,
                [JobMeta] = invocation.JobId.Value,
            },
        };
        CallToolResult result;
        try
        {
            result = await session.Client.CallToolAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The gateway's timeout (or the step's end): the client has told the server the request is cancelled.
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw await McpErrors.FromCallAsync(session, $"calling tool '{toolName}'", e).ConfigureAwait(false);
        }

        return Map(tool, session, toolName, result);
    }

    /// <summary>Checks the arguments against the input schema the server gives for the tool (when the tool file gives none).</summary>
    private static async Task CheckArgsAsync(McpServerSession session, ToolDefinition tool, string toolName, JsonElement args, CancellationToken cancellationToken)
    {
        var tools = await McpServerPool.ListToolsAsync(session, cancellationToken).ConfigureAwait(false);
        var info = tools.FirstOrDefault(t => string.Equals(t.Name, toolName, StringComparison.Ordinal));
        if (info is null)
        {
            var offered = tools.Count == 0 ? "it lists none" : "it has: " + string.Join(", ", tools.Select(t => t.Name).Order(StringComparer.Ordinal));
            throw new ToolExecutionException("unknown_mcp_tool", $"{session.Description} has no tool '{toolName}' ({offered}); tool '{tool.Name}' names it", retryable: false);
        }

        if (session.InputContract(info) is { } contract && contract.Validate(args) is { Count: > 0 } errors)
        {
            throw new ToolExecutionException("invalid_args", $"arguments do not match the input schema of tool '{toolName}' on {session.Description}: {string.Join("; ", errors)}", retryable: false);
        }
    }

    /// <summary>The result of a call as the format says, or the error it reports.</summary>
    internal static JsonElement Map(ToolDefinition tool, McpServerSession session, string toolName, CallToolResult result)
    {
        var texts = result.Content.OfType<TextContentBlock>().Select(t => t.Text).ToList();
        var text = string.Join("\n", texts);
        if (result.IsError == true)
        {
            var quoted = text.Length == 0 ? "(no message)" : text.Length <= ErrorTextChars ? text : text[..ErrorTextChars] + "…";
            throw new ToolExecutionException("mcp_tool_error", $"tool '{toolName}' on {session.Description} reported an error: {quoted}", retryable: false);
        }

        if (result.StructuredContent is { ValueKind: not (JsonValueKind.Undefined or JsonValueKind.Null) } structured)
        {
            CheckSize(tool, JsonMarshal.GetRawUtf8Value(structured).Length);
            return structured.Clone();
        }

        if (texts.Count == 0 && result.Content.Count > 0)
        {
            var whole = JsonSerializer.SerializeToElement(result, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult)));
            var content = whole.GetProperty("content");
            CheckSize(tool, Encoding.UTF8.GetByteCount(content.GetRawText()));
            return Wrap("content", w => content.WriteTo(w));
        }

        CheckSize(tool, Encoding.UTF8.GetByteCount(text));
        if (text.AsSpan().TrimStart() is [ '{' or '[' or '"' or '-' or (>= '0' and <= '9') or 't' or 'f' or 'n', ..])
        {
            try
            {
                return JsonElementFactory.Parse(text);
            }
            catch (JsonException)
            {
                // Text that only starts like JSON is text.
            }
        }

        return Wrap("text", w => w.WriteStringValue(text));
    }

    private static void CheckSize(ToolDefinition tool, long bytes)
    {
        if (bytes > tool.MaxResultBytes)
        {
            throw new ToolExecutionException("result_too_large",
                $"mcp tool '{tool.Name}' returned {bytes.ToString(CultureInfo.InvariantCulture)} bytes, more than its limit, max_result_bytes: {tool.MaxResultBytes.ToString(CultureInfo.InvariantCulture)} (raise max_result_bytes on the tool if such results are expected)",
                retryable: false);
        }
    }

    private static JsonElement Wrap(string name, Action<Utf8JsonWriter> writeValue)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WritePropertyName(name);
            writeValue(writer);
            writer.WriteEndObject();
        }

        return JsonElementFactory.Parse(buffer.WrittenSpan);
    }
}

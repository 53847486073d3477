using System.Collections.Concurrent;
using ModelContextProtocol.Client;
using Ordo.Schemas;

namespace Ordo.Tools.Mcp;

/// <summary>One live session with an MCP server: the client, what the server wrote on stderr, and its tool list once asked.</summary>
/// <remarks>Thread-safe: calls run on it concurrently.</remarks>
internal sealed class McpServerSession : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly ConcurrentDictionary<string, JsonSchemaContract?> _inputContracts = new(StringComparer.Ordinal);
    private Task<IReadOnlyList<McpToolInfo>>? _tools;
    private int _broken;
    private int _disposed;

    public McpServerSession(string serverName, string description, McpClient client, StderrTail? stderr)
    {
        ServerName = serverName;
        Description = description;
        Client = client;
        Stderr = stderr;
    }

    /// <summary>The name under <c>mcp_servers</c>.</summary>
    public string ServerName { get; }

    /// <summary>The server for messages: <c>MCP server 'docs' (node docs.js)</c>.</summary>
    public string Description { get; }

    public McpClient Client { get; }

    /// <summary>The last lines of stderr (stdio servers only).</summary>
    public StderrTail? Stderr { get; }

    /// <summary>Whether calls may still be sent: the process runs (or the connection holds) and no call saw it break.</summary>
    public bool IsAlive => Volatile.Read(ref _broken) == 0 && Volatile.Read(ref _disposed) == 0 && !Client.Completion.IsCompleted;

    /// <summary>Marks the session unusable after a transport failure: the next call starts a new one.</summary>
    public void MarkBroken() => Interlocked.Exchange(ref _broken, 1);

    /// <summary>The server's tools, asked once per session.</summary>
    public Task<IReadOnlyList<McpToolInfo>> ToolsAsync(CancellationToken cancellationToken)
    {
        Task<IReadOnlyList<McpToolInfo>> tools;
        lock (_gate)
        {
            // A failed or cancelled listing is not kept: the next caller asks again.
            if (_tools is null || _tools.IsFaulted || _tools.IsCanceled) _tools = LoadToolsAsync();
            tools = _tools;
        }

        return tools.WaitAsync(cancellationToken);
    }

    /// <summary>The input schema of a tool as a contract, parsed once; null when the tool has no usable schema.</summary>
    public JsonSchemaContract? InputContract(McpToolInfo tool) => _inputContracts.GetOrAdd(tool.Name, _ =>
    {
        try
        {
            return JsonSchemaContract.FromJson(tool.InputSchema.GetRawText());
        }
        catch (InvalidDataException)
        {
            // A schema Ordo cannot read does not stop the call: the server checks its arguments itself.
            return null;
        }
    });

    /// <summary>Why the session ended, for messages: the exit code of the process, or the transport's error.</summary>
    public async Task<string> ClosedReasonAsync()
    {
        try
        {
            // The process may be a moment behind the broken pipe that failed the call.
            var details = await Client.Completion.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            if (details is StdioClientCompletionDetails { ExitCode: { } code }) return $"its process exited with code {code}";
            if (details.Exception is { } e) return e.Message;
            return "the session ended";
        }
        catch (TimeoutException)
        {
            return "the connection broke";
        }
    }

    /// <summary>The stderr tail as a suffix for messages, or nothing.</summary>
    public string StderrSuffix() => StderrSuffix(Stderr);

    internal static string StderrSuffix(StderrTail? stderr) => stderr?.Text() is { } text ? $"; its last stderr lines: {text}" : "";

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _closing.CancelAsync().ConfigureAwait(false);
        try
        {
            // Closes stdin, waits for the process to exit by itself, then kills its tree (stdio); ends the HTTP session.
            await Client.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _closing.Dispose();
        }
    }

    private async Task<IReadOnlyList<McpToolInfo>> LoadToolsAsync()
    {
        var tools = await Client.ListToolsAsync(cancellationToken: _closing.Token).ConfigureAwait(false);
        return tools.Select(t => new McpToolInfo(t.Name, t.Description, t.ProtocolTool.InputSchema.Clone())).ToList();
    }
}

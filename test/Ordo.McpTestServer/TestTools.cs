using System.Text.Json;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Ordo.McpTestServer;

/// <summary>
/// The tools of the test server. Each call is appended to the file named by <c>MCP_TEST_LOG</c> (when set) before it runs,
/// so a test can tell what reached the server.
/// </summary>
internal static class TestTools
{
    private static readonly Lock LogGate = new();

    private static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();

    public static ListToolsResult List() => new()
    {
        Tools =
        [
            new Tool { Name = "echo", Description = "Returns its arguments as structured content.", InputSchema = Schema("""{"type":"object","required":["message"],"properties":{"message":{"type":"string"},"n":{"type":"integer"}}}""") },
            new Tool { Name = "text", Description = "Returns 'value' as text content.", InputSchema = Schema("""{"type":"object","properties":{"value":{"type":"string"}}}""") },
            new Tool { Name = "fail", Description = "Returns an error result.", InputSchema = Schema("""{"type":"object","properties":{"reason":{"type":"string"}}}""") },
            new Tool { Name = "slow", Description = "Waits 'ms' milliseconds (default 30000), then answers.", InputSchema = Schema("""{"type":"object","properties":{"ms":{"type":"integer"}}}""") },
            new Tool { Name = "crash", Description = "Writes to stderr and exits the process with code 3.", InputSchema = Schema("""{"type":"object"}""") },
            new Tool { Name = "pid", Description = "Returns the server's process id.", InputSchema = Schema("""{"type":"object"}""") },
            new Tool { Name = "env", Description = "Returns the value of the environment variable 'name'.", InputSchema = Schema("""{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}""") },
            new Tool { Name = "big", Description = "Returns 'bytes' characters of text.", InputSchema = Schema("""{"type":"object","properties":{"bytes":{"type":"integer"}}}""") },
            new Tool { Name = "image", Description = "Returns image content only.", InputSchema = Schema("""{"type":"object"}""") },
        ],
    };

    public static async ValueTask<CallToolResult> CallAsync(CallToolRequestParams? request, CancellationToken cancellationToken)
    {
        var name = request?.Name ?? "";
        var args = request?.Arguments ?? new Dictionary<string, JsonElement>();
        Log($"call {name} {JsonSerializer.Serialize(args)}");
        if (Environment.GetEnvironmentVariable("MCP_TEST_KEYS") is { Length: > 0 } keys)
        {
            lock (LogGate)
            {
                File.AppendAllText(keys, $"{name} {request?.Meta?["ordo/idempotency-key"]}\n");
            }
        }
        string Str(string key, string fallback = "") => args.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
        int Int(string key, int fallback) => args.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;
        switch (name)
        {
            case "echo":
                return new CallToolResult
                {
                    Content = [new TextContentBlock { Text = "echoed" }],
                    StructuredContent = JsonSerializer.SerializeToElement(args),
                };
            case "text":
                return Text(Str("value"));
            case "fail":
                return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = "it failed: " + Str("reason", "no reason") }] };
            case "slow":
                try
                {
                    await Task.Delay(Int("ms", 30_000), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Log("cancelled slow");
                    throw;
                }

                return Text("slept");
            case "crash":
                await Console.Error.WriteLineAsync("crashing on purpose");
                await Console.Error.FlushAsync(cancellationToken);
                Environment.Exit(3);
                return Text("unreachable");
            case "pid":
                return new CallToolResult { Content = [], StructuredContent = JsonSerializer.SerializeToElement(new Dictionary<string, int> { ["pid"] = Environment.ProcessId }) };
            case "env":
                return new CallToolResult { Content = [], StructuredContent = JsonSerializer.SerializeToElement(new Dictionary<string, string?> { ["value"] = Environment.GetEnvironmentVariable(Str("name")) }) };
            case "big":
                return Text(new string('x', Int("bytes", 1000)));
            case "image":
                return new CallToolResult { Content = [ImageContentBlock.FromBytes("PNG"u8.ToArray(), "image/png")] };
            default:
                throw new ModelContextProtocol.McpProtocolException($"unknown tool '{name}'", ModelContextProtocol.McpErrorCode.InvalidParams);
        }
    }

    private static CallToolResult Text(string text) => new() { Content = [new TextContentBlock { Text = text }] };

    private static void Log(string line)
    {
        if (Environment.GetEnvironmentVariable("MCP_TEST_LOG") is not { Length: > 0 } path) return;
        lock (LogGate)
        {
            File.AppendAllText(path, line + "\n");
        }
    }
}

using System.Text.Json;
using Ordo.Configuration;
using Ordo.TestServers;
using Ordo.Tools;
using Ordo.Tools.Mcp;

namespace Ordo.Tests.Tools.Mcp;

/// <summary>A project with the test server as MCP server <c>test</c> (stdio), a pool, and a way to call its tools directly.</summary>
internal sealed class McpTestProject : IAsyncDisposable
{
    public McpTestProject(IReadOnlyDictionary<string, string>? env = null, McpServerDefinition? server = null, McpServerPoolOptions? options = null)
    {
        Directory.CreateDirectory(Dir);
        LogFile = Path.Combine(Dir, "calls.log");
        var environment = new Dictionary<string, string>(env ?? new Dictionary<string, string>()) { ["MCP_TEST_LOG"] = LogFile };
        Project = new ProjectDefinition
        {
            BaseDirectory = Dir,
            McpServers = new[] { server ?? new McpServerDefinition { Name = "test", Command = McpTestServers.StdioCommand, Env = environment } }.ToDictionary(s => s.Name),
        };
        Pool = new McpServerPool(options);
        Executor = new McpToolExecutor(Pool);
    }

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "ordo-mcp-" + Guid.NewGuid().ToString("N")[..12]);
    public string LogFile { get; }
    public ProjectDefinition Project { get; }
    public McpServerPool Pool { get; }
    public McpToolExecutor Executor { get; }

    /// <summary>The calls the server received, one line each.</summary>
    public IReadOnlyList<string> Calls => File.Exists(LogFile) ? File.ReadAllLines(LogFile) : [];

    public static ToolDefinition Tool(string mcpTool, string server = "test", long maxResultBytes = ToolDefinition.DefaultMaxResultBytes)
        => new() { Name = "t." + mcpTool, Kind = "mcp", Server = server, McpTool = mcpTool, Effect = ToolEffect.Read, MaxResultBytes = maxResultBytes };

    public ValueTask<JsonElement> CallAsync(string mcpTool, object? args = null, CancellationToken cancellationToken = default)
        => CallAsync(Tool(mcpTool), args, cancellationToken);

    public ValueTask<JsonElement> CallAsync(ToolDefinition tool, object? args = null, CancellationToken cancellationToken = default)
        => Executor.ExecuteAsync(new ToolInvocation
        {
            Tool = tool,
            Args = Json.Of(args ?? new { }),
            IdempotencyKey = "job:step:0",
            JobId = new JobId("job"),
            Tenant = "default",
            Project = Project,
        }, cancellationToken);

    public async Task<int> PidAsync() => (await CallAsync("pid")).GetProperty("pid").GetInt32();

    public async ValueTask DisposeAsync()
    {
        await Pool.DisposeAsync();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

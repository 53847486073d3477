using System.Text.Json;
using Ordo.Schemas;
using Ordo.Tools;

namespace Ordo.Tests.Tools.Mcp;

/// <summary>Calls to the test server over stdio: how results map, and how failures become tool errors.</summary>
public sealed class McpToolExecutorTests
{
    [Fact]
    public async Task ExecuteAsync_StructuredContent_IsTheResult()
    {
        await using var p = new McpTestProject();
        var result = await p.CallAsync("echo", new { message = "hi", n = 2 });
        Assert.Equal("hi", result.GetProperty("message").GetString());
        Assert.Equal(2, result.GetProperty("n").GetInt32());
        Assert.Single(p.Calls);
    }

    [Fact]
    public async Task ExecuteAsync_TextContent_IsParsedAsJson_ElseWrappedAsText()
    {
        await using var p = new McpTestProject();
        var json = await p.CallAsync("text", new { value = """{"rows": [1, 2]}""" });
        Assert.Equal(2, json.GetProperty("rows").GetArrayLength());
        var text = await p.CallAsync("text", new { value = "plain words" });
        Assert.Equal("""{"text":"plain words"}""", text.GetRawText());
        var almost = await p.CallAsync("text", new { value = "{ not json" });
        Assert.Equal("{ not json", almost.GetProperty("text").GetString());
    }

    [Fact]
    public async Task ExecuteAsync_OnlyNonTextContent_IsReturnedAsContent()
    {
        await using var p = new McpTestProject();
        var result = await p.CallAsync("image");
        var block = result.GetProperty("content").EnumerateArray().Single();
        Assert.Equal("image", block.GetProperty("type").GetString());
        Assert.Equal("image/png", block.GetProperty("mimeType").GetString());
    }

    [Fact]
    public async Task ExecuteAsync_ErrorResult_FailsNotRetryable_WithTheServersMessage()
    {
        await using var p = new McpTestProject();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync("fail", new { reason = "ledger closed" }));
        Assert.Equal("mcp_tool_error", e.Error);
        Assert.False(e.Retryable);
        Assert.Contains("it failed: ledger closed", e.Message, StringComparison.Ordinal);
        Assert.Contains("MCP server 'test'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteAsync_ResultOverMaxResultBytes_FailsAsResultTooLarge()
    {
        await using var p = new McpTestProject();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync(McpTestProject.Tool("big", maxResultBytes: 1000), new { bytes = 5000 }));
        Assert.Equal("result_too_large", e.Error);
        Assert.Contains("max_result_bytes: 1000", e.Message, StringComparison.Ordinal);
        var fits = await p.CallAsync(McpTestProject.Tool("big", maxResultBytes: 1000), new { bytes = 500 });
        Assert.Equal(500, fits.GetProperty("text").GetString()!.Length);
    }

    [Fact]
    public async Task ExecuteAsync_WithoutArgsSchema_ChecksTheServersInputSchema_BeforeTheCall()
    {
        await using var p = new McpTestProject();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync("echo", new { n = "two" }));
        Assert.Equal("invalid_args", e.Error);
        Assert.Contains("message", e.Message, StringComparison.Ordinal);
        Assert.Empty(p.Calls);
    }

    [Fact]
    public async Task ExecuteAsync_WithArgsSchema_LeavesTheCheckToTheGatewayAndTheServer()
    {
        await using var p = new McpTestProject();
        var tool = new ToolDefinition { Name = "t.echo", Kind = "mcp", Server = "test", McpTool = "echo", Args = JsonSchemaContract.FromJson("""{"type":"object"}""") };
        var result = await p.CallAsync(tool, new { other = true });
        Assert.True(result.GetProperty("other").GetBoolean());
    }

    [Fact]
    public async Task ExecuteAsync_ToolTheServerDoesNotList_FailsNamingWhatItHas()
    {
        await using var p = new McpTestProject();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync("nope"));
        Assert.Equal("unknown_mcp_tool", e.Error);
        Assert.Contains("echo", e.Message, StringComparison.Ordinal);
        Assert.False(e.Retryable);
    }

    [Fact]
    public async Task ExecuteAsync_UndefinedServer_IsAConfigError()
    {
        await using var p = new McpTestProject();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync(McpTestProject.Tool("echo", server: "missing"), new { message = "x" }));
        Assert.Equal("config_error", e.Error);
        Assert.Contains("defined: test", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteAsync_Cancelled_StopsTheCall_AndTheServerSeesTheCancellation()
    {
        await using var p = new McpTestProject();
        await p.PidAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await p.CallAsync("slow", new { ms = 30_000 }, cts.Token));
        Assert.True(await WaitForAsync(() => p.Calls.Contains("cancelled slow")), string.Join("\n", p.Calls));
        // The session is still good for the next call.
        Assert.Equal("x", (await p.CallAsync("echo", new { message = "x" })).GetProperty("message").GetString());
    }

    [Fact]
    public async Task ExecuteAsync_EnvironmentOfOrdo_IsNotInherited_ButTheServersEnvIsGiven()
    {
        Environment.SetEnvironmentVariable("ORDO_MCP_TEST_HIDDEN", "secret-value");
        await using var p = new McpTestProject(env: new Dictionary<string, string> { ["GIVEN"] = "yes" });
        Assert.Equal(JsonValueKind.Null, (await p.CallAsync("env", new { name = "ORDO_MCP_TEST_HIDDEN" })).GetProperty("value").ValueKind);
        Assert.Equal("yes", (await p.CallAsync("env", new { name = "GIVEN" })).GetProperty("value").GetString());
        Assert.NotNull((await p.CallAsync("env", new { name = "PATH" })).GetProperty("value").GetString());
    }

    internal static async Task<bool> WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++) await Task.Delay(50);
        return condition();
    }
}

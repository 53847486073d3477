using Ordo.Configuration;
using Ordo.TestServers;
using Ordo.Tools;
using Ordo.Tools.Mcp;

namespace Ordo.Tests.Tools.Mcp;

/// <summary>The life of sessions with real server processes: one per server, restarted when it dies, stopped on dispose.</summary>
public sealed class McpServerPoolTests
{
    [Fact]
    public async Task ConcurrentFirstCalls_StartOneProcess()
    {
        await using var p = new McpTestProject();
        var pids = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => p.PidAsync()));
        Assert.Single(pids.Distinct());
        Assert.Equal(1, p.Pool.SessionsStarted);
        Assert.Equal(pids[0], await p.PidAsync());
    }

    [Fact]
    public async Task DisposeAsync_StopsTheServerProcess()
    {
        var p = new McpTestProject();
        int pid;
        await using (p)
        {
            pid = await p.PidAsync();
            Assert.True(McpTestServers.IsRunning(pid));
        }

        Assert.True(await McpTestServers.GoneAsync(pid, TimeSpan.FromSeconds(10)), $"MCP server process {pid} outlived the pool");
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await p.Pool.ListToolsAsync(p.Project, "test"));
    }

    [Fact]
    public async Task ProcessThatExits_FailsTheCallInFlightRetryable_WithItsStderr_AndTheNextCallRestartsIt()
    {
        await using var p = new McpTestProject();
        var first = await p.PidAsync();
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync("crash"));
        Assert.Equal("mcp_transport_error", e.Error);
        Assert.True(e.Retryable);
        Assert.Contains("crashing on purpose", e.Message, StringComparison.Ordinal);
        Assert.True(await McpTestServers.GoneAsync(first, TimeSpan.FromSeconds(10)));

        var second = await p.PidAsync();
        Assert.NotEqual(first, second);
        Assert.Equal(2, p.Pool.SessionsStarted);
    }

    [Fact]
    public async Task ProcessKilledBetweenCalls_IsRestartedByTheNextCall()
    {
        await using var p = new McpTestProject();
        var first = await p.PidAsync();
        using (var process = System.Diagnostics.Process.GetProcessById(first)) process.Kill();
        Assert.True(await McpTestServers.GoneAsync(first, TimeSpan.FromSeconds(10)));
        // The session may not have noticed yet: a call can fail once (retryable), the one after runs on a new process.
        int second;
        try
        {
            second = await p.PidAsync();
        }
        catch (ToolExecutionException e) when (e.Retryable)
        {
            second = await p.PidAsync();
        }

        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task ServerThatCannotStart_FailsRetryable_QuotingItsStderr_WithoutPrintingIt()
    {
        var server = new McpServerDefinition { Name = "test", Command = ["/bin/sh", "-c", "echo 'missing config file' >&2; exit 7"] };
        await using var p = new McpTestProject(server: server, options: new McpServerPoolOptions { StartTimeout = TimeSpan.FromSeconds(20) });
        var e = await Assert.ThrowsAsync<ToolExecutionException>(async () => await p.CallAsync("echo", new { message = "x" }));
        Assert.Equal("mcp_unavailable", e.Error);
        Assert.True(e.Retryable);
        Assert.Contains("MCP server 'test' (/bin/sh -c", e.Message, StringComparison.Ordinal);
        Assert.Contains("missing config file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListToolsAsync_GivesNamesDescriptionsAndInputSchemas_OncePerSession()
    {
        await using var p = new McpTestProject();
        var tools = await p.Pool.ListToolsAsync(p.Project, "test");
        var echo = tools.Single(t => t.Name == "echo");
        Assert.Equal("Returns its arguments as structured content.", echo.Description);
        Assert.Equal("object", echo.InputSchema.GetProperty("type").GetString());
        Assert.Equal("message", echo.InputSchema.GetProperty("required")[0].GetString());
        Assert.Same(tools, await p.Pool.ListToolsAsync(p.Project, "test"));
        IMcpToolCatalog catalog = p.Pool;
        Assert.Contains(await catalog.ListToolsAsync(p.Project, "test"), t => t.Name == "crash");
    }

    [Fact]
    public async Task RelativeCommand_IsResolvedAgainstTheProjectDirectory()
    {
        await using var p = new McpTestProject(server: new McpServerDefinition { Name = "test", Command = ["./server.sh"] });
        await File.WriteAllTextAsync(Path.Combine(p.Dir, "server.sh"), $"#!/bin/sh\nexec '{McpTestServers.DotnetHost}' '{McpTestServers.ServerDll}'\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(p.Dir, "server.sh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Against the project directory, not the test process's current directory.
        Assert.Equal("x", (await p.CallAsync("echo", new { message = "x" })).GetProperty("message").GetString());
    }
}

using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Tools;

/// <summary>
/// <c>ordo run</c> of a workflow whose steps call <c>kind: mcp</c> tools on a stdio server declared under
/// <c>mcp_servers</c>: the job completes with the server's results in its events, and the server process does not
/// outlive the command.
/// </summary>
public sealed class McpToolCliTests
{
    private static void WriteProject(Workspace w)
    {
        // The server is started through a script beside ordo.yaml, named by a relative path.
        w.Write("servers/test-server.sh", $"#!/bin/sh\nexec '{McpTestServers.DotnetHost}' '{McpTestServers.ServerDll}'\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(w.PathOf("servers/test-server.sh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        w.Write("ordo.yaml", """
            tools: [tools.yaml]
            mcp_servers:
              test: { command: ["./servers/test-server.sh"] }
            """);
        w.Write("tools.yaml", """
            tools:
              docs.echo: { kind: mcp, server: test, tool: echo, effect: read }
              docs.pid: { kind: mcp, server: test, tool: pid, effect: read }
            """);
        w.Write("workflow.yaml", """
            ordo: 1
            workflow: mcp-echo
            version: 1
            input: { type: object, required: [word], properties: { word: { type: string } } }
            steps:
              - { id: echo, tool: docs.echo, args: { message: "${ input.word }" }, next: pid }
              - { id: pid, tool: docs.pid }
            """);
    }

    private static List<JsonElement> Results(IEnumerable<JsonElement> events)
        => events.Where(e => e.GetProperty("type").GetString() == "ToolCallSucceeded").Select(e => e.GetProperty("payload").GetProperty("result")).ToList();

    [Fact]
    public async Task Run_WorkflowWithAnMcpToolStep_CompletesWithTheResultInToolCallSucceeded_AndStopsTheServer()
    {
        using var w = Workspace.Create();
        WriteProject(w);
        var run = await CliRunner.RunExpectingAsync(0, "run", w.PathOf("workflow.yaml"), "--input", w.Write("input.json", """{"word":"ordo"}"""), "--db", w.Db, "--json");
        var job = run.Json();
        Assert.Equal("completed", job.GetProperty("status").GetString());

        var events = (await CliRunner.RunExpectingAsync(0, "events", job.GetProperty("job_id").GetString()!, "--db", w.Db, "--json")).JsonLines();
        var results = Results(events);
        Assert.Equal("ordo", results[0].GetProperty("message").GetString());
        var pid = results[1].GetProperty("pid").GetInt32();
        Assert.True(await McpTestServers.GoneAsync(pid, TimeSpan.FromSeconds(10)), $"the MCP server (pid {pid}) outlived 'ordo run'");
    }

    [Fact]
    public async Task Run_InItsOwnProcess_LeavesNoServerProcessBehind()
    {
        using var w = Workspace.Create();
        WriteProject(w);
        var run = await OrdoProcess.RunAsync(w.Root, TimeSpan.FromSeconds(120), "run", "workflow.yaml", "--input", w.Write("input.json", """{"word":"x"}"""), "--db", w.Db, "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        var events = (await CliRunner.RunExpectingAsync(0, "events", run.Json().GetProperty("job_id").GetString()!, "--db", w.Db, "--json")).JsonLines();
        var pid = Results(events)[1].GetProperty("pid").GetInt32();
        Assert.False(McpTestServers.IsRunning(pid), $"the MCP server (pid {pid}) outlived the ordo process");
    }
}

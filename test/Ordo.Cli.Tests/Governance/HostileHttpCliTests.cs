using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Governance;

/// <summary><c>ordo run</c> against a dependency that answers with more than a process could hold.</summary>
public sealed class HostileHttpCliTests
{
    [Fact]
    public async Task A300MegabyteAnswer_FailsTheJobClearly_InAProcessWhoseHeapIsSmallerThanTheAnswer()
    {
        const string key = "exp0rt-key-7a6b5c4d";
        var written = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await RawLoopbackServer.StartAsync(async (head, stream, ct) =>
            written.TrySetResult(await RawLoopbackServer.StreamJsonAsync(stream, 300L * 1024 * 1024, ct)));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", "tools: [tools.yaml]\n");
        w.Write("tools.yaml", $$"""
            tools:
              export.all:
                kind: http
                method: GET
                url: "{{server.Address}}export"
                headers: { X-Api-Key: "${secret:EXPORT_KEY}" }
                effect: read
            """);
        w.Write("export.yaml", """
            ordo: 1
            workflow: export
            version: 1
            steps:
              - { id: export, tool: export.all }
            """);

        // 96 MiB of managed heap: the old way (the whole body in a buffer, then in a string) could not even hold it.
        var environment = new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x6000000", ["EXPORT_KEY"] = key };
        using var process = OrdoProcess.Start(environment, w.Root, "run", w.PathOf("export.yaml"), "--db", w.Db, "--json");
        var code = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var run = new CliResult(code, string.Join('\n', process.OutLines), process.Err);

        Assert.True(code == 3, $"expected the job to fail (exit code 3)\n{run}");
        var json = run.Json();
        Assert.Equal("failed", json.GetProperty("status").GetString());
        var reason = json.GetProperty("reason").GetString()!;
        Assert.Contains("tool 'export.all'", reason, StringComparison.Ordinal);
        Assert.Contains("max_response_bytes: 4194304", reason, StringComparison.Ordinal);
        Assert.True((await written.Task.WaitAsync(TimeSpan.FromSeconds(10))) < 32L * 1024 * 1024, "the body was read far past the limit");

        var events = await CliRunner.RunExpectingAsync(0, "events", json.GetProperty("job_id").GetString()!, "--db", w.Db, "--json");
        Assert.DoesNotContain(key, events.Out, StringComparison.Ordinal);
        var failed = events.JsonLines().Single(e => e.GetProperty("type").GetString() == "ToolCallFailed").GetProperty("payload");
        Assert.Equal("response_too_large", failed.GetProperty("error").GetString());
        Assert.False(failed.GetProperty("retryable").GetBoolean());
        var audit = await CliRunner.RunExpectingAsync(0, "audit", "verify", json.GetProperty("job_id").GetString()!, "--db", w.Db, "--json");
        Assert.True(audit.JsonLines()[0].GetProperty("intact").GetBoolean(), audit.ToString());
    }
}

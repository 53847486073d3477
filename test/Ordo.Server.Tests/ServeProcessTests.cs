using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Ordo.Server.Tests;

/// <summary>The real <c>ordo serve</c> process: a key from <c>ordo keys create</c>, a submission, a live follow, and SIGTERM.</summary>
public sealed class ServeProcessTests
{
    private static ProcessStartInfo Start(string dir, params string[] args) => OrdoProcess.Start(dir, args);

    [Fact]
    public async Task Serve_CreatesKeySubmitsFollows_AndExitsCleanlyOnSigterm()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-serve-test", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "hello.yaml"), ApiFixture.Hello);
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), "tenants:\n  acme: {}\n");
        using (var keys = Process.Start(Start(dir, "keys", "create", "--tenant", "acme", "--as", "alice", "--json", "--db", "t.db"))!)
        {
            var output = await keys.StandardOutput.ReadToEndAsync();
            await keys.WaitForExitAsync();
            Assert.Equal(0, keys.ExitCode);
            var created = JsonDocument.Parse(output).RootElement;
            Assert.StartsWith("ordo_", created.GetProperty("key").GetString(), StringComparison.Ordinal);
            await RunServerAsync(dir, created.GetProperty("key").GetString()!);
        }
    }

    [Fact]
    public async Task Serve_RefusesTwoFilesOfOneWorkflowVersion_AndAnAddressInUse_WithExit2()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-serve-test", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "hello.yaml"), ApiFixture.Hello);
        File.WriteAllText(Path.Combine(dir, "hello-copy.yaml"), ApiFixture.Hello.Replace("greeting: hi", "greeting: hey", StringComparison.Ordinal));
        var (code, stderr) = await RunToExitAsync(dir, "serve", "--urls", "http://127.0.0.1:0", "--db", "t.db");
        Assert.True(code == 2, stderr);
        Assert.Contains("both define hello@1", stderr, StringComparison.Ordinal);

        File.Delete(Path.Combine(dir, "hello-copy.yaml"));
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        (code, stderr) = await RunToExitAsync(dir, "serve", "--urls", $"http://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}", "--db", "t.db");
        Assert.True(code == 2, stderr);
        Assert.Contains("cannot listen on", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_ChecksTheWorkflowsOfWorkflowsFolders_AgainstTheConfigsTools()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-serve-test", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "wf"));
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), "tools: [tools.yaml]\nworkflows: [wf]\ntenants:\n  acme: {}\n");
        File.WriteAllText(Path.Combine(dir, "tools.yaml"), "tools:\n  echo.post: { kind: http, url: \"http://127.0.0.1:9/echo\", method: POST, effect: read }\n");
        File.WriteAllText(Path.Combine(dir, "wf", "call.yaml"), "ordo: 1\nworkflow: call\nversion: 1\nsteps:\n  - { id: c, tool: echo.post, args: { x: 1 } }\n");
        string key;
        using (var keys = Process.Start(Start(dir, "keys", "create", "--tenant", "acme", "--as", "alice", "--json", "--db", "t.db"))!)
        {
            var output = await keys.StandardOutput.ReadToEndAsync();
            await keys.WaitForExitAsync();
            Assert.Equal(0, keys.ExitCode);
            key = JsonDocument.Parse(output).RootElement.GetProperty("key").GetString()!;
        }

        await RunServerAsync(dir, key, "/v1/workflows", "call");
    }

    private static async Task<(int Code, string Stderr)> RunToExitAsync(string dir, params string[] args)
    {
        using var process = Process.Start(Start(dir, args))!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await stderr);
    }

    private static async Task RunServerAsync(string dir, string key, string? listPath = null, string? listed = null)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var server = Process.Start(Start(dir, "serve", "--urls", $"http://127.0.0.1:{port}", "--db", "t.db", "--workers", "1"))!;
        var stderr = server.StandardError.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var ready = false;
            for (var i = 0; i < 300 && !ready; i++)
            {
                try
                {
                    ready = (await http.GetAsync("/readyz")).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(100);
                }
            }

            Assert.True(ready, "the server did not become ready");
            if (listPath is not null)
            {
                using var list = new HttpRequestMessage(HttpMethod.Get, listPath);
                list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                Assert.Contains(listed!, await (await http.SendAsync(list)).Content.ReadAsStringAsync(), StringComparison.Ordinal);
                return;
            }

            using var submit = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent("""{"workflow":"hello","input":{}}""", Encoding.UTF8, "application/json") };
            submit.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var response = await http.SendAsync(submit);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            var job = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("job_id").GetString();
            var events = await Sse.ReadAsync(http, $"/v1/jobs/{job}/events", key);
            Assert.Equal("JobCompleted", events[^1].Json.GetProperty("type").GetString());
        }
        finally
        {
            Assert.Equal(0, Kill(server.Id));
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await server.WaitForExitAsync(exit.Token);
        }

        Assert.True(server.ExitCode == 0, await stderr);
    }

    private static int Kill(int pid)
    {
        using var kill = Process.Start("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        return kill.ExitCode;
    }
}

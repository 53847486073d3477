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

    private static async Task RunServerAsync(string dir, string key)
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

using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Ordo.Server.Auth;

namespace Ordo.Server.Tests;

/// <summary>
/// One real <c>ordo serve</c> process on SQLite, its tenants, keys (as configured hashes), roles and quotas in an
/// ordo.yaml it finds in its working directory; the tests call it over loopback HTTP as any client would.
/// </summary>
public sealed class ServeProcess : IAsyncLifetime
{
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);
    private Process? _server;
    private Task<string>? _stderr;

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "ordo-serve-contract", Guid.NewGuid().ToString("N"));

    public HttpClient Http { get; private set; } = null!;

    public string Key(string identity) => _keys[identity];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        foreach (var who in new[] { "alice", "sam", "bob", "carol", "olga", "vic", "gary", "rita", "iris" }) _keys[who] = ApiKeys.NewKey();
        string Entry(string who) => $"{{ identity: {who}, hash: \"{ApiKeys.Hash(_keys[who])}\" }}";
        File.WriteAllText(Path.Combine(Dir, "ordo.yaml"), $$"""
            tenants:
              acme:
                api_keys: [{{Entry("alice")}}, {{Entry("sam")}}, {{Entry("bob")}}, {{Entry("carol")}}, {{Entry("olga")}}, {{Entry("vic")}}]
                roles: { alice: [submitter], sam: [submitter, approver], bob: [approver], carol: [approver], olga: [operator], vic: [viewer] }
              globex:
                api_keys: [{{Entry("gary")}}]
                quota: { jobs_per_minute: 3 }
              limited:
                api_keys: [{{Entry("rita")}}, {{Entry("iris")}}]
            """);
        File.WriteAllText(Path.Combine(Dir, "hello.yaml"), ApiFixture.Hello);
        File.WriteAllText(Path.Combine(Dir, "payout.yaml"), ApiFixture.TwoPerson);
        File.WriteAllText(Path.Combine(Dir, "typed.yaml"), ApiFixture.Typed);
        File.WriteAllText(Path.Combine(Dir, "ci.yaml"), "steps:\n  - run: make\n");   // other YAML beside the workflows is not one of them

        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        _server = Process.Start(OrdoProcess.Start(Dir, "serve", "--urls", $"http://127.0.0.1:{port}", "--db", "t.db", "--workers", "2", "--rate-limit", "100"))!;
        _stderr = _server.StandardError.ReadToEndAsync();
        _ = _server.StandardOutput.ReadToEndAsync();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
        for (var i = 0; i < 600; i++)
        {
            if (_server.HasExited) throw new InvalidOperationException("ordo serve exited: " + await _stderr);
            try
            {
                if ((await Http.GetAsync("/readyz")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("ordo serve did not become ready");
    }

    public async Task<(int Status, JsonElement Json, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? who, object? body = null, Action<HttpRequestMessage>? edit = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (who is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _keys.GetValueOrDefault(who, who));
        if (body is not null) request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        edit?.Invoke(request);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return ((int)response.StatusCode, json, response);
    }

    public async Task<string> SubmitAsync(string who, string workflow, object? input = null)
    {
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/v1/jobs", who, new { workflow, input = input ?? new { } });
        Assert.True(status == 201, json.ToString());
        return json.GetProperty("job_id").GetString()!;
    }

    public async Task<JsonElement> WaitForStatusAsync(string who, string jobId, params string[] statuses)
    {
        for (var i = 0; i < 600; i++)
        {
            var (_, json, _) = await SendAsync(HttpMethod.Get, $"/v1/jobs/{jobId}", who);
            if (statuses.Contains(json.GetProperty("status").GetString())) return json;
            await Task.Delay(50);
        }

        throw new TimeoutException($"job {jobId} did not reach {string.Join("/", statuses)}");
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_server is null) return;
        if (!_server.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", _server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await _server.WaitForExitAsync(exit.Token);
        }

        var exitCode = _server.ExitCode;
        var stderr = await _stderr!;
        _server.Dispose();
        try
        {
            Directory.Delete(Dir, true);
        }
        catch (IOException)
        {
        }

        Assert.True(exitCode == 0, $"ordo serve exited {exitCode}: {stderr}");
    }
}

/// <summary>Starts the built <c>ordo</c> executable.</summary>
internal static class OrdoProcess
{
    public static string Dll()
    {
        var config = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var root = AppContext.BaseDirectory[..AppContext.BaseDirectory.IndexOf("/test/", StringComparison.Ordinal)];
        return Path.Combine(root, "src", "Ordo.Cli", "bin", config, "net10.0", "Ordo.Cli.dll");
    }

    public static ProcessStartInfo Start(string dir, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Dll());
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }
}

/// <summary>The API contract (API.md), called on a real <c>ordo serve</c> process.</summary>
public sealed class ServeProcessContractTests(ServeProcess server) : IClassFixture<ServeProcess>
{
    [Fact]
    public async Task HealthReadinessOpenApiAndMetrics_NeedNoKey_AndMetricsNameNoTenant()
    {
        Assert.Equal(200, (await server.SendAsync(HttpMethod.Get, "/healthz", null)).Status);
        Assert.Equal(200, (await server.SendAsync(HttpMethod.Get, "/readyz", null)).Status);
        var openapi = await server.SendAsync(HttpMethod.Get, "/openapi/v1.json", null);
        Assert.Equal(200, openapi.Status);
        foreach (var path in new[] { "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/events", "/v1/jobs/{id}/approvals/{approvalId}", "/v1/jobs/{id}/cancel", "/v1/approvals", "/v1/kill-switches", "/v1/kill-switches/{target}", "/v1/workflows" })
        {
            Assert.True(openapi.Json.GetProperty("paths").TryGetProperty(path, out _), path);
        }

        Assert.Equal("Ordo API", openapi.Json.GetProperty("info").GetProperty("title").GetString());
        Assert.Equal("bearer", openapi.Json.GetProperty("components").GetProperty("securitySchemes").GetProperty("apiKey").GetProperty("scheme").GetString());
        var submit = openapi.Json.GetProperty("paths").GetProperty("/v1/jobs").GetProperty("post");
        Assert.True(submit.GetProperty("responses").TryGetProperty("201", out _));
        Assert.True(submit.GetProperty("responses").TryGetProperty("429", out _));
        Assert.Contains(submit.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("name").GetString() == "Idempotency-Key");
        Assert.NotEmpty(submit.GetProperty("security").EnumerateArray());

        await server.SubmitAsync("gary", "hello");
        var metrics = await server.Http.GetStringAsync("/metrics");
        Assert.Contains("ordo_jobs_submitted", metrics);
        foreach (var tenant in new[] { "acme", "globex", "limited" }) Assert.DoesNotContain(tenant, metrics);
    }

    [Fact]
    public async Task Workflows_AreTheYamlWorkflowsBesideTheConfig()
    {
        var list = (await server.SendAsync(HttpMethod.Get, "/v1/workflows", "vic")).Json.GetProperty("workflows");
        Assert.Equal(["hello", "payout", "typed"], list.EnumerateArray().Select(w => w.GetProperty("workflow").GetString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task MissingUnknownOrUnroledKeys_Are401And403_AsProblemJson()
    {
        var none = await server.SendAsync(HttpMethod.Get, "/v1/jobs", null);
        Assert.Equal(401, none.Status);
        Assert.Equal("application/problem+json", none.Response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(401, (await server.SendAsync(HttpMethod.Get, "/v1/jobs", "ordo_not-a-key")).Status);
        Assert.Equal(403, (await server.SendAsync(HttpMethod.Post, "/v1/jobs", "vic", new { workflow = "hello" })).Status);
        Assert.Equal(403, (await server.SendAsync(HttpMethod.Get, "/v1/kill-switches", "alice")).Status);
        Assert.Equal(403, (await server.SendAsync(HttpMethod.Get, "/v1/approvals", "alice")).Status);
    }

    [Fact]
    public async Task Submit_IsIdempotentByKey_ListedAndShown_InvalidInputNamesPaths_OversizeIs413()
    {
        var key = Guid.NewGuid().ToString("N");
        var first = await server.SendAsync(HttpMethod.Post, "/v1/jobs", "alice", new { workflow = "hello" }, r => r.Headers.Add("Idempotency-Key", key));
        Assert.Equal(201, first.Status);
        var id = first.Json.GetProperty("job_id").GetString();
        Assert.Equal($"/v1/jobs/{id}", first.Response.Headers.Location!.OriginalString);
        var again = await server.SendAsync(HttpMethod.Post, "/v1/jobs", "alice", new { workflow = "hello" }, r => r.Headers.Add("Idempotency-Key", key));
        Assert.Equal(200, again.Status);
        Assert.Equal(id, again.Json.GetProperty("job_id").GetString());

        var job = await server.WaitForStatusAsync("alice", id!, "completed");
        Assert.Equal(("acme", "alice", "hello@1"), (job.GetProperty("tenant").GetString(), job.GetProperty("submitter").GetString(), job.GetProperty("workflow").GetString()));
        var listed = (await server.SendAsync(HttpMethod.Get, "/v1/jobs?workflow=hello&status=completed&limit=500", "vic")).Json.GetProperty("jobs");
        Assert.Single(listed.EnumerateArray(), j => j.GetProperty("job_id").GetString() == id);

        var invalid = await server.SendAsync(HttpMethod.Post, "/v1/jobs", "alice", new { workflow = "typed", input = new { amount = "ten" } });
        Assert.Equal(400, invalid.Status);
        Assert.True(invalid.Json.GetProperty("errors").TryGetProperty("$.input.amount", out _), invalid.Json.ToString());
        var unknown = await server.SendAsync(HttpMethod.Post, "/v1/jobs", "alice", new { workflow = "nope" });
        Assert.True(unknown.Json.GetProperty("errors").TryGetProperty("$.workflow", out _));
        Assert.Equal(413, (await server.SendAsync(HttpMethod.Post, "/v1/jobs", "alice", "{\"workflow\":\"hello\",\"input\":{\"x\":\"" + new string('a', 1_100_000) + "\"}}")).Status);
    }

    [Fact]
    public async Task OverTheTenantsQuota_AndOverTheKeysRateLimit_Are429WithRetryAfter()
    {
        var statuses = new List<(int Status, HttpResponseMessage Response)>();
        for (var i = 0; i < 4; i++)
        {
            var (status, _, response) = await server.SendAsync(HttpMethod.Post, "/v1/jobs", "gary", new { workflow = "hello" });
            statuses.Add((status, response));
        }

        var refused = statuses.First(s => s.Status == 429);
        Assert.True(refused.Response.Headers.RetryAfter is not null, "no Retry-After");

        (int Status, JsonElement Json, HttpResponseMessage Response) last = default;
        for (var i = 0; i < 105 && last.Status != 429; i++) last = await server.SendAsync(HttpMethod.Get, "/v1/workflows", "rita");
        Assert.Equal(429, last.Status);
        Assert.True(last.Response!.Headers.RetryAfter?.Delta > TimeSpan.Zero, "no Retry-After");
    }

    [Fact]
    public async Task TwoPersonApproval_SelfApprovalAndRepeatRefused_TwoApproversFinishTheJob_FollowedLive()
    {
        var id = await server.SubmitAsync("sam", "payout");
        var waiting = await server.WaitForStatusAsync("sam", id, "waiting_approval");
        var approval = Uri.EscapeDataString(waiting.GetProperty("approvals")[0].GetProperty("id").GetString()!);
        Assert.Contains((await server.SendAsync(HttpMethod.Get, "/v1/approvals?status=pending", "bob")).Json.GetProperty("approvals").EnumerateArray(), a => a.GetProperty("job_id").GetString() == id);

        var follow = Sse.ReadAsync(server.Http, $"/v1/jobs/{id}/events", server.Key("vic"));
        Assert.Equal(409, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "sam", new { decision = "approve" })).Status);
        Assert.Equal(403, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "alice", new { decision = "approve" })).Status);
        var first = await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "bob", new { decision = "approve", reason = "checked" });
        Assert.Equal(("pending", 1), (first.Json.GetProperty("status").GetString(), first.Json.GetProperty("remaining").GetInt32()));
        Assert.Equal(409, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "bob", new { decision = "approve" })).Status);
        Assert.Equal("approved", (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "carol", new { decision = "approve" })).Json.GetProperty("status").GetString());

        var events = await follow;
        Assert.Equal("JobCompleted", events[^1].Json.GetProperty("type").GetString());
        Assert.Equal(2, events.Count(e => e.Json.GetProperty("type").GetString() == "ApprovalDecided"));
        var resumed = await Sse.ReadAsync(server.Http, $"/v1/jobs/{id}/events", server.Key("vic"), lastEventId: events[^3].Id);
        Assert.Equal(events.TakeLast(2).Select(e => e.Id), resumed.Select(e => e.Id));
    }

    [Fact]
    public async Task Cancel_AndKillSwitches_ByTheirRoles()
    {
        var id = await server.SubmitAsync("alice", "payout");
        await server.WaitForStatusAsync("alice", id, "waiting_approval");
        Assert.Equal(403, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/cancel", "vic", new { reason = "no" })).Status);
        Assert.Equal("cancelled", (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/cancel", "olga", new { reason = "ops" })).Json.GetProperty("status").GetString());
        Assert.Equal(409, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/cancel", "olga", new { reason = "again" })).Status);

        var target = "/v1/kill-switches/" + Uri.EscapeDataString("agent:extractor");
        Assert.Equal(200, (await server.SendAsync(HttpMethod.Put, target, "olga", new { reason = "drill" })).Status);
        Assert.Contains((await server.SendAsync(HttpMethod.Get, "/v1/kill-switches", "olga")).Json.GetProperty("kill_switches").EnumerateArray(), s => s.GetProperty("target").GetString() == "agent:extractor");
        Assert.Equal(204, (await server.SendAsync(HttpMethod.Delete, target, "olga")).Status);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Delete, target, "olga")).Status);
    }

    [Fact]
    public async Task AnotherTenantsJob_Is404OnEveryPath_AndNeverListedOrStreamed()
    {
        var id = await server.SubmitAsync("sam", "payout");
        var waiting = await server.WaitForStatusAsync("sam", id, "waiting_approval");
        var approval = Uri.EscapeDataString(waiting.GetProperty("approvals")[0].GetProperty("id").GetString()!);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}", "iris")).Status);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}/events", "iris")).Status);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}/events", "iris", edit: r => r.Headers.Accept.ParseAdd("text/event-stream"))).Status);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", "iris", new { decision = "approve" })).Status);
        Assert.Equal(404, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/cancel", "iris", new { reason = "x" })).Status);
        Assert.Equal(400, (await server.SendAsync(HttpMethod.Get, $"/v1/jobs?cursor={id}", "iris")).Status);
        Assert.DoesNotContain((await server.SendAsync(HttpMethod.Get, "/v1/jobs?limit=500", "iris")).Json.GetProperty("jobs").EnumerateArray(), j => j.GetProperty("job_id").GetString() == id);
        Assert.Empty((await server.SendAsync(HttpMethod.Get, "/v1/approvals", "iris")).Json.GetProperty("approvals").EnumerateArray());
        Assert.Equal("waiting_approval", (await server.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}", "sam")).Json.GetProperty("status").GetString());
    }
}

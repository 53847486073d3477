using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Http;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;
using Ordo.Tools;

namespace Ordo.Tests.Governance;

/// <summary>
/// http tools against hostile answers and arguments, on real servers on 127.0.0.1: redirects that would carry a secret
/// to another origin or reach a cloud metadata address, path arguments that would move the request, bodies and headers
/// too large to hold.
/// </summary>
public sealed class HttpToolHostileTests
{
    private const string ApiKey = "k3y-0f-the-crm-9f8e7d";
    private const string Token = "b3arer-t0ken-4b5c6d7e";

    private static Dictionary<string, string> Secrets() => new() { ["CRM_KEY"] = ApiKey, ["CRM_TOKEN"] = Token };

    private static void Project(GovernanceHarness h, string tools, string tool = "t", string args = "{}")
    {
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", "tools:\n" + tools);
        h.Write("workflow.yaml", $$"""
            ordo: 1
            workflow: hostile
            version: 1
            steps:
              - { id: call, tool: {{tool}}, args: {{args}}, retry: { max_attempts: 3, backoff: 1ms } }
            """);
    }

    private static Task Redirect(HttpContext context, int status, string location)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.Location = location;
        return Task.CompletedTask;
    }

    /// <summary>
    /// Asserts the job failed on the first attempt of its call with <paramref name="error"/>, not retried; that its log
    /// reads back whole and never holds a secret value; and returns the failure.
    /// </summary>
    private static async Task<ToolCallFailedPayload> AssertFailedOnceAsync(GovernanceHarness h, JobState state, string error)
    {
        Assert.True(state.Status == JobStatus.Failed, $"expected a failed job, found {state.Status}: {state.Reason}");
        var events = await AssertIntactAsync(h, state);
        var failed = events.Where(e => e.Type == EventTypes.ToolCallFailed).Select(e => e.GetPayload<ToolCallFailedPayload>()).ToList();
        var only = Assert.Single(failed);
        Assert.Equal(error, only.Error);
        Assert.False(only.Retryable);
        Assert.Equal(1, only.Attempts);
        Assert.DoesNotContain("threw", state.Reason, StringComparison.OrdinalIgnoreCase);
        return only;
    }

    /// <summary>The job's log is whole (its hash chain verifies), gives the state the store holds, and holds no secret value anywhere.</summary>
    private static async Task<List<EventEnvelope>> AssertIntactAsync(GovernanceHarness h, JobState state)
    {
        var events = await h.EventsAsync(state.JobId);
        Assert.NotEmpty(events);
        var audit = await AuditVerifier.VerifyAsync(h.Store, state.JobId);
        Assert.True(audit.Intact, audit.Problem);
        Assert.Equal(events.Count, audit.Events);
        var stored = await h.Runtime.GetStateAsync(state.JobId);
        Assert.Equal(state.Status, stored!.Status);
        Assert.Equal(state.Reason, stored.Reason);
        foreach (var e in events)
        {
            Assert.DoesNotContain(ApiKey, e.PayloadText, StringComparison.Ordinal);
            Assert.DoesNotContain(Token, e.PayloadText, StringComparison.Ordinal);
        }

        return events;
    }

    // ---- 1. Redirects to another origin ----

    [Theory]
    [InlineData("other_port")]
    [InlineData("other_host")]
    [InlineData("other_scheme")]
    public async Task RedirectToAnotherOrigin_IsRefusedByDefault_AndTheSecretHeaderIsNotSentThere(string kind)
    {
        await using var elsewhere = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"stolen":true}"""));
        var target = "";
        await using var home = await LoopbackServer.StartAsync((ctx, req) => Redirect(ctx, 302, target));
        target = kind switch
        {
            "other_port" => $"{elsewhere.Address}collect",
            "other_host" => $"http://localhost:{home.Address.Port}/collect",
            _ => $"https://127.0.0.1:{home.Address.Port}/collect",
        };
        await using var h = new GovernanceHarness(Secrets());
        Project(h, $$"""
              t:
                kind: http
                method: GET
                url: "{{home.Address}}customers/1"
                headers: { X-Api-Key: "${secret:CRM_KEY}" }
                effect: read
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "redirect_refused");
        Assert.Contains($"to another origin, {new Uri(target).GetLeftPart(UriPartial.Authority)}", failed.Message, StringComparison.Ordinal);
        Assert.Contains("redirects: any", failed.Message, StringComparison.Ordinal);
        var request = Assert.Single(home.Requests);
        Assert.Equal(ApiKey, request.Headers["X-Api-Key"]);
        Assert.Empty(elsewhere.Requests);
    }

    [Fact]
    public async Task RedirectsAny_FollowsToAnotherOrigin_WithoutSecretOrCredentialHeaders_KeepingMethodBodyAndIdempotencyKey()
    {
        await using var elsewhere = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, $$"""{"method":"{{req.Method}}","body":{{req.Body}}}"""));
        await using var home = await LoopbackServer.StartAsync((ctx, req) => Redirect(ctx, 307, $"{elsewhere.Address}landing"));
        await using var h = new GovernanceHarness(Secrets());
        Project(h, $$"""
              t:
                kind: http
                method: POST
                url: "{{home.Address}}start"
                redirects: any
                headers:
                  X-Api-Key: "${secret:CRM_KEY}"
                  Authorization: "Bearer ${secret:CRM_TOKEN}"
                  Cookie: "session=s-1234"
                  X-Trace: plain-value
                effect: write
            """, args: "{ tier: gold }");

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        await AssertIntactAsync(h, state);
        var first = Assert.Single(home.Requests);
        Assert.Equal((ApiKey, "Bearer " + Token, "session=s-1234"), (first.Headers["X-Api-Key"], first.Headers["Authorization"], first.Headers["Cookie"]));
        var second = Assert.Single(elsewhere.Requests);
        Assert.Equal(("POST", """{"tier":"gold"}"""), (second.Method, second.Body));
        Assert.Equal("plain-value", second.Headers["X-Trace"]);
        Assert.Equal(first.IdempotencyKey, second.IdempotencyKey);
        Assert.NotNull(second.IdempotencyKey);
        foreach (var name in new[] { "X-Api-Key", "Authorization", "Cookie", "Proxy-Authorization" })
        {
            Assert.False(second.Headers.ContainsKey(name), $"{name} was sent to another origin");
        }

        Assert.DoesNotContain(second.Headers.Values, v => v.Contains(ApiKey, StringComparison.Ordinal) || v.Contains(Token, StringComparison.Ordinal));
        Assert.Equal("gold", state.Steps["call"].Output!.Value.GetProperty("body").GetProperty("tier").GetString());
    }

    [Theory]
    [InlineData(301, "POST", "GET")]
    [InlineData(302, "POST", "GET")]
    [InlineData(303, "POST", "GET")]
    [InlineData(303, "PUT", "GET")]
    [InlineData(302, "PUT", "PUT")]
    [InlineData(307, "POST", "POST")]
    [InlineData(308, "PATCH", "PATCH")]
    public async Task RedirectWithinTheOrigin_IsFollowed_WithTheStandardMethodRewriting(int status, string method, string expected)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => req.Path == "/start"
            ? Redirect(ctx, status, "/moved?from=start")
            : LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""));
        await using var h = new GovernanceHarness(Secrets());
        Project(h, $$"""
              t:
                kind: http
                method: {{method}}
                url: "{{server.Address}}start"
                headers: { X-Api-Key: "${secret:CRM_KEY}" }
                effect: write
            """, args: "{ tier: gold }");

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.Equal(JobStatus.Completed, state.Status);
        await AssertIntactAsync(h, state);
        Assert.Equal(2, server.Requests.Count);
        var (first, second) = (server.Requests[0], server.Requests[1]);
        Assert.Equal((method, """{"tier":"gold"}"""), (first.Method, first.Body));
        Assert.Equal(("/moved", "?from=start", expected), (second.Path, second.Query, second.Method));
        Assert.Equal(expected == method ? """{"tier":"gold"}""" : "", second.Body);
        Assert.Equal(ApiKey, second.Headers["X-Api-Key"]);
        Assert.Equal(first.IdempotencyKey, second.IdempotencyKey);
    }

    [Fact]
    public async Task RedirectLoop_StopsAfterFiveHops()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => Redirect(ctx, 302, "/again"));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}start", effect: read }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "too_many_redirects");
        Assert.Contains($"more than {HttpToolExecutor.MaxRedirects} times", failed.Message, StringComparison.Ordinal);
        Assert.Equal(HttpToolExecutor.MaxRedirects + 1, server.Requests.Count);
    }

    [Fact]
    public async Task RedirectsNone_FailsTheCallOnARedirect()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => Redirect(ctx, 302, "/elsewhere"));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}start", effect: read, redirects: none }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "http_302");
        Assert.Contains("redirects: none", failed.Message, StringComparison.Ordinal);
        Assert.Single(server.Requests);
    }

    // ---- 2. Link-local and cloud metadata addresses ----

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "169.254.169.254")]
    [InlineData("http://169.254.170.2/v2/credentials/", "169.254.170.2")]
    [InlineData("http://[::ffff:169.254.169.254]/latest/meta-data/", "::ffff:169.254.169.254")]
    [InlineData("http://2852039166/latest/meta-data/", "169.254.169.254")]
    [InlineData("http://0xA9FEA9FE/latest/meta-data/", "169.254.169.254")]
    [InlineData("http://0251.0376.0251.0376/latest/meta-data/", "169.254.169.254")]
    [InlineData("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "64:ff9b::a9fe:a9fe")]
    [InlineData("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254")]
    [InlineData("http://[fe80::1]/", "fe80::1")]
    [InlineData("http://[fe80::a9fe:a9fe%25eth0]/", "fe80::a9fe:a9fe")]
    [InlineData("http://100.100.100.200/latest/meta-data/", "100.100.100.200")]
    [InlineData("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal")]
    [InlineData("http://METADATA.google.internal./computeMetadata/v1/", "metadata.google.internal")]
    public async Task RedirectToACloudMetadataAddress_IsRefusedBeforeConnecting(string location, string named)
    {
        var lookups = new ConcurrentQueue<string>();
        using var executor = new HttpToolExecutor((host, ct) =>
        {
            lookups.Enqueue(host);
            return Task.FromResult<IPAddress[]>([]);
        });
        await using var server = await LoopbackServer.StartAsync((ctx, req) => Redirect(ctx, 302, location));
        await using var h = new GovernanceHarness(Secrets(), executor: executor);
        Project(h, $$"""
              t:
                kind: http
                method: GET
                url: "{{server.Address}}profile"
                headers: { X-Api-Key: "${secret:CRM_KEY}" }
                redirects: any
                effect: read
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "address_refused");
        Assert.Contains(named, failed.Message, StringComparison.Ordinal);
        Assert.Contains("refused before connecting", failed.Message, StringComparison.Ordinal);
        Assert.Contains("allow_addresses", failed.Message, StringComparison.Ordinal);
        Assert.Single(server.Requests);
        Assert.Empty(lookups); // Refused on the URL itself: no name was resolved, no connection was attempted.
    }

    [Fact]
    public async Task AToolWhoseUrlIsTheMetadataAddress_IsRefusedBeforeConnecting()
    {
        await using var h = new GovernanceHarness();
        Project(h, """
              t: { kind: http, method: GET, url: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", effect: read }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "address_refused");
        Assert.Contains("169.254.169.254 is a link-local address", failed.Message, StringComparison.Ordinal);
        Assert.Contains("tool 't' may reach it only if allow_addresses lists it", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostNames_AreCheckedOnEveryAddressTheyResolveTo_WhenConnecting()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""));
        var lookups = new ConcurrentQueue<string>();
        using var executor = new HttpToolExecutor((host, ct) =>
        {
            lookups.Enqueue(host);
            return Task.FromResult<IPAddress[]>(host switch
            {
                "api.internal.test" or "metadata.google.internal" => [IPAddress.Loopback],
                "rebound.test" => [IPAddress.Parse("::ffff:169.254.169.254")],
                "mixed.test" => [IPAddress.Loopback, IPAddress.Parse("169.254.169.254")],
                _ => [],
            });
        });
        var port = server.Address.Port;
        await using var h = new GovernanceHarness(executor: executor);
        Project(h, $$"""
              plain: { kind: http, method: GET, url: "http://api.internal.test:{{port}}/a", effect: read }
              rebound: { kind: http, method: GET, url: "http://rebound.test:{{port}}/b", effect: read }
              mixed: { kind: http, method: GET, url: "http://mixed.test:{{port}}/c", effect: read }
              mixed_allowed: { kind: http, method: GET, url: "http://mixed.test:{{port}}/d", effect: read, allow_addresses: [169.254.0.0/16] }
              named_allowed: { kind: http, method: GET, url: "http://metadata.google.internal:{{port}}/e", effect: read, allow_addresses: [metadata.google.internal] }
            """);
        async Task<JobState> RunAsync(string tool)
        {
            h.Write($"{tool}.yaml", $"ordo: 1\nworkflow: {tool.Replace('_', '-')}\nversion: 1\nsteps:\n  - {{ id: call, tool: {tool} }}\n");
            return await h.RunAsync(await h.LoadAsync($"{tool}.yaml"));
        }

        Assert.Equal(JobStatus.Completed, (await RunAsync("plain")).Status);
        var rebound = await AssertFailedOnceAsync(h, await RunAsync("rebound"), "address_refused");
        Assert.Contains("rebound.test (::ffff:169.254.169.254) is a link-local address", rebound.Message, StringComparison.Ordinal);
        var mixed = await AssertFailedOnceAsync(h, await RunAsync("mixed"), "address_refused");
        Assert.Contains("mixed.test (169.254.169.254)", mixed.Message, StringComparison.Ordinal);
        Assert.Equal(JobStatus.Completed, (await RunAsync("mixed_allowed")).Status);
        Assert.Equal(JobStatus.Completed, (await RunAsync("named_allowed")).Status);

        Assert.Equal(["/a", "/d", "/e"], server.Requests.Select(r => r.Path));
        Assert.Equal($"api.internal.test:{port}", server.Requests[0].Headers["Host"]);
        Assert.Contains("rebound.test", lookups);
    }

    // ---- 3. Path arguments that would move the request ----

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("")]
    public async Task APathArgumentThatIsADotSegment_IsRefused(string id)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: DELETE, url: "{{server.Address}}items/{id}", effect: write }
            """, args: $"{{ id: \"{id}\" }}");

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "invalid_args");
        Assert.Contains("argument 'id'", failed.Message, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Theory]
    [InlineData("files/.{ext}", "{ ext: \".\" }", "'ext'")]
    [InlineData("files/{a}{b}/meta", "{ a: \".\", b: \".\" }", "'a', 'b'")]
    [InlineData("files/%2e{ext}", "{ ext: \".\" }", "'ext'")]
    public async Task ArgumentsThatMakeADotSegmentWithTheTemplate_AreRefused(string path, string args, string named)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}{{path}}", effect: read }
            """, args: args);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "invalid_args");
        Assert.Contains($"argument {named}", failed.Message, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Theory]
    [InlineData("%2e%2e")]
    [InlineData("%2E%2E")]
    [InlineData(".%2e")]
    [InlineData("%252e%252e")]
    [InlineData("../admin")]
    [InlineData("..%2Fadmin")]
    [InlineData("..\\\\admin")]
    [InlineData("..;")]
    [InlineData("\uFF0E\uFF0E")]
    [InlineData("...")]
    [InlineData(". .")]
    [InlineData("%u002e%u002e")]
    public async Task EncodedDotSegments_StayInsideTheirSegment(string id)
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}items/{id}/detail", effect: read }
            """, args: $"{{ id: \"{id}\" }}");

        var state = await h.RunAsync(await h.LoadAsync());

        Assert.True(state.Status == JobStatus.Completed, state.Reason);
        var value = id.Replace("\\\\", "\\", StringComparison.Ordinal);
        // The server decodes the path once and keeps %2F: the value arrives whole, as one segment under /items/.
        Assert.Equal("/items/" + value.Replace("/", "%2F", StringComparison.Ordinal) + "/detail", Assert.Single(server.Requests).Path);
    }

    // ---- 4. Answers too large to hold ----

    [Fact]
    public async Task A300MegabyteBody_FailsClearly_AndIsNotReadPastTheLimit()
    {
        const long size = 300L * 1024 * 1024;
        var written = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await RawLoopbackServer.StartAsync(async (head, stream, ct) => written.TrySetResult(await RawLoopbackServer.StreamJsonAsync(stream, size, ct)));
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              export.all: { kind: http, method: GET, url: "{{server.Address}}export", effect: read }
            """, tool: "export.all");

        var started = TimeProvider.System.GetTimestamp();
        var state = await h.RunAsync(await h.LoadAsync());
        var sent = await written.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var failed = await AssertFailedOnceAsync(h, state, "response_too_large");
        Assert.Contains("tool 'export.all'", failed.Message, StringComparison.Ordinal);
        Assert.Contains($"max_response_bytes: {ToolDefinition.DefaultMaxResponseBytes}", failed.Message, StringComparison.Ordinal);
        Assert.Contains($"sent more than {ToolDefinition.DefaultMaxResponseBytes} bytes", failed.Message, StringComparison.Ordinal);
        // The limit, what is drained before the connection is dropped, and what the sockets hold: far from 300 MB.
        Assert.True(sent < 32L * 1024 * 1024, $"the server wrote {sent} bytes before the client hung up");
        Assert.True(TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AnAnnouncedLengthOverTheLimit_IsRefusedBeforeTheBodyIsRead()
    {
        var hungUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            ctx.Response.ContentLength = 300L * 1024 * 1024;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.Body.WriteAsync("[1,2,3"u8.ToArray(), ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                hungUp.TrySetResult();
            }
        });
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}export", effect: read, max_response_bytes: 1000 }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "response_too_large");
        Assert.Contains("announced 314572800 bytes", failed.Message, StringComparison.Ordinal);
        Assert.Contains("max_response_bytes: 1000", failed.Message, StringComparison.Ordinal);
        await hungUp.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task ABodyJustOverASmallLimit_Fails_AndOneAtTheLimit_Passes()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            ctx.Response.ContentType = "application/json";
            var n = int.Parse(req.Query.TrimStart('?').Split('=')[1], System.Globalization.CultureInfo.InvariantCulture);
            return ctx.Response.WriteAsync("\"" + new string('x', n - 2) + "\"", ctx.RequestAborted); // Chunked: no length announced.
        });
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}sized", effect: read, max_response_bytes: 1000 }
            """, args: "{ n: \"${input.n}\" }");
        var wf = await h.LoadAsync();

        Assert.Equal(JobStatus.Completed, (await h.RunAsync(wf, new { n = 1000 })).Status);
        var failed = await AssertFailedOnceAsync(h, await h.RunAsync(wf, new { n = 1001 }), "response_too_large");
        Assert.Contains("sent more than 1000 bytes", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HugeResponseHeaders_FailTheCall_WithoutRetrying()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
        {
            ctx.Response.Headers["X-Padding"] = new string('a', 200 * 1024);
            return LoopbackServer.JsonAsync(ctx, 200, "{}");
        });
        await using var h = new GovernanceHarness();
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}x", effect: read, retry: { max_attempts: 3, backoff: 1ms } }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "response_too_large");
        Assert.Contains("headers", failed.Message, StringComparison.Ordinal);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task AnErrorAnswer_IsQuotedShort_AndRedacted()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) =>
            LoopbackServer.JsonAsync(ctx, 400, "bad key " + ApiKey + " " + new string('x', 2_000_000)));
        await using var h = new GovernanceHarness(Secrets());
        Project(h, $$"""
              t: { kind: http, method: GET, url: "{{server.Address}}x", headers: { X-Api-Key: "${secret:CRM_KEY}" }, effect: read }
            """);

        var state = await h.RunAsync(await h.LoadAsync());

        var failed = await AssertFailedOnceAsync(h, state, "http_400");
        Assert.Contains("bad key [REDACTED:CRM_KEY]", failed.Message, StringComparison.Ordinal);
        Assert.True(failed.Message.Length < 400, $"the message is {failed.Message.Length} characters long");
    }
}

using System.Net;
using System.Text.Json;
using Ordo.Workflows;

namespace Ordo.Server.Tests;

public sealed class ApiTests
{
    [Fact]
    public async Task Health_Readiness_AndOpenApi_NeedNoKey()
    {
        await using var api = await ApiFixture.StartAsync();
        Assert.Equal(HttpStatusCode.OK, (await api.Client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.Client.GetAsync("/readyz")).StatusCode);
        var openapi = await api.SendAsync(HttpMethod.Get, "/openapi/v1.json", null);
        Assert.Equal(200, openapi.Status);
        Assert.True(openapi.Json.GetProperty("paths").TryGetProperty("/v1/jobs", out _));
    }

    [Fact]
    public async Task MissingOrUnknownKey_Is401_AsProblemJson()
    {
        await using var api = await ApiFixture.StartAsync();
        var none = await api.SendAsync(HttpMethod.Get, "/v1/jobs", null);
        Assert.Equal(401, none.Status);
        Assert.Equal("application/problem+json", none.Response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(401, none.Json.GetProperty("status").GetInt32());
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, "/v1/jobs", "ordo_nope")).Status);
    }

    [Fact]
    public async Task RevokedKey_Is401()
    {
        await using var api = await ApiFixture.StartAsync();
        var key = await api.KeyAsync("acme", "vic");
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "/v1/jobs", key)).Status);
        var id = (await api.Store.ListApiKeysAsync("acme")).Single().KeyId;
        await api.Store.RevokeApiKeyAsync(id, DateTimeOffset.UnixEpoch);
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, "/v1/jobs", key)).Status);
    }

    [Fact]
    public async Task ConfiguredKeyHash_Authenticates_WithItsIdentity()
    {
        var key = Auth.ApiKeys.NewKey();
        await using var api = await ApiFixture.StartAsync(o => o.Tenants["initech"] = new Configuration.TenantDefinition
        {
            Name = "initech", Keys = [new Configuration.TenantApiKey("peter", Auth.ApiKeys.Hash(key))],
        });
        var job = await api.SubmitAsync(key, "hello");
        var got = await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}", key);
        Assert.Equal("peter", got.Json.GetProperty("submitter").GetString());
        Assert.Equal("initech", got.Json.GetProperty("tenant").GetString());
    }

    [Fact]
    public async Task KeyWithoutRole_Is403()
    {
        await using var api = await ApiFixture.StartAsync();
        var viewer = await api.KeyAsync("acme", "vic");
        Assert.Equal(403, (await api.SendAsync(HttpMethod.Post, "/v1/jobs", viewer, new { workflow = "hello" })).Status);
        Assert.Equal(403, (await api.SendAsync(HttpMethod.Get, "/v1/approvals", viewer)).Status);
        Assert.Equal(403, (await api.SendAsync(HttpMethod.Get, "/v1/kill-switches", viewer)).Status);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "/v1/workflows", viewer)).Status);
    }

    [Fact]
    public async Task Submit_RunsTheJob_AndGetShowsIt()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var (status, json, response) = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "hello@1", input = new { }, priority = 3 });
        Assert.Equal(201, status);
        var id = json.GetProperty("job_id").GetString()!;
        Assert.Equal($"/v1/jobs/{id}", response.Headers.Location!.ToString());
        var done = await api.WaitForStatusAsync(alice, id, "completed");
        Assert.Equal("hello@1", done.GetProperty("workflow").GetString());
        Assert.Equal("alice", done.GetProperty("submitter").GetString());
        Assert.Equal("succeeded", done.GetProperty("steps")[0].GetProperty("status").GetString());
        Assert.Equal(3, done.GetProperty("priority").GetInt32());
        Assert.False(done.GetProperty("audit").TryGetProperty("db", out _));
    }

    [Fact]
    public async Task Submit_SameIdempotencyKey_Returns200WithTheSameJob_AndCreatesNothing()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        void Key(HttpRequestMessage r) => r.Headers.Add("Idempotency-Key", "order-42");
        var first = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "hello" }, Key);
        var second = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "hello" }, Key);
        Assert.Equal(201, first.Status);
        Assert.Equal(200, second.Status);
        Assert.Equal(first.Json.GetProperty("job_id").GetString(), second.Json.GetProperty("job_id").GetString());
        Assert.Single(await api.Store.ListJobsAsync(new Storage.JobQuery { Tenant = "acme" }));
        // Another tenant with the same key gets its own job.
        var globex = await api.KeyAsync("globex", "gary");
        var other = await api.SendAsync(HttpMethod.Post, "/v1/jobs", globex, new { workflow = "hello" }, Key);
        Assert.Equal(201, other.Status);
        Assert.NotEqual(first.Json.GetProperty("job_id").GetString(), other.Json.GetProperty("job_id").GetString());
    }

    [Fact]
    public async Task Submit_InvalidInput_Is400_WithJsonPaths()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var missing = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { input = 5, priority = "high", extra = 1 });
        Assert.Equal(400, missing.Status);
        var errors = missing.Json.GetProperty("errors");
        Assert.True(errors.TryGetProperty("$.workflow", out _));
        Assert.True(errors.TryGetProperty("$.input", out _));
        Assert.True(errors.TryGetProperty("$.priority", out _));
        Assert.True(errors.TryGetProperty("$.extra", out _));
        var unknown = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "nope" });
        Assert.Equal(400, unknown.Status);
        var schema = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "typed", input = new { amount = "ten" } });
        Assert.Equal(400, schema.Status);
        Assert.Contains(schema.Json.GetProperty("errors").EnumerateObject(), e => e.Name.StartsWith("$.input", StringComparison.Ordinal));
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, "{not json")).Status);
        Assert.Empty(await api.Store.ListJobsAsync(new Storage.JobQuery()));
    }

    [Fact]
    public async Task BodyOver1MiB_Is413()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var big = JsonSerializer.Serialize(new { workflow = "hello", input = new { blob = new string('x', 1024 * 1024) } });
        Assert.Equal(413, (await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, big)).Status);
    }

    [Fact]
    public async Task OverTheKeysRateLimit_Is429_WithRetryAfter()
    {
        await using var api = await ApiFixture.StartAsync(o => o.RateLimitPermits = 3);
        var vic = await api.KeyAsync("acme", "vic");
        for (var i = 0; i < 3; i++) Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "/v1/jobs", vic)).Status);
        var limited = await api.SendAsync(HttpMethod.Get, "/v1/jobs", vic);
        Assert.Equal(429, limited.Status);
        Assert.NotNull(limited.Response.Headers.RetryAfter);
        // Another key has its own budget.
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Get, "/v1/jobs", await api.KeyAsync("acme", "olga"))).Status);
    }

    [Fact]
    public async Task ListJobs_FiltersAndPages()
    {
        await using var api = await ApiFixture.StartAsync(workers: false);
        var alice = await api.KeyAsync("acme", "alice");
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await api.SubmitAsync(alice, "hello"));
        await api.SubmitAsync(alice, "typed", new { amount = 1 });
        var page1 = await api.SendAsync(HttpMethod.Get, "/v1/jobs?workflow=hello&limit=2", alice);
        Assert.Equal(2, page1.Json.GetProperty("jobs").GetArrayLength());
        var cursor = page1.Json.GetProperty("next_cursor").GetString();
        var page2 = await api.SendAsync(HttpMethod.Get, $"/v1/jobs?workflow=hello&limit=2&cursor={cursor}", alice);
        Assert.Equal(1, page2.Json.GetProperty("jobs").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, page2.Json.GetProperty("next_cursor").ValueKind);
        var all = page1.Json.GetProperty("jobs").EnumerateArray().Concat(page2.Json.GetProperty("jobs").EnumerateArray()).Select(j => j.GetProperty("job_id").GetString()).ToList();
        Assert.Equal(ids.AsEnumerable().Reverse(), all);
        Assert.Equal(4, (await api.SendAsync(HttpMethod.Get, "/v1/jobs?status=queued", alice)).Json.GetProperty("jobs").GetArrayLength());
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Get, "/v1/jobs?status=bogus", alice)).Status);
    }

    [Fact]
    public async Task Events_AsJson_AndAfter()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var id = await api.SubmitAsync(alice, "hello");
        await api.WaitForStatusAsync(alice, id, "completed");
        var all = (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}/events", alice)).Json.GetProperty("events");
        Assert.Equal("JobSubmitted", all[0].GetProperty("type").GetString());
        Assert.Equal("JobCompleted", all[all.GetArrayLength() - 1].GetProperty("type").GetString());
        var after = (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}/events?after=2", alice)).Json.GetProperty("events");
        Assert.Equal(3, after[0].GetProperty("seq").GetInt64());
        Assert.Equal(all.GetArrayLength() - 2, after.GetArrayLength());
    }

    [Fact]
    public async Task Events_AsServerSentEvents_FollowTheJobUntilItEnds_AndResumeWithLastEventId()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var id = await api.SubmitAsync(alice, "hello");
        var events = await Sse.ReadAsync(api.Client, $"/v1/jobs/{id}/events", alice);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        Assert.Equal("JobCompleted", events[^1].Json.GetProperty("type").GetString());
        var resumed = await Sse.ReadAsync(api.Client, $"/v1/jobs/{id}/events", alice, lastEventId: 2);
        Assert.Equal(events.Skip(2).Select(e => e.Id), resumed.Select(e => e.Id));
    }

    [Fact]
    public async Task JobsAndApprovals_AsLiveLists_SendWhatChanges_AndOnlyTheCallersTenant()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var bob = await api.KeyAsync("acme", "bob");
        var carol = await api.KeyAsync("acme", "carol");
        var gary = await api.KeyAsync("globex", "gary");
        await using var waiting = await LiveStream.OpenAsync(api.Client, "/v1/jobs?status=waiting_approval", alice);
        await using var inbox = await LiveStream.OpenAsync(api.Client, "/v1/approvals?status=pending", bob);
        await using var others = await LiveStream.OpenAsync(api.Client, "/v1/jobs", gary);
        Assert.Equal("synced", (await waiting.NextAsync()).Name);
        Assert.Equal("synced", (await inbox.NextAsync()).Name);
        Assert.Equal("synced", (await others.NextAsync()).Name);

        var id = await api.SubmitAsync(alice, "payout");
        var listed = await waiting.UntilAsync((name, d) => name == "job");
        Assert.Equal((id, "waiting_approval", "alice"), (listed.GetProperty("job_id").GetString(), listed.GetProperty("status").GetString(), listed.GetProperty("submitter").GetString()));
        var pending = await inbox.UntilAsync((name, _) => name == "approval");
        Assert.Equal((id, 0), (pending.GetProperty("job_id").GetString(), pending.GetProperty("decided").GetInt32()));

        var approval = Uri.EscapeDataString(pending.GetProperty("approval_id").GetString()!);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", bob, new { decision = "approve" })).Status);
        Assert.Equal(1, (await inbox.UntilAsync((name, _) => name == "approval")).GetProperty("decided").GetInt32());
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", carol, new { decision = "approve" })).Status);
        Assert.Equal(id, (await inbox.UntilAsync((name, _) => name == "removed")).GetProperty("job_id").GetString());
        // The job left the filtered list when it stopped waiting.
        Assert.Equal(id, (await waiting.UntilAsync((name, _) => name == "removed")).GetProperty("job_id").GetString());

        // Another tenant's list never carried the job: the first job it sends is its own.
        var own = await api.SubmitAsync(gary, "hello");
        Assert.Equal(own, (await others.UntilAsync((name, _) => name == "job")).GetProperty("job_id").GetString());
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs?cursor={own}", gary, edit: r => r.Headers.Accept.ParseAdd("text/event-stream"))).Status);
    }

    [Fact]
    public async Task TwoPersonApproval_SubmitterRefused_TwoApproversContinueTheJob()
    {
        await using var api = await ApiFixture.StartAsync(o => o.Tenants["acme"] = o.Tenants["acme"] with
        {
            Roles = new Dictionary<string, IReadOnlyList<string>> { ["alice"] = ["submitter", "approver"], ["bob"] = ["approver"], ["carol"] = ["approver"], ["vic"] = ["viewer"] },
        });
        var alice = await api.KeyAsync("acme", "alice");
        var bob = await api.KeyAsync("acme", "bob");
        var carol = await api.KeyAsync("acme", "carol");
        var id = await api.SubmitAsync(alice, "payout");
        var waiting = await api.WaitForStatusAsync(alice, id, "waiting_approval");
        var approvalId = Uri.EscapeDataString(waiting.GetProperty("approvals")[0].GetProperty("id").GetString()!);

        var inbox = await api.SendAsync(HttpMethod.Get, "/v1/approvals?status=pending", bob);
        var item = Assert.Single(inbox.Json.GetProperty("approvals").EnumerateArray());
        Assert.Equal(id, item.GetProperty("job_id").GetString());
        Assert.Equal(2, item.GetProperty("count").GetInt32());
        Assert.Equal(0, item.GetProperty("decided").GetInt32());

        var self = await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approvalId}", alice, new { decision = "approve" });
        Assert.True(409 == self.Status, self.Json.ToString());
        Assert.Contains("submit", self.Json.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);

        var first = await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approvalId}", bob, new { decision = "approve", reason = "ok" });
        Assert.Equal(200, first.Status);
        Assert.Equal("pending", first.Json.GetProperty("status").GetString());
        Assert.Equal(409, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approvalId}", bob, new { decision = "approve" })).Status);
        var second = await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approvalId}", carol, new { decision = "approve" });
        Assert.Equal("approved", second.Json.GetProperty("status").GetString());
        await api.WaitForStatusAsync(alice, id, "completed");
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approvalId}", bob, new { decision = "maybe" })).Status);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/nope", bob, new { decision = "approve" })).Status);
    }

    [Fact]
    public async Task Cancel_OwnJobBySubmitter_AnyJobByOperator_OthersRefused()
    {
        await using var api = await ApiFixture.StartAsync(workers: false);
        var alice = await api.KeyAsync("acme", "alice");
        var olga = await api.KeyAsync("acme", "olga");
        var vic = await api.KeyAsync("acme", "vic");
        var mine = await api.SubmitAsync(alice, "hello");
        var second = await api.SubmitAsync(alice, "hello");
        Assert.Equal(403, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{mine}/cancel", vic, new { reason = "no" })).Status);
        var cancelled = await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{mine}/cancel", alice, new { reason = "changed my mind" });
        Assert.Equal(200, cancelled.Status);
        Assert.Equal("cancelled", cancelled.Json.GetProperty("status").GetString());
        Assert.Equal(409, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{mine}/cancel", alice)).Status);
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{second}/cancel", olga)).Status);
    }

    [Fact]
    public async Task KillSwitches_SetListClear()
    {
        await using var api = await ApiFixture.StartAsync();
        var olga = await api.KeyAsync("acme", "olga");
        var set = await api.SendAsync(HttpMethod.Put, "/v1/kill-switches/" + Uri.EscapeDataString("tool:web.*"), olga, new { reason = "outage" });
        Assert.Equal(200, set.Status);
        Assert.Equal("olga", set.Json.GetProperty("set_by").GetString());
        var list = await api.SendAsync(HttpMethod.Get, "/v1/kill-switches", olga);
        Assert.Equal("tool:web.*", Assert.Single(list.Json.GetProperty("kill_switches").EnumerateArray()).GetProperty("target").GetString());
        Assert.Equal(204, (await api.SendAsync(HttpMethod.Delete, "/v1/kill-switches/" + Uri.EscapeDataString("tool:web.*"), olga)).Status);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Delete, "/v1/kill-switches/" + Uri.EscapeDataString("tool:web.*"), olga)).Status);
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Put, "/v1/kill-switches/bogus", olga, new { })).Status);
    }

    [Fact]
    public async Task Workflows_ListsNameVersionDescription()
    {
        await using var api = await ApiFixture.StartAsync();
        var list = (await api.SendAsync(HttpMethod.Get, "/v1/workflows", await api.KeyAsync("acme", "vic"))).Json.GetProperty("workflows");
        var hello = list.EnumerateArray().Single(w => w.GetProperty("workflow").GetString() == "hello");
        Assert.Equal(1, hello.GetProperty("version").GetInt32());
        Assert.Equal("says hello", hello.GetProperty("description").GetString());
    }

    [Fact]
    public async Task KillSwitch_SetByOneTenant_StopsItsJobsOnly_AndIsNotSeenOrClearedByAnother()
    {
        await using var api = await ApiFixture.StartAsync();
        var olga = await api.KeyAsync("acme", "olga");
        var alice = await api.KeyAsync("acme", "alice");
        var gary = await api.KeyAsync("globex", "gary");
        var target = "/v1/kill-switches/" + Uri.EscapeDataString("workflow:hello");
        Assert.Equal(200, (await api.SendAsync(HttpMethod.Put, target, olga, new { reason = "acme only" })).Status);

        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/kill-switches", gary)).Json.GetProperty("kill_switches").EnumerateArray());
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Delete, target, gary)).Status);
        var acmeJob = await api.SubmitAsync(alice, "hello");
        var globexJob = await api.SubmitAsync(gary, "hello");
        Assert.Equal("completed", (await api.WaitForStatusAsync(gary, globexJob, "completed", "failed", "cancelled")).GetProperty("status").GetString());
        var stopped = await api.WaitForStatusAsync(alice, acmeJob, "completed", "failed", "cancelled");
        Assert.NotEqual("completed", stopped.GetProperty("status").GetString());
        Assert.Contains("workflow:hello", stopped.GetProperty("reason").GetString());

        // A switch set for every tenant on the server shows in each tenant's list, and no tenant can clear it.
        await api.Store.SetKillSwitchAsync(new KillSwitches.KillSwitch("tool:web.*", "outage", "ops", DateTimeOffset.UnixEpoch));
        var seen = (await api.SendAsync(HttpMethod.Get, "/v1/kill-switches", gary)).Json.GetProperty("kill_switches");
        Assert.Equal("all_tenants", Assert.Single(seen.EnumerateArray()).GetProperty("scope").GetString());
        Assert.Equal(409, (await api.SendAsync(HttpMethod.Delete, "/v1/kill-switches/" + Uri.EscapeDataString("tool:web.*"), gary)).Status);
        Assert.Equal(2, (await api.Store.ListKillSwitchesAsync()).Count);
    }

    [Fact]
    public async Task AnotherTenantsObjects_Are404_OnEveryPath_AndNeverListed()
    {
        await using var api = await ApiFixture.StartAsync(o => o.Tenants["acme"] = o.Tenants["acme"] with
        {
            Roles = new Dictionary<string, IReadOnlyList<string>> { ["alice"] = ["submitter"], ["bob"] = ["approver"], ["carol"] = ["approver"] },
        });
        var alice = await api.KeyAsync("acme", "alice");
        var job = await api.SubmitAsync(alice, "payout");
        var waiting = await api.WaitForStatusAsync(alice, job, "waiting_approval");
        var approvalId = Uri.EscapeDataString(waiting.GetProperty("approvals")[0].GetProperty("id").GetString()!);
        // globex has no roles map: its key holds every role, so nothing is refused for want of a role.
        var gary = await api.KeyAsync("globex", "gary");
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}", gary)).Status);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}/events", gary)).Status);
        using (var sse = api.Request(HttpMethod.Get, $"/v1/jobs/{job}/events", gary))
        {
            sse.Headers.Accept.ParseAdd("text/event-stream");
            Assert.Equal(HttpStatusCode.NotFound, (await api.Client.SendAsync(sse)).StatusCode);
        }

        Assert.Equal(404, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{job}/approvals/{approvalId}", gary, new { decision = "approve" })).Status);
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{job}/cancel", gary, new { reason = "x" })).Status);
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs?cursor={job}", gary)).Status);
        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/jobs", gary)).Json.GetProperty("jobs").EnumerateArray());
        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/approvals", gary)).Json.GetProperty("approvals").EnumerateArray());
        // The same idempotency key in another tenant cannot reach this tenant's job either.
        Assert.Equal("waiting_approval", (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}", alice)).Json.GetProperty("status").GetString());
        Assert.Equal(404, (await api.SendAsync(HttpMethod.Get, "/v1/jobs/not-a-job", gary)).Status);
        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/kill-switches", gary)).Json.GetProperty("kill_switches").EnumerateArray());

        // The metrics page is one for every tenant: no tenant's name is a label on it.
        var metrics = await api.Client.GetStringAsync("/metrics");
        Assert.Contains("ordo_jobs_submitted", metrics);
        Assert.DoesNotContain("acme", metrics);
        Assert.DoesNotContain("globex", metrics);
    }

    [Fact]
    public async Task Stats_CountTheTenantsJobsOnly_ForAViewer()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var vic = await api.KeyAsync("acme", "vic");
        var gary = await api.KeyAsync("globex", "gary");
        foreach (var id in new[] { await api.SubmitAsync(alice, "hello"), await api.SubmitAsync(alice, "hello") })
        {
            await api.WaitForStatusAsync(alice, id, "completed");
        }

        var globexJob = await api.SubmitAsync(gary, "hello");
        await api.WaitForStatusAsync(gary, globexJob, "completed");

        var (status, json, _) = await api.SendAsync(HttpMethod.Get, "/v1/stats?since=1h", vic);
        Assert.Equal(200, status);
        var hello = Assert.Single(json.GetProperty("workflows").EnumerateArray());
        Assert.Equal("hello", hello.GetProperty("workflow").GetString());
        Assert.Equal(2, hello.GetProperty("jobs").GetInt32());
        Assert.Equal(2, hello.GetProperty("completed").GetInt32());
        Assert.Equal(1.0, hello.GetProperty("success_rate").GetDouble());
        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/stats?workflow=payout", vic)).Json.GetProperty("workflows").EnumerateArray());
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Get, "/v1/stats?since=whenever", vic)).Status);
        var bare = await api.SendAsync(HttpMethod.Get, "/v1/stats?since=10", vic);
        Assert.Equal(400, bare.Status);
        Assert.Equal("application/problem+json", bare.Response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("a bare number has no unit", Assert.Single(bare.Json.GetProperty("errors").GetProperty("since").EnumerateArray()).GetString(), StringComparison.Ordinal);
        Assert.Equal("2020-01-01T00:00:00.250Z", (await api.SendAsync(HttpMethod.Get, "/v1/stats?since=2020-01-01T00:00:00.250Z", vic)).Json.GetProperty("since").GetString());
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, "/v1/stats", null)).Status);
    }

    [Fact]
    public async Task ByName_AFailingCanaryRollsItselfBack_AndReleasesShowsIt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), """
            releases:
              greet:
                stable: 1
                canary: { version: 2, share: 1.0, min_jobs: 1, rollback_when: { failure_rate: 0.5 } }
            """);
        File.WriteAllText(Path.Combine(dir, "greet-v1.yaml"), "ordo: 1\nworkflow: greet\nversion: 1\nsteps:\n  - { id: hi, transform: { set: { greeting: hi } } }\n");
        File.WriteAllText(Path.Combine(dir, "greet-v2.yaml"), "ordo: 1\nworkflow: greet\nversion: 2\nsteps:\n  - { id: hi, transform: { set: { greeting: hi } }, next: fail }\n");
        var v1 = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "greet-v1.yaml"));
        var v2 = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "greet-v2.yaml"));
        await using var api = await ApiFixture.StartAsync(o => { o.Workflows.Add(v1); o.Workflows.Add(v2); });
        var alice = await api.KeyAsync("acme", "alice");

        var first = await api.SubmitAsync(alice, "greet");
        var failed = await api.WaitForStatusAsync(alice, first, "failed", "completed");
        var second = await api.SubmitAsync(alice, "greet");
        var completed = await api.WaitForStatusAsync(alice, second, "failed", "completed");

        Assert.Equal(("greet@2", "failed"), (failed.GetProperty("workflow").GetString(), failed.GetProperty("status").GetString()));
        Assert.Equal(("greet@1", "completed"), (completed.GetProperty("workflow").GetString(), completed.GetProperty("status").GetString()));
        var (status, json, _) = await api.SendAsync(HttpMethod.Get, "/v1/releases", alice);
        Assert.Equal(200, status);
        var canary = Assert.Single(json.GetProperty("releases").EnumerateArray()).GetProperty("canary");
        Assert.Equal("rolled_back", canary.GetProperty("status").GetString());
        Assert.Equal(1.0, canary.GetProperty("failure_rate").GetDouble());
        Assert.Contains("failure_rate 1 is over its bound 0.5", canary.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ByName_AShadowJob_NamesItsProductionJob_InTheJobAndInTheList()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), "releases:\n  greet: { stable: 1, shadow: { version: 2 } }\n");
        File.WriteAllText(Path.Combine(dir, "greet-v1.yaml"), "ordo: 1\nworkflow: greet\nversion: 1\nsteps:\n  - { id: hi, transform: { set: { greeting: hi } } }\n");
        File.WriteAllText(Path.Combine(dir, "greet-v2.yaml"), "ordo: 1\nworkflow: greet\nversion: 2\nsteps:\n  - { id: hi, transform: { set: { greeting: hello } } }\n");
        var v1 = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "greet-v1.yaml"));
        var v2 = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "greet-v2.yaml"));
        await using var api = await ApiFixture.StartAsync(o => { o.Workflows.Add(v1); o.Workflows.Add(v2); }, workers: false);
        var alice = await api.KeyAsync("acme", "alice");

        var production = await api.SubmitAsync(alice, "greet");

        var listed = (await api.SendAsync(HttpMethod.Get, "/v1/jobs", alice)).Json.GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(2, listed.Count);
        var shadow = Assert.Single(listed, j => j.GetProperty("shadow").GetBoolean());
        Assert.Equal("greet@2", shadow.GetProperty("workflow").GetString());
        Assert.False(Assert.Single(listed, j => j.GetProperty("job_id").GetString() == production).GetProperty("shadow").GetBoolean());
        var job = (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{shadow.GetProperty("job_id").GetString()}", alice)).Json;
        Assert.Equal(production, job.GetProperty("shadow_of").GetString());
        Assert.Equal(JsonValueKind.Null, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{production}", alice)).Json.GetProperty("shadow_of").ValueKind);
    }

    [Theory]
    [InlineData("greet: { stable: 42 }", "releases.greet.stable", "the stable version of 'greet' is version 42, which does not exist (versions found: 1)")]
    [InlineData("greet: { stable: 1, canary: { version: 9, share: 1.0 } }", "releases.greet.canary.version", "the canary of 'greet' is version 9, which does not exist (versions found: 1)")]
    [InlineData("greet: { shadow: { version: 9 } }", "releases.greet.shadow.version", "the shadow of 'greet' is version 9, which does not exist (versions found: 1)")]
    public async Task ByName_AReleaseOfAVersionThatIsNotRegistered_IsA422ProblemNamingItsKey_AndCreatesNothing(string release, string path, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), "releases:\n  " + release + "\n");
        File.WriteAllText(Path.Combine(dir, "greet-v1.yaml"), "ordo: 1\nworkflow: greet\nversion: 1\nsteps:\n  - { id: hi, transform: { set: { greeting: hi } } }\n");
        var v1 = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "greet-v1.yaml"));
        await using var api = await ApiFixture.StartAsync(o => o.Workflows.Add(v1), workers: false);
        var alice = await api.KeyAsync("acme", "alice");

        var refused = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "greet" });

        Assert.Equal(422, refused.Status);
        Assert.Equal("application/problem+json", refused.Response.Content.Headers.ContentType!.MediaType);
        Assert.Equal($"{path}: {message}", Assert.Single(refused.Json.GetProperty("errors").GetProperty("$.workflow").EnumerateArray()).GetString());
        Assert.Contains("ordo.yaml: " + path, refused.Json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(dir, refused.Json.ToString(), StringComparison.Ordinal);
        Assert.Empty(await api.Store.ListJobsAsync(new Storage.JobQuery()));
        // A version pinned by the caller does not go through the release.
        Assert.Equal(201, (await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "greet@1" })).Status);
    }
}

/// <summary>Bodies, paths and streams that a careless or hostile client sends.</summary>
public sealed class HostileRequestTests
{
    [Theory]
    [InlineData("{\"workflow\":\"hello\",\"input\":{\"name\":\"\\ud800\"}}", "$.input.name")]
    [InlineData("{\"workflow\":\"hello\",\"workflow\":\"payout\"}", "$.workflow")]
    [InlineData("{\"workflow\":\"hello\",\"input\":{\"n\":1e400}}", "$.input.n")]
    public async Task Submit_UnclearText_IsA400NamingThePath_AndCreatesNothing(string body, string path)
    {
        await using var api = await ApiFixture.StartAsync(workers: false);
        var alice = await api.KeyAsync("acme", "alice");
        var r = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, body);
        Assert.True(r.Status == 400, r.Json.ToString());
        Assert.True(r.Json.GetProperty("errors").TryGetProperty(path, out _), r.Json.ToString());
        Assert.Empty(await api.Store.ListJobsAsync(new Storage.JobQuery()));
    }

    [Fact]
    public async Task Bodies_NotUtf8_UnknownProperties_WrongTypes_OrOverlongReasons_Are400()
    {
        await using var api = await ApiFixture.StartAsync();
        var olga = await api.KeyAsync("acme", "olga");
        var alice = await api.KeyAsync("acme", "alice");
        using (var raw = api.Request(HttpMethod.Post, "/v1/jobs", alice))
        {
            raw.Content = new ByteArrayContent([.. "{\"workflow\":\"hel"u8, 0xff, 0xfe, .. "lo\"}"u8]);
            raw.Content.Headers.ContentType = new("application/json");
            var response = await api.Client.SendAsync(raw);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("UTF-8", await response.Content.ReadAsStringAsync());
        }

        var target = "/v1/kill-switches/" + Uri.EscapeDataString("tool:x");
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Put, target, olga, new { reason = 5 })).Status);
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Put, target, olga, new { reason = new string('r', 2001) })).Status);
        var unknown = await api.SendAsync(HttpMethod.Put, target, olga, new { reason = "x", scope = "global" });
        Assert.True(unknown.Json.GetProperty("errors").TryGetProperty("$.scope", out _));
        Assert.Empty(await api.Store.ListKillSwitchesAsync());
        var id = await api.SubmitAsync(alice, "hello");
        Assert.Equal(400, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/cancel", alice, "{\"reason\":\"\\udc00x\"}")).Status);
        var twice = await api.SendAsync(HttpMethod.Post, "/v1/jobs", alice, new { workflow = "hello" }, r => r.Headers.TryAddWithoutValidation("Idempotency-Key", ["a", "b"]));
        Assert.Equal(400, twice.Status);
    }

    [Fact]
    public async Task UnknownV1Paths_NeedAKey_ThenAre404Problems_AndBadQueryValuesAre400Problems()
    {
        await using var api = await ApiFixture.StartAsync(workers: false);
        var vic = await api.KeyAsync("acme", "vic");
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, "/v1/nothing/here", null)).Status);
        var missing = await api.SendAsync(HttpMethod.Get, "/v1/nothing/here", vic);
        Assert.Equal(404, missing.Status);
        Assert.Equal("application/problem+json", missing.Response.Content.Headers.ContentType!.MediaType);
        foreach (var limit in new[] { "abc", "99999999999", "0" })
        {
            var bad = await api.SendAsync(HttpMethod.Get, $"/v1/jobs?limit={limit}", vic);
            Assert.Equal(400, bad.Status);
            Assert.True(bad.Json.GetProperty("errors").TryGetProperty("limit", out _));
        }
    }

    [Fact]
    public async Task AnApprovalForOperators_IsInTheirInboxAndDecidedByThem_NotByApprovers()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var bob = await api.KeyAsync("acme", "bob");
        var olga = await api.KeyAsync("acme", "olga");
        var id = await api.SubmitAsync(alice, "ops");
        var waiting = await api.WaitForStatusAsync(alice, id, "waiting_approval");
        var approval = Uri.EscapeDataString(waiting.GetProperty("approvals")[0].GetProperty("id").GetString()!);
        Assert.Empty((await api.SendAsync(HttpMethod.Get, "/v1/approvals", bob)).Json.GetProperty("approvals").EnumerateArray());
        Assert.Single((await api.SendAsync(HttpMethod.Get, "/v1/approvals", olga)).Json.GetProperty("approvals").EnumerateArray());
        Assert.Equal(403, (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", bob, new { decision = "approve" })).Status);
        Assert.Equal("approved", (await api.SendAsync(HttpMethod.Post, $"/v1/jobs/{id}/approvals/{approval}", olga, new { decision = "approve" })).Json.GetProperty("status").GetString());
        await api.WaitForStatusAsync(alice, id, "completed");
    }

    [Fact]
    public async Task ARevokedKeysOpenStreams_End()
    {
        await using var api = await ApiFixture.StartAsync();
        var alice = await api.KeyAsync("acme", "alice");
        var id = await api.SubmitAsync(alice, "payout");
        await api.WaitForStatusAsync(alice, id, "waiting_approval");
        // Both streams are open (their first event read) before the key is revoked.
        await using var events = await LiveStream.OpenAsync(api.Client, $"/v1/jobs/{id}/events", alice);
        await events.UntilAsync((_, _) => true);
        await using var list = await LiveStream.OpenAsync(api.Client, "/v1/jobs", alice);
        Assert.Equal(id, (await list.UntilAsync((name, _) => name == "job")).GetProperty("job_id").GetString());

        var keyId = (await api.Store.ListApiKeysAsync("acme")).Single().KeyId;
        await api.Store.RevokeApiKeyAsync(keyId, DateTimeOffset.UnixEpoch);
        // Both streams end although the job still waits for its approvals.
        var completed = false;
        await Assert.ThrowsAsync<EndOfStreamException>(() => events.UntilAsync((_, e) =>
        {
            completed |= e.TryGetProperty("type", out var type) && type.GetString() == "JobCompleted";
            return false;
        }));
        Assert.False(completed);
        await Assert.ThrowsAsync<EndOfStreamException>(() => list.UntilAsync((_, _) => false));
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, $"/v1/jobs/{id}", alice)).Status);
    }
}

/// <summary>Keys configured in ordo.yaml.</summary>
public sealed class ConfiguredKeyTests
{
    [Fact]
    public async Task OneKeyHash_UnderTwoTenants_IsAConfigError_NamingBoth()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-keys-config", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var hash = Auth.ApiKeys.Hash(Auth.ApiKeys.NewKey());
        File.WriteAllText(Path.Combine(dir, "ordo.yaml"), $"tenants:\n  acme: {{ api_keys: [\"{hash}\"] }}\n  globex: {{ api_keys: [\"{hash}\"] }}\n");
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => Workflows.WorkflowLoader.LoadProjectAsync(Path.Combine(dir, "ordo.yaml"), null, CancellationToken.None));
        Assert.Contains(e.Problems, p => p.Message.Contains("'acme' and 'globex'", StringComparison.Ordinal));
        Directory.Delete(dir, true);
    }
}

using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Ordo.Dashboard.Tests;

/// <summary>The dashboard in a real browser against a real server: sign-in, live jobs, a job's steps, approvals, kill switches.</summary>
public sealed partial class DashboardTests(DashboardFixture server) : IClassFixture<DashboardFixture>
{
    [Fact]
    public async Task Root_ServesTheDashboard_WithACspThatAllowsNoInlineScript()
    {
        using var response = await server.Http.GetAsync("/");
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        var html = await response.Content.ReadAsStringAsync();
        Assert.DoesNotMatch(InlineScript(), html);
        using var script = await server.Http.GetAsync("/dashboard/app.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType!.MediaType);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await server.Http.GetAsync("/dashboard/nope.js")).StatusCode);
    }

    [Fact]
    public async Task UnknownKey_IsRefused_AndTheKeyNeverReachesTheUrl()
    {
        var context = await server.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.BaseAddress.ToString() });
        await using var _ = context;
        var page = await context.NewPageAsync();
        var urls = new List<string>();
        page.Request += (_, r) => urls.Add(r.Url);
        await page.GotoAsync("/");
        await DashboardFixture.ScreenshotAsync(page, "sign-in");
        await page.GetByTestId("api-key-input").FillAsync("ordo_not-a-key");
        await page.GetByTestId("api-key-submit").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert).Filter(new LocatorFilterOptions { HasText = "does not accept" })).ToBeVisibleAsync();
        await Expect(page.GetByTestId("nav-jobs")).ToBeHiddenAsync();
        Assert.Equal("password", await page.GetByTestId("api-key-input").GetAttributeAsync("type"));
        Assert.DoesNotContain(urls, u => u.Contains("ordo_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task JobsPage_ShowsASubmittedJob_ReachingCompleted_WithoutReload()
    {
        var (context, page, errors) = await server.SignInAsync("alice");
        await using var _ = context;
        await page.GetByTestId("nav-jobs").ClickAsync();
        await page.EvaluateAsync("() => { window.__sameDocument = true; }");
        // A job that waits for two approvers: its row appears waiting, then changes in place when it completes.
        var job = await server.SubmitAsync("alice", "payout");
        var row = page.Locator($"[data-testid=job-row][data-job-id='{job}']");
        await Expect(row.GetByTestId("job-status")).ToHaveTextAsync("waiting_approval");
        var approval = await PendingApprovalAsync(job);
        foreach (var who in new[] { "bob", "carol" })
        {
            Assert.Equal(200, (await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{job}/approvals/{Uri.EscapeDataString(approval)}", who, new { decision = "approve" })).Status);
        }

        await Expect(row.GetByTestId("job-status")).ToHaveTextAsync("completed");
        var hello = await server.SubmitAsync("alice", "hello");
        await Expect(page.Locator($"[data-testid=job-row][data-job-id='{hello}'] [data-testid=job-status]")).ToHaveTextAsync("completed");
        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"), "the page was reloaded");
        // The filters narrow the list.
        await page.Locator("#filter-workflow").SelectOptionAsync("hello@1");
        await Expect(page.Locator($"[data-testid=job-row][data-job-id='{job}']")).ToHaveCountAsync(0);
        await Expect(page.Locator($"[data-testid=job-row][data-job-id='{hello}']")).ToHaveCountAsync(1);
        await page.Locator("#filter-workflow").SelectOptionAsync("");
        await Expect(row).ToHaveCountAsync(1);
        await DashboardFixture.ScreenshotAsync(page, "jobs");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task JobPage_ShowsTheStepsInOrder_TheGraph_AndTheTimeline()
    {
        var job = await server.SubmitAsync("alice", "hello");
        await server.WaitForStatusAsync("alice", job, "completed");
        var (context, page, errors) = await server.SignInAsync("alice");
        await using var _ = context;
        await page.Locator($"[data-testid=job-row][data-job-id='{job}'] a").ClickAsync();
        await Expect(page.GetByTestId("step-row")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("step-row").Nth(0)).ToContainTextAsync("greet");
        await Expect(page.GetByTestId("step-row").Nth(1)).ToContainTextAsync("sign");
        await Expect(page.GetByTestId("step-row").Nth(0).GetByTestId("step-status")).ToHaveTextAsync("succeeded");
        await Expect(page.GetByTestId("job-status")).ToHaveTextAsync("completed");
        // The server's drawing, inline: the start, both steps with their status in words and as a class, the end; the path taken.
        var graph = page.GetByTestId("job-graph");
        await Expect(graph).ToBeVisibleAsync();
        await Expect(graph).ToHaveAttributeAsync("role", "img");
        await Expect(graph.Locator("g.node")).ToHaveCountAsync(4);
        foreach (var step in new[] { "greet", "sign" })
        {
            var node = graph.Locator($"g.node[data-step-id='{step}']");
            await Expect(node).ToContainTextAsync(step);
            await Expect(node).ToContainTextAsync("status: succeeded · 1 attempt");
            await Expect(node).ToHaveClassAsync(new Regex(@"\bs-succeeded\b"));
        }

        await Expect(graph.Locator("g.node[data-node='end']")).ToContainTextAsync("completed");
        await Expect(graph.Locator("g.edge.taken")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("event-row").First).ToBeVisibleAsync();
        await Expect(page.Locator("section, main").First).Not.ToContainTextAsync("[object");
        await Expect(page.GetByRole(AriaRole.Heading, new PageGetByRoleOptions { Name = "Tool calls" })).ToBeVisibleAsync();
        await Expect(page.Locator("#live-status")).ToContainTextAsync("ended");
        await DashboardFixture.ScreenshotAsync(page, "job");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task JobPage_FollowsAWaitingJob_Live_UntilItCompletes()
    {
        var job = await server.SubmitAsync("alice", "payout");
        await server.WaitForStatusAsync("alice", job, "waiting_approval");
        var (context, page, errors) = await server.SignInAsync("alice");
        await using var _ = context;
        await page.GotoAsync($"/#/jobs/{job}");
        await Expect(page.GetByTestId("job-status")).ToHaveTextAsync("waiting_approval");
        var ok = page.GetByTestId("job-graph").Locator("g.node[data-step-id='ok']");
        await Expect(ok).ToContainTextAsync("status: waiting approval");
        await Expect(page.GetByTestId("job-graph").Locator("g.node[data-step-id='done']")).ToContainTextAsync("status: not run");
        var approval = await PendingApprovalAsync(job);
        foreach (var who in new[] { "bob", "carol" })
        {
            await server.SendAsync(HttpMethod.Post, $"/v1/jobs/{job}/approvals/{Uri.EscapeDataString(approval)}", who, new { decision = "approve", reason = "checked" });
        }

        await Expect(page.GetByTestId("job-status")).ToHaveTextAsync("completed");
        await Expect(page.GetByTestId("step-row")).ToHaveCountAsync(3);
        // The graph is drawn again as the job moves on.
        await Expect(ok).ToContainTextAsync("status: succeeded");
        await Expect(page.GetByTestId("job-graph").Locator("g.node[data-step-id='done']")).ToContainTextAsync("status: succeeded");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task Approvals_TheSubmitterIsRefused_AndTwoApproversComplete()
    {
        var job = await server.SubmitAsync("alice", "payout");
        await server.WaitForStatusAsync("alice", job, "waiting_approval");
        var row = (IPage p) => p.Locator($"[data-testid=approval-row][data-job-id='{job}']");

        var (aliceContext, alice, aliceErrors) = await server.SignInAsync("alice");
        await using (aliceContext)
        {
            await alice.GetByTestId("nav-approvals").ClickAsync();
            await row(alice).GetByTestId("reason-input").FillAsync("my own");
            await row(alice).GetByTestId("approve-button").ClickAsync();
            await Expect(row(alice).GetByTestId("decision-message")).ToContainTextAsync("Refused (409)");
        }

        foreach (var (who, reason) in new[] { ("bob", "limits checked"), ("carol", "second look") })
        {
            var (context, page, errors) = await server.SignInAsync(who);
            await using (context)
            {
                await page.GetByTestId("nav-approvals").ClickAsync();
                await row(page).GetByTestId("reason-input").FillAsync(reason);
                if (who == "bob") await DashboardFixture.ScreenshotAsync(page, "approvals");
                await row(page).GetByTestId("approve-button").ClickAsync();
                await Expect(row(page).GetByTestId("decision-message")).ToContainTextAsync("Recorded: approve");
                Assert.True(errors.Count == 0, string.Join("\n", errors));
            }
        }

        Assert.Equal("completed", await server.WaitForStatusAsync("alice", job, "completed"));
        Assert.DoesNotContain(aliceErrors, e => !e.Contains("409", StringComparison.Ordinal));
    }

    [Fact]
    public async Task KillSwitches_SetAndRemove()
    {
        var (context, page, errors) = await server.SignInAsync("olga");
        await using var _ = context;
        await page.GetByTestId("nav-kill-switches").ClickAsync();
        await page.GetByTestId("kill-target-input").FillAsync("tool:web.fetch");
        await page.GetByTestId("kill-reason-input").FillAsync("runaway crawler");
        await page.GetByTestId("kill-set-button").ClickAsync();
        var row = page.Locator("[data-testid=kill-switch-row][data-target='tool:web.fetch']");
        await Expect(row).ToContainTextAsync("runaway crawler");
        await Expect(row).ToContainTextAsync("olga");
        var (_, listed) = await server.SendAsync(HttpMethod.Get, "/v1/kill-switches", "olga");
        Assert.Contains(listed.GetProperty("kill_switches").EnumerateArray(), s => s.GetProperty("target").GetString() == "tool:web.fetch");
        await DashboardFixture.ScreenshotAsync(page, "kill-switches");
        await row.GetByTestId("kill-clear-button").ClickAsync();
        await Expect(row).ToHaveCountAsync(0);
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task Stats_ShowTheServersFigures_PerVersionAndAgent_AndARolledBackCanary()
    {
        await server.WaitForStatusAsync("alice", await server.SubmitAsync("alice", "hello"), "completed");
        // Jobs of triage by name until its canary (whose answers break the label's contract) has rolled itself back.
        for (var i = 0; i < 40 && await CanaryStatusAsync() == "active"; i++)
        {
            var job = await server.SubmitAsync("alice", "triage");
            var (_, state) = await server.SendAsync(HttpMethod.Get, $"/v1/jobs/{job}", "alice");
            await server.WaitForStatusAsync("alice", job, state.GetProperty("workflow").GetString() == "triage@2" ? "failed" : "completed");
        }

        Assert.Equal("rolled_back", await CanaryStatusAsync());
        var (context, page, errors) = await server.SignInAsync("alice");
        await using var _ = context;
        await page.GetByTestId("nav-stats").ClickAsync();
        await Expect(page.GetByText("ordo stats")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("stats-row").Filter(new LocatorFilterOptions { HasText = "hello@1" })).ToHaveCountAsync(1);
        var canary = page.GetByTestId("stats-row").Filter(new LocatorFilterOptions { HasText = "triage@2" });
        await Expect(canary).ToHaveCountAsync(1);
        await Expect(canary).ToContainTextAsync("100.0%");
        await Expect(page.GetByTestId("stats-agent-row").Filter(new LocatorFilterOptions { HasText = "classifier_next@2" })).ToContainTextAsync("sha256:");
        await Expect(page.GetByTestId("release-canary")).ToContainTextAsync("2: rolled back at");
        await Expect(page.GetByTestId("release-canary")).ToContainTextAsync("gate_rejection_rate 1 is over its bound 0.25");
        await DashboardFixture.ScreenshotAsync(page, "stats");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    private async Task<string?> CanaryStatusAsync()
    {
        var (status, json) = await server.SendAsync(HttpMethod.Get, "/v1/releases", "alice");
        Assert.Equal(200, status);
        return json.GetProperty("releases").EnumerateArray().Single(r => r.GetProperty("workflow").GetString() == "triage").GetProperty("canary").GetProperty("status").GetString();
    }

    private async Task<string> PendingApprovalAsync(string job)
    {
        for (var i = 0; i < 100; i++)
        {
            var (_, json) = await server.SendAsync(HttpMethod.Get, "/v1/approvals", "bob");
            foreach (var a in json.GetProperty("approvals").EnumerateArray())
            {
                if (a.GetProperty("job_id").GetString() == job) return a.GetProperty("approval_id").GetString()!;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"job {job} has no pending approval");
    }

    [GeneratedRegex("<script(?![^>]*\\bsrc=)[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex InlineScript();
}

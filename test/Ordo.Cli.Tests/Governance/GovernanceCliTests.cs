using System.Text;
using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;

namespace Ordo.Cli.Tests.Governance;

/// <summary>Policies, approvals, budgets, kill switches and secrets through the ordo command, with real HTTP dependencies.</summary>
public sealed class GovernanceCliTests
{
    private static void WriteProject(Workspace w, Uri server, string policies, string constraints = "", string tenants = "", string headers = "")
    {
        w.Write("ordo.yaml", $"""
            tools: [tools.yaml]
            policies: [policies.yaml]
            {tenants}
            """);
        w.Write("policies.yaml", policies);
        w.Write("tools.yaml", $$"""
            tools:
              ledger.post:
                kind: http
                url: "{{server}}post"
                effect: write
                {{headers}}
                args: { type: object, required: [lines], properties: { lines: { type: array } } }
            """);
        w.Write("post.yaml", $$"""
            ordo: 1
            workflow: post-lines
            version: 1
            constraints: { no_web: true {{constraints}} }
            steps:
              - { id: post, tool: ledger.post, args: { lines: "${ input.lines }" } }
            """);
        w.Write("input.json", """{ "lines": [1, 2, 3] }""");
    }

    [Fact]
    public async Task DenyRule_ExitsThree_WithTheRuleIdInTheReason()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        using var w = Workspace.Create();
        WriteProject(w, server.Address, """
            policy: acme-prod
            version: 7
            rules:
              - { id: no-big-postings, on: tool_call, when: "args.lines.length > 2", effect: deny, reason: "too many lines" }
            """);
        var run = await CliRunner.RunExpectingAsync(3, "run", w.PathOf("post.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db, "--json");
        var json = run.Json();
        Assert.Equal("failed", json.GetProperty("status").GetString());
        Assert.Contains("no-big-postings", json.GetProperty("reason").GetString());
        Assert.Empty(server.Requests);
        var events = await CliRunner.RunExpectingAsync(0, "events", json.GetProperty("job_id").GetString()!, "--db", w.Db, "--json");
        var decision = events.JsonLines().Single(e => e.GetProperty("type").GetString() == "PolicyDecision");
        Assert.Equal("acme-prod@7", decision.GetProperty("policy").GetString());
        Assert.Equal("no-big-postings", decision.GetProperty("payload").GetProperty("rule").GetString());
    }

    [Fact]
    public async Task RequireApproval_ExitsFour_ThenApproveAndResumeComplete()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"posted":true}"""));
        using var w = Workspace.Create();
        WriteProject(w, server.Address, """
            policy: acme-prod
            version: 7
            rules:
              - { id: approve-postings, on: tool_call, when: "tool.name == 'ledger.post'", effect: require_approval, approval: { role: approver } }
            """, tenants: """
            tenants:
              default: { roles: { bob: [approver], eve: [viewer] } }
            """);
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("post.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db, "--json", "--as", "alice");
        var json = run.Json();
        Assert.Equal("waiting_approval", json.GetProperty("status").GetString());
        var approval = json.GetProperty("approvals").EnumerateArray().Single();
        Assert.Equal("pending", approval.GetProperty("status").GetString());
        Assert.Equal("post", approval.GetProperty("step").GetString());
        var job = json.GetProperty("job_id").GetString()!;
        Assert.Empty(server.Requests);

        var self = await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "alice");
        Assert.Contains("may not approve", self.Err);
        var noRole = await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "eve");
        Assert.Contains("does not hold role 'approver'", noRole.Err);
        var approve = await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "bob", "--reason", "checked");
        Assert.Contains("approved", approve.Out);
        var resumed = await CliRunner.RunExpectingAsync(0, "resume", job, "--db", w.Db, "--json");
        Assert.Equal("completed", resumed.Json().GetProperty("status").GetString());
        Assert.Equal("approved", resumed.Json().GetProperty("approvals")[0].GetProperty("status").GetString());
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task BudgetOverrun_ExitsThree_WithBudgetExceeded()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        using var w = Workspace.Create();
        WriteProject(w, server.Address, "policy: p\nversion: 1\nrules: []\n", constraints: ", max_tool_calls: 0");
        var run = await CliRunner.RunExpectingAsync(3, "run", w.PathOf("post.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db);
        Assert.Contains("budget exceeded", run.Out);
        var job = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json()[0].GetProperty("job_id").GetString()!;
        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines();
        var exceeded = events.Single(e => e.GetProperty("type").GetString() == "BudgetExceeded").GetProperty("payload");
        Assert.Equal("tool_calls", exceeded.GetProperty("budget").GetString());
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task KillSwitch_SetFromAnotherProcess_StopsARunningJob_ExitFive()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, "{}"));
        using var w = Workspace.Create();
        w.Write("ordo.yaml", $"""
            tools: [tools.yaml]
            plugins: ["{TestPaths.TestPluginDll}"]
            """);
        w.Write("tools.yaml", $$"""
            tools:
              ledger.post: { kind: http, url: "{{server.Address}}post", effect: write }
            """);
        w.Write("slow.yaml", """
            ordo: 1
            workflow: slow-then-post
            version: 1
            agents:
              sleeper: { kind: code, type: Ordo.TestPlugins.Sleeper }
            steps:
              - { id: sleep, agent: sleeper, input: { ms: 3000 }, next: post }
              - { id: post, tool: ledger.post }
            """);
        using var run = OrdoProcess.Start(w.Root, "run", "slow.yaml", "--db", w.Db);
        Assert.True(await run.WaitForOutputAsync(lines => lines.Any(l => l.Contains("running job", StringComparison.Ordinal)), TimeSpan.FromSeconds(60)), run.Err);
        await CliRunner.RunExpectingAsync(0, "kill", "set", "tool:ledger.*", "--reason", "maintenance", "--db", w.Db, "--as", "ops");
        var list = await CliRunner.RunExpectingAsync(0, "kill", "list", "--db", w.Db, "--json");
        Assert.Equal("tool:ledger.*", list.Json()[0].GetProperty("target").GetString());
        Assert.Equal(5, await run.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Empty(server.Requests);
        var job = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json()[0];
        Assert.Equal("cancelled", job.GetProperty("status").GetString());
        var events = (await CliRunner.RunExpectingAsync(0, "events", job.GetProperty("job_id").GetString()!, "--db", w.Db, "--json")).JsonLines();
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "KillSwitchTriggered" && e.GetProperty("payload").GetProperty("reason").GetString() == "maintenance");
        await CliRunner.RunExpectingAsync(0, "kill", "clear", "tool:ledger.*", "--db", w.Db);
        Assert.Equal(0, (await CliRunner.RunExpectingAsync(0, "kill", "list", "--db", w.Db, "--json")).Json().GetArrayLength());
        await CliRunner.RunExpectingAsync(2, "kill", "set", "nonsense", "--db", w.Db);
    }

    [Fact]
    public async Task Secret_AppearsNowhereOutsideTheGateway_EvenWhenTheDependencyEchoesIt()
    {
        var name = "ORDO_TEST_TOKEN_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var secret = "tok-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, secret);
        try
        {
            await using var server = await LoopbackServer.StartAsync((ctx, req) =>
            {
                if (req.Path == "/post" && req.Headers.GetValueOrDefault("Authorization") != "Bearer " + secret)
                {
                    return LoopbackServer.JsonAsync(ctx, 401, "{}");
                }

                // A careless dependency: it echoes the credential, in the body and in an error message.
                return LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new { accepted = true, auth = req.Headers["Authorization"], hint = $"token={secret}" }));
            });
            using var w = Workspace.Create();
            WriteProject(w, server.Address, "policy: p\nversion: 1\nrules: []\n", headers: $$"""headers: { Authorization: "Bearer ${secret:{{name}}}" }""");
            var outputs = new StringBuilder();
            async Task<CliResult> Ordo(int code, params string[] args)
            {
                var r = await CliRunner.RunExpectingAsync(code, args);
                outputs.Append(r.Out).Append(r.Err);
                return r;
            }

            var run = await Ordo(0, "run", w.PathOf("post.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db, "--json");
            var job = run.Json().GetProperty("job_id").GetString()!;
            await Ordo(0, "run", w.PathOf("post.yaml"), "--input", w.PathOf("input.json"), "--db", w.Db);
            await Ordo(0, "events", job, "--db", w.Db, "--json");
            await Ordo(0, "events", job, "--db", w.Db);
            await Ordo(0, "show", job, "--db", w.Db, "--json");
            await Ordo(0, "show", job, "--db", w.Db);
            await Ordo(0, "jobs", "--db", w.Db, "--json");
            await Ordo(0, "audit", "verify", "--db", w.Db);

            Assert.Equal("Bearer " + secret, server.Requests[0].Headers["Authorization"]);
            Assert.Contains("[REDACTED:" + name + "]", outputs.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(secret, outputs.ToString(), StringComparison.Ordinal);
            foreach (var file in Directory.EnumerateFiles(w.Root, "ordo.db*"))
            {
                var bytes = await File.ReadAllBytesAsync(file);
                Assert.False(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)) >= 0, $"{file} holds the secret");
                Assert.False(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(secret)))) >= 0, $"{file} holds the secret in Base64");
            }

            foreach (var log in Directory.Exists(w.PathOf("logs")) ? Directory.EnumerateFiles(w.PathOf("logs")) : [])
            {
                Assert.DoesNotContain(secret, await File.ReadAllTextAsync(log), StringComparison.Ordinal);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }
}

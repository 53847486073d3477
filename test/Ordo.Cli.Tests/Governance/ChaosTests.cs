using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Ordo.Cli.Tests.TestSupport;
using Ordo.TestServers;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Governance;

/// <summary>
/// A dependency that times out, fails and answers garbage, then recovers — and processes killed in the middle of
/// side effects. The dependency applies each Idempotency-Key's effect once, like a well-behaved API.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    private static int Scale => int.TryParse(Environment.GetEnvironmentVariable("ORDO_TORTURE_SCALE"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 1;

    /// <summary>An idempotent dependency whose health the test controls.</summary>
    private sealed class Dependency
    {
        public volatile bool Down = true;
        public int Served;
        public ConcurrentDictionary<string, int> Effects { get; } = new(StringComparer.Ordinal);
        public ConcurrentQueue<(DateTimeOffset At, bool WhileDown)> Requests { get; } = new();

        public async Task HandleAsync(HttpContext ctx, ReceivedRequest req)
        {
            var down = Down;
            Requests.Enqueue((DateTimeOffset.UtcNow, down));
            if (down)
            {
                switch (Interlocked.Increment(ref Served) % 3)
                {
                    case 0:
                        await Task.Delay(TimeSpan.FromSeconds(2), ctx.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                        return;
                    case 1:
                        await LoopbackServer.JsonAsync(ctx, 500, """{"error":"internal"}""");
                        return;
                    default:
                        await LoopbackServer.JsonAsync(ctx, 200, """{"ok": tru""");
                        return;
                }
            }

            var key = req.IdempotencyKey ?? "(none)";
            var first = Effects.AddOrUpdate(key, 1, (_, n) => n) == 1 && !Effects.ContainsKey("dup:" + key);
            await LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new { ok = true, key, replay = !first }));
        }
    }

    private static void WriteProject(Workspace w, Uri server, int steps)
    {
        w.Write("ordo.yaml", "tools: [tools.yaml]\n");
        w.Write("tools.yaml", $$"""
            tools:
              dep.apply:
                kind: http
                url: "{{server}}apply/{item}"
                effect: write
                timeout: 300ms
                retry: { max_attempts: 3, backoff: 50ms, max_backoff: 200ms }
                circuit_breaker: { failure_ratio: 0.5, min_calls: 5, break: 1s }
                args: { type: object, required: [item], properties: { item: { type: string } } }
                result: { type: object, required: [ok] }
            """);
        var body = string.Join("\n", Enumerable.Range(1, steps).Select(i =>
            $"  - {{ id: s{i}, tool: dep.apply, args: {{ item: \"${{ input.name }}-{i}\" }}, retry: {{ max_attempts: 60, backoff: 200ms, max_backoff: 1s }}{(i < steps ? $", next: s{i + 1}" : "")} }}"));
        w.Write("flow.yaml", "ordo: 1\nworkflow: chaos\nversion: 1\ninput: { type: object, required: [name] }\nsteps:\n" + body + "\n");
    }

    [Fact]
    public async Task OutageThenRecovery_BoundedAmplification_CircuitOpensAndCloses_AllJobsComplete_EffectsOnce()
    {
        var dependency = new Dependency();
        await using var server = await LoopbackServer.StartAsync(dependency.HandleAsync);
        using var w = Workspace.Create();
        WriteProject(w, server.Address, steps: 1);
        var jobs = 40 * Scale;
        var ids = new List<string>();
        for (var i = 0; i < jobs; i++)
        {
            w.Write($"in{i}.json", $$"""{ "name": "job{{i}}" }""");
            ids.Add((await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("flow.yaml"), "--input", w.PathOf($"in{i}.json"), "--db", w.Db)).Out.Trim());
        }

        using var resume = OrdoProcess.Start(w.Root, "resume", "--db", w.Db, "--workers", "8");
        var downFrom = DateTimeOffset.UtcNow;

        // Down until the dependency has seen calls (a slow machine may take seconds to start the process), then long
        // enough for the circuit to open (5 calls, half of them failed) and for a half-open probe to fail.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (dependency.Requests.Count(r => r.WhileDown) < 8 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        dependency.Down = false;
        var downUntil = DateTimeOffset.UtcNow;
        Assert.True(await resume.WaitForExitAsync(TimeSpan.FromMinutes(3)) == 0, resume.Err);

        var logicalCallsWhileDown = 0;
        var opened = false;
        var closed = false;
        foreach (var id in ids)
        {
            var show = (await CliRunner.RunExpectingAsync(0, "show", id, "--db", w.Db, "--json")).Json();
            Assert.Equal("completed", show.GetProperty("status").GetString());
            foreach (var e in (await CliRunner.RunExpectingAsync(0, "events", id, "--db", w.Db, "--json")).JsonLines())
            {
                var type = e.GetProperty("type").GetString();
                var ts = DateTimeOffset.Parse(e.GetProperty("ts").GetString()!, CultureInfo.InvariantCulture);
                if (type == "ToolCallRequested" && ts >= downFrom && ts < downUntil) logicalCallsWhileDown++;
                if (type == "CircuitStateChanged")
                {
                    var to = e.GetProperty("payload").GetProperty("to").GetString();
                    opened |= to == "open";
                    closed |= to == "closed";
                }
            }
        }

        var requestsWhileDown = dependency.Requests.Count(r => r.WhileDown);
        var amplification = requestsWhileDown / (double)Math.Max(1, logicalCallsWhileDown);
        output.WriteLine($"while down: {requestsWhileDown} requests for {logicalCallsWhileDown} logical calls = {amplification:F2}; total requests {dependency.Requests.Count}");
        Assert.True(logicalCallsWhileDown > 0, "no call was made while the dependency was down");
        Assert.InRange(amplification, 0, 2.0);
        Assert.True(opened, "no CircuitStateChanged → open event");
        Assert.True(closed, "no CircuitStateChanged → closed event");
        Assert.Equal(jobs, dependency.Effects.Count);
        Assert.All(dependency.Effects, kv => Assert.Equal(1, kv.Value));
        await CliRunner.RunExpectingAsync(0, "audit", "verify", "--all", "--db", w.Db);
    }

    [Fact]
    public async Task KilledDuringHttpSideEffects_ResumeAppliesEachKeysEffectOnce()
    {
        var seed = Environment.GetEnvironmentVariable("ORDO_TORTURE_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Random.Shared.Next();
        output.WriteLine($"seed {seed} (replay with ORDO_TORTURE_SEED={seed})");
        var random = new Random(seed);
        var applied = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var requests = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        await using var server = await LoopbackServer.StartAsync(async (ctx, req) =>
        {
            var key = req.IdempotencyKey ?? "(none)";
            requests.AddOrUpdate(key, 1, (_, n) => n + 1);
            applied.TryAdd(key, 1);
            await Task.Delay(random.Next(2, 30));
            await LoopbackServer.JsonAsync(ctx, 200, JsonSerializer.Serialize(new { ok = true }));
        });
        using var w = Workspace.Create();
        const int steps = 25;
        WriteProject(w, server.Address, steps);
        var jobs = 3 * Scale;
        for (var i = 0; i < jobs; i++)
        {
            w.Write($"in{i}.json", $$"""{ "name": "job{{i}}" }""");
            await CliRunner.RunExpectingAsync(0, "submit", w.PathOf("flow.yaml"), "--input", w.PathOf($"in{i}.json"), "--db", w.Db);
        }

        for (var kill = 0; kill < 4 * Scale; kill++)
        {
            // Kill once the process is busy with side effects: a few calls into its run, at a random instant.
            var before = requests.Values.Sum();
            using var p = OrdoProcess.Start(w.Root, "resume", "--db", w.Db, "--workers", "3");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!p.HasExited && requests.Values.Sum() < before + 3 && DateTime.UtcNow < deadline) await Task.Delay(5);
            await Task.Delay(random.Next(0, 150));
            if (p.HasExited) break;
            p.Kill();
            await p.ExitedAsync();
        }

        var final = await OrdoProcess.RunAsync(w.Root, TimeSpan.FromMinutes(3), "resume", "--db", w.Db);
        Assert.True(final.ExitCode == 0, final.ToString());
        var list = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json();
        Assert.Equal(jobs, list.GetArrayLength());
        Assert.All(list.EnumerateArray(), j => Assert.Equal("completed", j.GetProperty("status").GetString()));
        Assert.Equal(jobs * steps, applied.Count);
        output.WriteLine($"{requests.Values.Sum()} requests for {applied.Count} keys; {requests.Count(kv => kv.Value > 1)} keys were sent more than once");
        foreach (var j in list.EnumerateArray())
        {
            var id = j.GetProperty("job_id").GetString()!;
            var events = (await CliRunner.RunExpectingAsync(0, "events", id, "--db", w.Db, "--json")).JsonLines();
            var succeeded = events.Where(e => e.GetProperty("type").GetString() == "StepSucceeded").Select(e => e.GetProperty("step_id").GetString()).ToList();
            Assert.Equal(steps, succeeded.Count);
            Assert.Equal(steps, succeeded.Distinct().Count());
            var keys = events.Where(e => e.GetProperty("type").GetString() == "ToolCallRequested").Select(e => e.GetProperty("payload").GetProperty("idempotency_key").GetString()!).Distinct().ToList();
            Assert.Equal(steps, keys.Count);
            Assert.All(keys, k => Assert.True(applied.ContainsKey(k), $"key {k} was recorded but never reached the dependency"));
        }

        await CliRunner.RunExpectingAsync(0, "audit", "verify", "--all", "--db", w.Db);
    }
}

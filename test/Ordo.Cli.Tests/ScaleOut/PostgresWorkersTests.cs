using System.Globalization;
using System.Text.Json;
using Npgsql;
using Ordo.Cli.Tests.TestSupport;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Postgres;
using Ordo.Postgres.Tests;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.ScaleOut;

/// <summary>
/// Real <c>ordo worker --postgres</c> processes on one PostgreSQL database (a fresh one per test), running jobs whose steps
/// call a side effect: a <c>sql</c> tool on a PostgreSQL connection that inserts a row keyed by the call's idempotency
/// key and counts every call. One worker is SIGKILLed mid-run, one is paused with SIGSTOP past its lease: every job
/// completes, each effect is applied once, no step's success is recorded twice, and the audit passes.
/// Sizes scale with ORDO_TORTURE_SCALE (default 1).
/// </summary>
public sealed class PostgresWorkersTests(ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(240);
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("ORDO_TORTURE_SCALE"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 1;
    private readonly string _pg = PostgresTestServer.CreateDatabase("ordo_workers");

    public void Dispose() => PostgresTestServer.DropDatabase(_pg);

    [Fact]
    public async Task ThreeWorkers_OneKilledMidRun_EveryJobCompletes_EachEffectOnce_AndTheAuditPasses()
    {
        using var w = Workspace.Create();
        const int visits = 2;
        var workflow = WriteEffectProject(w, visits, sleepSeconds: 0.02);
        var jobs = await SubmitAsync(workflow, 100 * Scale);

        var workers = new List<OrdoProcess>();
        try
        {
            for (var i = 0; i < 3; i++) workers.Add(StartWorker(w, concurrency: 4));
            // Kill one once the run is well under way, while it holds leases.
            await WaitUntilAsync(async () => await CountEffectsAsync() >= jobs.Count / 4, "a quarter of the effects");
            var doomed = workers[0];
            Assert.True(await doomed.WaitForOutputAsync(l => l.Count > 0, Patience), doomed.Err);
            var dead = doomed.OutLines[0]["ordo: worker ".Length..].Split(' ')[0];
            doomed.Kill();
            workers.Add(StartWorker(w, concurrency: 4));

            await WaitAllCompletedAsync(jobs);
            foreach (var worker in workers.Skip(1))
            {
                await worker.SignalAsync("TERM");
                Assert.True(await worker.WaitForExitAsync(Patience) == 0, $"{worker.CommandLine}\n{worker.Err}");
            }

            var heirs = string.Join('\n', workers.Skip(1).Select(x => x.Err));
            var (effects, calls) = await ReadEffectsAsync();
            Assert.Equal(jobs.Count * visits, effects.Count);
            Assert.Equal(effects.Count, effects.Distinct(StringComparer.Ordinal).Count());
            // Only what the killed worker was running when it died can have been called again (at most its 4 steps at once).
            Assert.InRange(calls, effects.Count, effects.Count + 4);
            var redelivered = 0;
            await using (var store = new PostgresOrdoStore(_pg))
            {
                foreach (var job in jobs)
                {
                    var events = await EventsAsync(store, job);
                    var succeeded = events.Where(e => e.Type == EventTypes.StepSucceeded).Select(e => $"{e.StepId}#{e.Visit}").ToList();
                    Assert.Equal(visits, succeeded.Count);
                    Assert.Equal(succeeded.Count, succeeded.Distinct(StringComparer.Ordinal).Count());
                    foreach (var e in events.Where(e => e.Type == EventTypes.StepStarted))
                    {
                        using var payload = JsonDocument.Parse(e.Payload);
                        if (payload.RootElement.GetProperty("delivery").GetInt32() == 1) continue;
                        redelivered++;
                        Assert.Equal(dead, payload.RootElement.GetProperty("taken_over_from").GetString());
                    }
                }
            }

            if (redelivered > 0) Assert.Contains($"takes over the leases of worker {dead}", heirs, StringComparison.Ordinal);
            var audit = await OrdoProcess.RunAsync(w.Root, Patience, "audit", "verify", "--all", "--postgres", _pg);
            Assert.True(audit.ExitCode == 0, audit.ToString());
            Assert.Contains($"ok: {jobs.Count} job(s)", audit.Out, StringComparison.Ordinal);

            // A signed checkpoint of the PostgreSQL store, and the store verified against it.
            var key = new Dictionary<string, string> { ["ORDO_AUDIT_KEY"] = Path.Combine(w.Root, "keys", "audit-key.pem") };
            var checkpoint = await OrdoProcess.RunAsync(w.Root, Patience, key, "audit", "checkpoint", "--postgres", _pg, "--out", Path.Combine(w.Root, "cp.json"));
            Assert.True(checkpoint.ExitCode == 0, checkpoint.ToString());
            var against = await OrdoProcess.RunAsync(w.Root, Patience, key, "audit", "verify", "--all", "--postgres", _pg, "--checkpoint", Path.Combine(w.Root, "cp.json"));
            Assert.True(against.ExitCode == 0, against.ToString());
            var doctor = await OrdoProcess.RunAsync(w.Root, Patience, "doctor", "--postgres", _pg);
            Assert.True(doctor.ExitCode == 0, doctor.ToString());
            log.WriteLine($"{jobs.Count} jobs x {visits} effects on 3 workers, {dead} killed: {calls} calls for {effects.Count} effects, {redelivered} steps taken over");
        }
        finally
        {
            foreach (var worker in workers) worker.Dispose();
        }
    }

    [Fact]
    public async Task AWorkerPausedPastItsLease_CannotCommitTheStepAnotherWorkerTookOver()
    {
        using var w = Workspace.Create();
        var workflow = WriteEffectProject(w, visits: 1, sleepSeconds: 3);
        var job = Assert.Single(await SubmitAsync(workflow, 1));
        var lease = new Dictionary<string, string> { ["ORDO_LEASE"] = "2s" };
        using var paused = OrdoProcess.Start(lease, w.Root, "worker", "--postgres", _pg, "--concurrency", "1");
        await using var store = new PostgresOrdoStore(_pg);

        // The step's tool call is running on the server for the first worker: pause that worker, past its lease.
        await WaitUntilAsync(ToolCallRunningAsync, "the first worker's tool call to run");
        var first = paused.OutLines[0]["ordo: worker ".Length..].Split(' ')[0];
        await paused.SignalAsync("STOP");
        try
        {
            using var heir = OrdoProcess.Start(lease, w.Root, "worker", "--postgres", _pg, "--concurrency", "1");
            // A paused worker keeps its connection, so it is not proven dead: its lease is waited out, then taken over.
            await WaitUntilAsync(async () => (await EventsAsync(store, job)).Any(e => e.Type == EventTypes.StepStarted && Delivery(e) == 2), "the takeover");
            await WaitAllCompletedAsync([job]);
            var settled = (await EventsAsync(store, job)).Count;
            // Resumed only now: its call finished on the server meanwhile, so it holds a result it may no longer write.
            await paused.SignalAsync("CONT");
            await Task.Delay(TimeSpan.FromSeconds(3));
            // What it may still write is the record of the call it made (every call that reached a tool is in the log,
            // whatever became of its step): never the step's outcome, never anything that moves the job.
            var after = await EventsAsync(store, job);
            Assert.All(after.Skip(settled), e => Assert.True(e.Type is EventTypes.ToolCallSucceeded or EventTypes.ToolCallFailed,
                $"the paused worker wrote {e.Seq} {e.Type} {e.StepId} after the job settled"));
            Assert.Equal(Ordo.State.JobStatus.Completed, (await store.GetJobAsync(new JobId(job)))!.Status);
            foreach (var worker in new[] { heir, paused })
            {
                await worker.SignalAsync("TERM");
                Assert.True(await worker.WaitForExitAsync(Patience) == 0, $"{worker.CommandLine}\n{worker.Err}");
            }

        }
        finally
        {
            if (!paused.HasExited) await paused.SignalAsync("CONT");
        }

        var events = await EventsAsync(store, job);
        var started = events.Where(e => e.Type == EventTypes.StepStarted).ToList();
        Assert.Equal(2, started.Count);
        using (var takeover = JsonDocument.Parse(started[1].Payload))
        {
            Assert.Equal(first, takeover.RootElement.GetProperty("taken_over_from").GetString());
        }

        // The step succeeded once, written by the worker that held the lease; the effect was applied once, called twice.
        var succeeded = Assert.Single(events, e => e.Type == EventTypes.StepSucceeded);
        Assert.True(succeeded.Seq > started[1].Seq);
        var (effects, calls) = await ReadEffectsAsync();
        Assert.Single(effects);
        Assert.Equal(2, calls);
        Assert.True((await AuditVerifier.VerifyAsync(store, new JobId(job))).Intact);
    }

    [Fact]
    public async Task OrdoServe_OnPostgres_TakesJobsThatAWorkerElsewhereRuns()
    {
        using var w = Workspace.Create();
        var workflow = WriteEffectProject(w, visits: 1, sleepSeconds: 0);
        var port = FreePort();
        using var server = OrdoProcess.Start(w.Root, "serve", "--postgres", _pg, "--urls", $"http://127.0.0.1:{port}", "--workers", "1", "--config", w.PathOf("ordo.yaml"));
        Assert.True(await server.WaitForOutputAsync(l => l.Any(x => x.StartsWith("ordo: serving", StringComparison.Ordinal)), Patience), server.Err);
        Assert.Contains("postgres://", server.OutLines[0], StringComparison.Ordinal);
        var key = (await OrdoProcess.RunAsync(w.Root, Patience, "keys", "create", "--tenant", "default", "--as", "alice", "--json", "--postgres", _pg)).Json().GetProperty("key").GetString()!;
        using var worker = StartWorker(w, concurrency: 2);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await http.PostAsync(new Uri("/v1/jobs", UriKind.Relative), new StringContent("""{"workflow":"effect-loop","input":{}}""", System.Text.Encoding.UTF8, "application/json"));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, body);
            ids.Add(JsonDocument.Parse(body).RootElement.GetProperty("job_id").GetString()!);
        }

        await WaitAllCompletedAsync(ids);
        Assert.Equal(5, (await ReadEffectsAsync()).Effects.Count);
        foreach (var p in new[] { server, worker })
        {
            await p.SignalAsync("TERM");
            Assert.True(await p.WaitForExitAsync(Patience) == 0, $"{p.CommandLine}\n{p.Err}");
        }
    }

    /// <summary>Whether the effect's statement (the slow one) is running on the server now.</summary>
    private async Task<bool> ToolCallRunningAsync()
    {
        await using var c = new NpgsqlConnection(_pg);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep(3)%'", c);
        return (long)(await cmd.ExecuteScalarAsync())! > 0;
    }

    private OrdoProcess StartWorker(Workspace w, int concurrency) => OrdoProcess.Start(w.Root, "worker", "--postgres", _pg, "--concurrency", concurrency.ToString(CultureInfo.InvariantCulture));

    private static int Delivery(EventEnvelope e)
    {
        using var payload = JsonDocument.Parse(e.Payload);
        return payload.RootElement.GetProperty("delivery").GetInt32();
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Submits jobs from this process, straight to the store (as a server or another program would).</summary>
    private async Task<List<string>> SubmitAsync(string workflowPath, int count)
    {
        var workflow = await WorkflowLoader.LoadFileAsync(workflowPath);
        await using var store = new PostgresOrdoStore(_pg);
        await using var runtime = new OrdoRuntime(store);
        var ids = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            ids.Add((await runtime.SubmitAsync(workflow, null)).JobId.Value);
        }

        return ids;
    }

    private async Task WaitAllCompletedAsync(IReadOnlyList<string> jobs)
    {
        await using var store = new PostgresOrdoStore(_pg);
        var deadline = DateTimeOffset.UtcNow + Patience;
        while (true)
        {
            var list = await store.ListJobsAsync(new JobQuery { Limit = 100_000 });
            var mine = list.Where(j => jobs.Contains(j.JobId.Value)).ToList();
            Assert.DoesNotContain(mine, j => j.Status is JobStatus.Failed or JobStatus.Cancelled);
            if (mine.Count == jobs.Count && mine.All(j => j.Status == JobStatus.Completed)) return;
            Assert.True(DateTimeOffset.UtcNow < deadline, $"jobs did not complete: {mine.Count(j => j.Status == JobStatus.Completed)} of {jobs.Count} completed");
            await Task.Delay(200);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTimeOffset.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static async Task<List<EventEnvelope>> EventsAsync(PostgresOrdoStore store, string job)
    {
        var list = new List<EventEnvelope>();
        await foreach (var e in store.ReadEventsAsync(new JobId(job))) list.Add(e);
        return list;
    }

    private async Task<long> CountEffectsAsync()
    {
        await using var c = new NpgsqlConnection(_pg);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM public.effects", c);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task<(List<string> Effects, long Calls)> ReadEffectsAsync()
    {
        await using var c = new NpgsqlConnection(_pg);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT n FROM public.calls WHERE id = 1", c);
        var calls = (long)(await cmd.ExecuteScalarAsync())!;
        cmd.CommandText = "SELECT idempotency_key FROM public.effects";
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add(r.GetString(0));
        return (list, calls);
    }

    /// <summary>
    /// A loop over a side effect on PostgreSQL (in the test database's public schema, beside Ordo's own): the effect is
    /// idempotent by the call's key, and a counter counts every call, repeated or not. <paramref name="sleepSeconds"/>
    /// makes each call take that long on the server.
    /// </summary>
    private string WriteEffectProject(Workspace w, int visits, double sleepSeconds)
    {
        var connection = _pg.Replace("\"", "\\\"", StringComparison.Ordinal);
        w.Write("ordo.yaml", $"tools: [tools.yaml]\nconnections:\n  effects: {{ postgres: \"{connection}\", init: effects.sql }}\n");
        var init = w.Write("effects.sql", """
            CREATE TABLE IF NOT EXISTS public.effects(idempotency_key text PRIMARY KEY, job_id text NOT NULL);
            CREATE TABLE IF NOT EXISTS public.calls(id integer PRIMARY KEY, n bigint NOT NULL);
            INSERT INTO public.calls(id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

            """);
        // The workers run it too (it is idempotent); run here first, so the test can count before any worker has.
        using (var c = new NpgsqlConnection(_pg))
        {
            c.Open();
            using var cmd = new NpgsqlCommand(File.ReadAllText(init), c);
            cmd.ExecuteNonQuery();
        }

        var sleep = sleepSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        w.Write("tools.yaml", $"""
            tools:
              effect.write:
                kind: sql
                connection: effects
                effect: write
                timeout: 30s
                query: "SELECT pg_sleep({sleep}); INSERT INTO public.effects(idempotency_key, job_id) VALUES (@idempotency_key, @job_id) ON CONFLICT (idempotency_key) DO NOTHING; UPDATE public.calls SET n = n + 1 WHERE id = 1"

            """);
        return w.Write("loop.yaml", $"""
            ordo: 1
            workflow: effect-loop
            version: 1
            steps:
              - id: effect
                tool: effect.write
                loop: {"{"} max_iterations: {visits} {"}"}
                next:
                  - {"{"} when: "steps.effect.visit < {visits}", to: effect {"}"}
                  - {"{"} to: end {"}"}

            """);
    }
}

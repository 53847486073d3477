using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Durability;

/// <summary>
/// Several real <c>ordo</c> processes — <c>worker</c>, <c>run</c>, <c>resume</c> — on one SQLite file, running jobs that
/// loop over side effects. With no process killed, every step runs exactly once: non-idempotent calls equal the step
/// visits, and no step is delivered twice. With a worker killed mid-step, another worker takes its work over at once
/// (not after its leases expire), and only what the dead worker held runs again. A live worker is never judged dead.
/// Sizes scale with ORDO_TORTURE_SCALE (default 1).
/// </summary>
public sealed class ManyProcessesTests(ITestOutputHelper log)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("ORDO_TORTURE_SCALE"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 1;

    [Fact]
    public async Task Workers_Runs_AndResumes_OnOneDatabase_RunEveryStepOnce()
    {
        using var w = Workspace.Create();
        var visits = 20 * Scale;
        var workflow = WriteLoopProject(w, visits, sleepMs: 0);
        var jobs = new List<string>();
        for (var i = 0; i < 5 + Scale; i++)
        {
            jobs.Add((await OrdoProcess.RunAsync(w.Root, Patience, "submit", workflow, "--db", w.Db)).OutLines.Single());
        }

        // Everything at once: two workers, two resumes of everything, and a run of one more job.
        using var worker1 = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "2");
        using var worker2 = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "3");
        var resume1 = OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db, "--workers", "2");
        var resume2 = OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db);
        var run = OrdoProcess.RunAsync(w.Root, Patience, "run", workflow, "--db", w.Db, "--json");
        var ran = await run;
        Assert.True(ran.ExitCode == 0, ran.ToString());
        jobs.Add(ran.Json().GetProperty("job_id").GetString()!);
        foreach (var r in await Task.WhenAll(resume1, resume2))
        {
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        await WaitAllCompletedAsync(w, jobs.Count);
        foreach (var worker in new[] { worker1, worker2 })
        {
            await worker.SignalAsync("TERM");
            Assert.True(await worker.WaitForExitAsync(Patience) == 0, $"{worker.CommandLine}\n{worker.Err}");
            Assert.DoesNotContain("takes over", worker.Err, StringComparison.Ordinal);
        }

        var (effects, calls) = ReadEffects(w);
        Assert.Equal(jobs.Count * visits, effects.Count);
        // Nobody died, so nothing ran twice: even the calls that no key could make idempotent equal the visits.
        Assert.Equal(effects.Count, calls);
        foreach (var job in jobs)
        {
            var events = await EventsAsync(w, job);
            var started = events.Where(e => Type(e) == "StepStarted").ToList();
            Assert.All(started, e => Assert.Equal(1, e.GetProperty("payload").GetProperty("delivery").GetInt32()));
            Assert.Equal(visits, events.Count(e => Type(e) == "StepSucceeded"));
        }

        // Every process appended to the one audit log, each from its own kept frontier: it is still one consistent tree
        // that records every job's events.
        var audit = await CliRunner.RunAsync("audit", "verify", "--all", "--db", w.Db, "--json");
        Assert.True(audit.ExitCode == 0, audit.ToString());
        Assert.True(audit.JsonLines()[^1].GetProperty("audit_log").GetProperty("tree_size").GetInt64() > jobs.Count);
        log.WriteLine($"{jobs.Count} jobs x {visits} visits: {calls} calls, no redelivery");
    }

    [Fact]
    public async Task AWorkerKilledMidStep_IsTakenOverAtOnce_AndOnlyWhatItHeldRunsAgain()
    {
        using var w = Workspace.Create();
        var visits = 8 * Scale;
        var workflow = WriteLoopProject(w, visits, sleepMs: 250);
        var jobs = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            jobs.Add((await OrdoProcess.RunAsync(w.Root, Patience, "submit", workflow, "--db", w.Db)).OutLines.Single());
        }

        string dead;
        DateTimeOffset killedAt;
        using (var doomed = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "2"))
        {
            Assert.True(await doomed.WaitForOutputAsync(l => l.Count(x => x.TrimStart().StartsWith('✓')) >= 4, Patience), doomed.Err);
            dead = doomed.OutLines[0]["ordo: worker ".Length..].Split(' ')[0];
            await Task.Delay(120);
            doomed.Kill();
            killedAt = DateTimeOffset.UtcNow;
        }

        using var heir = OrdoProcess.Start(w.Root, "worker", "--db", w.Db, "--concurrency", "2");
        await WaitAllCompletedAsync(w, jobs.Count);
        await heir.SignalAsync("TERM");
        Assert.Equal(0, await heir.WaitForExitAsync(Patience));
        Assert.Contains($"takes over the leases of worker {dead}", heir.Err, StringComparison.Ordinal);

        var takenOver = new List<(string Job, string Step, DateTimeOffset At)>();
        foreach (var job in jobs)
        {
            var events = await EventsAsync(w, job);
            var succeeded = events.Where(e => Type(e) == "StepSucceeded").Select(e => $"{e.GetProperty("step_id").GetString()}#{e.GetProperty("visit").GetInt32()}").ToList();
            Assert.Equal(succeeded.Count, succeeded.Distinct(StringComparer.Ordinal).Count());
            Assert.Equal(2 * visits, succeeded.Count);
            foreach (var e in events.Where(e => Type(e) == "StepStarted" && e.GetProperty("payload").GetProperty("delivery").GetInt32() > 1))
            {
                // Every redelivery is of an item the killed worker held, and it came long before that lease could expire.
                Assert.Equal(dead, e.GetProperty("payload").GetProperty("taken_over_from").GetString());
                takenOver.Add((job, e.GetProperty("step_id").GetString()!, DateTimeOffset.Parse(e.GetProperty("ts").GetString()!, CultureInfo.InvariantCulture)));
            }
        }

        Assert.NotEmpty(takenOver);
        Assert.All(takenOver, t => Assert.True(t.At - killedAt < TimeSpan.FromSeconds(15), $"{t.Job} {t.Step} was taken over {(t.At - killedAt).TotalSeconds:0.0} s after the kill: it waited for the lease to expire"));
        var (effects, calls) = ReadEffects(w);
        Assert.Equal(jobs.Count * visits, effects.Count);
        Assert.InRange(calls, effects.Count, effects.Count + 2);
        log.WriteLine($"killed {dead}; {takenOver.Count} items taken over, the last {(takenOver.Max(t => t.At) - killedAt).TotalSeconds:0.0} s after the kill");
    }

    [Fact]
    public async Task ProcessesStartedAtOnce_NeverJudgeALiveOneDead()
    {
        for (var round = 0; round < 2 * Scale; round++)
        {
            using var w = Workspace.Create();
            var workflow = WriteLoopProject(w, visits: 6, sleepMs: 120);
            Assert.Contains("schema version", (await CliRunner.RunExpectingAsync(0, "db", "migrate", "--db", w.Db)).Out, StringComparison.Ordinal);
            var processes = new List<Task<CliResult>>();
            for (var i = 0; i < 4; i++)
            {
                processes.Add(OrdoProcess.RunAsync(w.Root, Patience, "run", workflow, "--db", w.Db, "--workers", "1"));
            }

            processes.Add(OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db));
            processes.Add(OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db, "--workers", "1"));
            foreach (var result in await Task.WhenAll(processes))
            {
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.DoesNotContain("takes over", result.Err, StringComparison.Ordinal);
                Assert.DoesNotContain("lost the lease", result.Err, StringComparison.Ordinal);
            }

            var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray().Select(j => j.GetProperty("job_id").GetString()!).ToList();
            Assert.Equal(4, jobs.Count);
            foreach (var job in jobs)
            {
                Assert.DoesNotContain(await EventsAsync(w, job), e => Type(e) == "StepStarted" && e.GetProperty("payload").GetProperty("delivery").GetInt32() > 1);
            }
        }
    }

    private static async Task WaitAllCompletedAsync(Workspace w, int count)
    {
        var deadline = DateTimeOffset.UtcNow + Patience;
        while (true)
        {
            var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray().ToList();
            if (jobs.Count == count && jobs.All(j => j.GetProperty("status").GetString() == "completed")) return;
            Assert.DoesNotContain(jobs, j => j.GetProperty("status").GetString() is "failed" or "cancelled");
            Assert.True(DateTimeOffset.UtcNow < deadline, "jobs did not complete: " + string.Join(", ", jobs.Select(j => j.GetProperty("status").GetString())));
            await Task.Delay(200);
        }
    }

    private static async Task<IReadOnlyList<JsonElement>> EventsAsync(Workspace w, string job)
        => (await CliRunner.RunExpectingAsync(0, "events", job, "--json", "--db", w.Db)).JsonLines();

    private static string Type(JsonElement e) => e.GetProperty("type").GetString()!;

    private static (List<string> Effects, long Calls) ReadEffects(Workspace w)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = w.PathOf("data/effects.db"), Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT n FROM calls";
        var calls = (long)cmd.ExecuteScalar()!;
        cmd.CommandText = "SELECT idempotency_key FROM effects";
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return (list, calls);
    }

    /// <summary>
    /// A loop over a side effect (and, with <paramref name="sleepMs"/>, a slow step before it): the effect is idempotent
    /// by its key, and a counter counts every call, repeated or not.
    /// </summary>
    private static string WriteLoopProject(Workspace w, int visits, int sleepMs)
    {
        w.Write("ordo.yaml", $"tools: [tools.yaml]\nplugins: [\"{TestPaths.TestPluginDll}\"]\nconnections:\n  effects: {{ sqlite: data/effects.db, init: data/effects.sql }}\n");
        w.Write("data/effects.sql", """
            CREATE TABLE effects(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL);
            CREATE TABLE calls(n INTEGER NOT NULL);
            INSERT INTO calls(n) VALUES (0);

            """);
        w.Write("tools.yaml", """
            tools:
              effect.write:
                kind: sql
                connection: effects
                effect: write
                query: "INSERT INTO effects(idempotency_key, job_id) VALUES (@idempotency_key, @job_id) ON CONFLICT(idempotency_key) DO NOTHING; UPDATE calls SET n = n + 1"

            """);
        var yaml = new StringBuilder("ordo: 1\nworkflow: effect-loop\nversion: 1\n");
        if (sleepMs > 0)
        {
            yaml.Append("agents:\n  sleeper: { kind: code, type: \"Ordo.TestPlugins.Sleeper\" }\nsteps:\n");
            yaml.Append(CultureInfo.InvariantCulture, $"  - {{ id: wait, agent: sleeper, input: {{ ms: {sleepMs} }}, loop: {{ max_iterations: {visits} }}, next: effect }}\n");
            yaml.Append(CultureInfo.InvariantCulture, $"  - id: effect\n    tool: effect.write\n    loop: {{ max_iterations: {visits} }}\n    next:\n      - {{ when: \"steps.effect.visit < {visits}\", to: wait }}\n      - {{ to: end }}\n");
        }
        else
        {
            yaml.Append("steps:\n");
            yaml.Append(CultureInfo.InvariantCulture, $"  - id: effect\n    tool: effect.write\n    loop: {{ max_iterations: {visits} }}\n    next:\n      - {{ when: \"steps.effect.visit < {visits}\", to: effect }}\n      - {{ to: end }}\n");
        }

        return w.Write("loop.yaml", yaml.ToString());
    }
}

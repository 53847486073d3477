using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Durability;

/// <summary>
/// The crash test: real <c>ordo</c> processes running a long chain of side-effecting tool steps are killed with SIGKILL
/// at random points and restarted with <c>ordo resume</c>. Every job must complete, every (job, step, visit) must have
/// exactly one effect (the idempotency key turns repeated calls into no-ops), no step visit may succeed twice, and
/// every hash chain must stay intact. Runs of transform steps between the tool steps, written several to a commit, must
/// each count once. Scales with ORDO_TORTURE_SCALE (default 1); ORDO_TORTURE_SEED replays a run.
/// </summary>
public sealed class CrashRecoveryTests(ITestOutputHelper log)
{
    private const int Steps = 50;
    private const int LoopStep = 25;
    private const int LoopVisits = 3;

    /// <summary>After every fifth tool step (s02, s07, ...) this many transform steps, pure, count into the artifact <c>tally</c>.</summary>
    private const int TransformRun = 4;

    private const int Transforms = Steps / 5 * TransformRun;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Sigkill_AtRandomPoints_EveryJobCompletesWithEachEffectOnce()
    {
        var scale = EnvInt("ORDO_TORTURE_SCALE") is { } s and > 0 ? s : 1;
        var seed = EnvInt("ORDO_TORTURE_SEED") ?? Random.Shared.Next();
        log.WriteLine($"crash test: scale {scale}, seed {seed} (replay with ORDO_TORTURE_SEED={seed} ORDO_TORTURE_SCALE={scale})");
        try
        {
            await TortureAsync(scale, new Random(seed));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"crash test failed with seed {seed} (replay with ORDO_TORTURE_SEED={seed} ORDO_TORTURE_SCALE={scale}): {e.Message}", e);
        }
    }

    private async Task TortureAsync(int scale, Random random)
    {
        using var w = Workspace.Create();
        var workflow = WriteProject(w);
        var jobCount = 3 + scale;
        var kills = 5 * scale;

        // Jobs waiting in the queue, then one started by a real `ordo run`, killed part-way.
        var jobs = new List<string>();
        for (var i = 0; i < jobCount - 1; i++)
        {
            jobs.Add(Assert.Single((await CliRunner.RunExpectingAsync(0, "submit", workflow, "--db", w.Db)).OutLines));
        }

        var killed = 0;
        using (var run = OrdoProcess.Start(w.Root, "run", workflow, "--db", w.Db, "--workers", "2"))
        {
            Assert.True(await run.WaitForOutputAsync(l => l.Count > 0, Patience), "ordo run printed nothing\n" + run.Err);
            jobs.Add(run.OutLines[0]["ordo: running job ".Length..].Split(' ')[0]);
            if (await KillAtRandomPointAsync(run, random, "run"))
            {
                killed++;
            }
        }

        // Restart and kill again, many times.
        for (var round = 1; round <= kills; round++)
        {
            var workers = random.Next(1, 5).ToString(CultureInfo.InvariantCulture);
            using var resume = OrdoProcess.Start(w.Root, "resume", "--db", w.Db, "--workers", workers);
            if (await KillAtRandomPointAsync(resume, random, $"resume #{round} ({workers} workers)"))
            {
                killed++;
                await AssertChainsIntactAsync(w);
            }
            else if (jobs.Count == await CountCompletedAsync(w))
            {
                break;
            }
        }

        Assert.True(killed > 0, "no process was killed while it had work to do");

        // The last restart runs everything to the end.
        var final = await OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db);
        Assert.True(final.ExitCode == 0, "final resume\n" + final);
        log.WriteLine($"{killed} kills; final resume: {(final.OutLines.Count > 0 ? final.OutLines[^1] : "")}");

        await AssertOutcomeAsync(w, jobs);
        var audit = await OrdoProcess.RunAsync(w.Root, Patience, "audit", "verify", "--all", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, "audit verify --all\n" + audit);
    }

    /// <summary>Kills the process after a random number of finished steps or after a random time; false when it ended by itself first.</summary>
    private async Task<bool> KillAtRandomPointAsync(OrdoProcess p, Random random, string what)
    {
        bool due;
        string trigger;
        if (random.Next(4) == 0)
        {
            var ms = random.Next(0, 1500);
            trigger = $"{ms} ms after start";
            await Task.WhenAny(p.ExitedAsync(), Task.Delay(ms));
            due = !p.HasExited;
        }
        else
        {
            var steps = random.Next(2, 40);
            var extraMs = random.Next(0, 4);
            trigger = $"after {steps} steps + {extraMs} ms";
            due = await p.WaitForOutputAsync(l => l.Count(x => x.TrimStart().StartsWith('✓')) >= steps, Patience);
            if (due && extraMs > 0)
            {
                await Task.WhenAny(p.ExitedAsync(), Task.Delay(extraMs));
            }
        }

        if (!due || p.HasExited)
        {
            var code = await p.WaitForExitAsync(Patience);
            log.WriteLine($"{what}: ended by itself ({trigger}) with exit code {code}");
            Assert.True(code == 0, $"{p.CommandLine} exited with {code}\n{string.Join('\n', p.OutLines)}\n{p.Err}");
            return false;
        }

        p.Kill();
        log.WriteLine($"{what}: SIGKILL {trigger}; {p.OutLines.Count(x => x.TrimStart().StartsWith('✓'))} steps had finished");
        if (p.Err.Length > 0)
        {
            log.WriteLine("  stderr: " + p.Err.Trim().Replace("\n", "\n  stderr: ", StringComparison.Ordinal));
        }

        Assert.DoesNotContain("internal error", p.Err, StringComparison.Ordinal);
        return true;
    }

    private static async Task AssertChainsIntactAsync(Workspace w)
    {
        var audit = await CliRunner.RunAsync("audit", "verify", "--all", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, "audit verify --all after a kill\n" + audit);
    }

    private static async Task<int> CountCompletedAsync(Workspace w)
        => (await CliRunner.RunExpectingAsync(0, "jobs", "--status", "completed", "--json", "--db", w.Db)).Json().GetArrayLength();

    private async Task AssertOutcomeAsync(Workspace w, List<string> jobs)
    {
        var listed = (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray().ToList();
        Assert.Equal(jobs.Order(StringComparer.Ordinal), listed.Select(j => j.GetProperty("job_id").GetString()!).Order(StringComparer.Ordinal));
        Assert.All(listed, j => Assert.True(j.GetProperty("status").GetString() == "completed", $"job {j.GetProperty("job_id")} is {j.GetProperty("status")}: {j}"));

        var effects = ReadEffects(w, out var calls);
        Assert.Equal(jobs.Count * (Steps + LoopVisits - 1), effects.Count);
        log.WriteLine($"{effects.Count} effects, {calls} calls: {calls - effects.Count} repeated calls were absorbed by their idempotency keys");
        Assert.True(calls >= effects.Count);

        foreach (var job in jobs)
        {
            var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--json", "--db", w.Db)).JsonLines();
            var succeeded = events.Where(e => Type(e) == "StepSucceeded").Select(e => (Step: e.GetProperty("step_id").GetString()!, Visit: e.GetProperty("visit").GetInt32())).ToList();
            var twice = succeeded.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => $"{g.Key.Step}#{g.Key.Visit} x{g.Count()}").ToList();
            Assert.True(twice.Count == 0, $"job {job}: step visits that succeeded more than once: {string.Join(", ", twice)}");
            Assert.Equal(Steps + LoopVisits - 1 + Transforms, succeeded.Count);
            Assert.Equal(LoopVisits, succeeded.Count(s => s.Step == StepId(LoopStep)));

            // The transforms, written several to a commit where they follow each other, each counted once.
            var tally = events.Last(e => Type(e) == "StepSucceeded" && e.GetProperty("step_id").GetString()!.StartsWith('x'));
            Assert.Equal(Transforms, tally.GetProperty("payload").GetProperty("output").GetProperty("tally").GetInt32());

            // Every effect of the job belongs to a call the log recorded, and every step visit has exactly one effect.
            var mine = effects.Where(e => e.JobId == job).ToList();
            var perStep = mine.GroupBy(e => e.Step).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            for (var i = 1; i <= Steps; i++)
            {
                Assert.True(perStep.GetValueOrDefault(StepId(i)) == (i == LoopStep ? LoopVisits : 1), $"job {job}: step {StepId(i)} has {perStep.GetValueOrDefault(StepId(i))} effects");
            }

            var requested = events.Where(e => Type(e) == "ToolCallRequested").Select(e => e.GetProperty("payload").GetProperty("idempotency_key").GetString()!).ToHashSet(StringComparer.Ordinal);
            Assert.True(requested.SetEquals(mine.Select(e => e.Key)), $"job {job}: the effects' idempotency keys differ from the calls in the log");
        }
    }

    private static string Type(JsonElement e) => e.GetProperty("type").GetString()!;

    private static List<(string Key, string JobId, string Step)> ReadEffects(Workspace w, out long calls)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = w.PathOf("data/effects.db"), Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT n FROM calls";
        calls = (long)cmd.ExecuteScalar()!;
        cmd.CommandText = "SELECT idempotency_key, job_id, step FROM effects";
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string, string)>();
        while (r.Read()) list.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        return list;
    }

    /// <summary>Writes ordo.yaml, the effect tool, its database script and the long workflow; returns the workflow's path.</summary>
    private static string WriteProject(Workspace w)
    {
        w.Write("ordo.yaml", """
            tools: [tools.yaml]
            connections:
              effects: { sqlite: data/effects.db, init: data/effects.sql }

            """);
        w.Write("data/effects.sql", """
            CREATE TABLE effects(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, step TEXT NOT NULL, n INTEGER NOT NULL);
            CREATE TABLE calls(n INTEGER NOT NULL);
            INSERT INTO calls(n) VALUES (0);

            """);
        // One statement batch: the effect, made idempotent by its key, and a count of every call, repeated or not.
        w.Write("tools.yaml", """
            tools:
              effect.write:
                kind: sql
                connection: effects
                effect: write
                query: "INSERT INTO effects(idempotency_key, job_id, step, n) VALUES (@idempotency_key, @job_id, @step, @n) ON CONFLICT(idempotency_key) DO NOTHING; UPDATE calls SET n = n + 1"
                args: { type: object, required: [step, n], properties: { step: { type: string }, n: { type: integer } } }

            """);

        var yaml = new StringBuilder("ordo: 1\nworkflow: crash-chain\nversion: 1\nartifacts:\n  tally: { schema: { type: integer } }\nsteps:\n");
        for (var i = 1; i <= Steps; i++)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  - id: {StepId(i)}\n    tool: effect.write\n    args: {{ step: {StepId(i)}, n: {i} }}\n");
            if (i % 5 == 2)
            {
                yaml.Append(CultureInfo.InvariantCulture, $"    next: x{i:00}1\n");
                for (var t = 1; t <= TransformRun; t++)
                {
                    var next = t < TransformRun ? $"x{i:00}{t + 1}" : StepId(i + 1);
                    yaml.Append(CultureInfo.InvariantCulture, $"  - id: x{i:00}{t}\n    transform: {{ set: {{ tally: \"${{ (artifacts.tally ?? 0) + 1 }}\" }} }}\n    next: {next}\n");
                }
            }
            else if (i == LoopStep)
            {
                // A bounded loop: the step is visited three times, each visit with its own idempotency key.
                yaml.Append(CultureInfo.InvariantCulture, $"    loop: {{ max_iterations: {LoopVisits} }}\n    next:\n      - {{ when: \"steps.{StepId(i)}.visit < {LoopVisits}\", to: {StepId(i)} }}\n      - {{ to: {StepId(i + 1)} }}\n");
            }
            else
            {
                yaml.Append(CultureInfo.InvariantCulture, $"    next: {(i == Steps ? "end" : StepId(i + 1))}\n");
            }
        }

        return w.Write("crash-chain.yaml", yaml.ToString());
    }

    private static string StepId(int i) => $"s{i:00}";

    private static int? EnvInt(string name)
        => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
}

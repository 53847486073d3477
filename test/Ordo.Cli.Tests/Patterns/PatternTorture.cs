using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;
using Xunit.Abstractions;

namespace Ordo.Cli.Tests.Patterns;

/// <summary>The pattern crash tests run one at a time: each starts and kills real processes and needs the CPU to itself to keep its timing.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PatternCrashRuns
{
    public const string Name = "pattern crash runs";
}

/// <summary>A step visit in a job's log: its scope (null at top level), step id and visit.</summary>
internal readonly record struct VisitRef(string? Scope, string Step, int Visit)
{
    public override string ToString() => $"{(Scope is null ? "" : Scope + "/")}{Step}#{Visit}";
}

/// <summary>What the log and the effect database held right after one SIGKILL.</summary>
/// <param name="What">Which process was killed, and when.</param>
/// <param name="Succeeded">Step visits that had succeeded.</param>
/// <param name="Started">StepStarted events per step visit.</param>
/// <param name="Calls">Executions of the effect tool per idempotency key (the append-only counter table).</param>
/// <param name="EndedBranches">Branch scopes of the coordinating step that had ended, with their status.</param>
internal sealed record KillSnapshot(string What, HashSet<VisitRef> Succeeded, Dictionary<VisitRef, int> Started, Dictionary<string, int> Calls, Dictionary<string, string> EndedBranches);

/// <summary>
/// The machinery of the pattern crash tests: a project with a side-effect SQL tool (idempotent by its key, plus an
/// append-only counter of every execution), real <c>ordo</c> processes killed with SIGKILL at random points, and a
/// snapshot of the log and of the effects after each kill, so that the end state can be compared with every kill.
/// </summary>
internal sealed class PatternTorture(ITestOutputHelper log, Workspace w, Random random)
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    public List<KillSnapshot> Snapshots { get; } = [];

    /// <summary>ORDO_TORTURE_SCALE (default 1).</summary>
    public static int Scale => EnvInt("ORDO_TORTURE_SCALE") is { } s and > 0 ? s : 1;

    /// <summary>ORDO_TORTURE_SEED, or a fresh seed.</summary>
    public static int Seed => EnvInt("ORDO_TORTURE_SEED") ?? Random.Shared.Next();

    /// <summary>
    /// Runs a torture with this run's scale and a seeded random source, logging how to replay it; a failure names the
    /// seed and scale that reproduce it.
    /// </summary>
    public static async Task RunSeededAsync(ITestOutputHelper log, string name, Func<int, Random, Task> torture)
    {
        var scale = Scale;
        var seed = Seed;
        log.WriteLine($"{name}: scale {scale}, seed {seed} (replay with ORDO_TORTURE_SEED={seed} ORDO_TORTURE_SCALE={scale})");
        try
        {
            await torture(scale, new Random(seed));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"{name} failed with seed {seed} (replay with ORDO_TORTURE_SEED={seed} ORDO_TORTURE_SCALE={scale}): {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes ordo.yaml (the test plugin, tools.yaml, the <c>effects</c> connection) and the effect database, created
    /// here so that a kill can never leave it half-initialized. <c>effect.write(item, index)</c> inserts its effect with
    /// <c>INSERT OR IGNORE</c> keyed by <c>@idempotency_key</c>, appends one row to <c>calls</c> on every execution
    /// (repeated or not), then spins for about 100 ms (so that kills often land between the effect and the step's
    /// commit, where only the idempotency key prevents a second effect), and returns <c>{ rows: [ { item, idx, spin } ] }</c>.
    /// </summary>
    public void WriteProject()
    {
        w.Write("ordo.yaml", $$"""
            tools: [tools.yaml]
            plugins: ["{{TestPaths.TestPluginDll}}"]
            connections:
              effects: { sqlite: data/effects.db }

            """);
        w.Write("tools.yaml", """
            tools:
              effect.write:
                kind: sql
                connection: effects
                effect: write
                query: "INSERT OR IGNORE INTO effects(idempotency_key, item, idx) VALUES (@idempotency_key, @item, @index); INSERT INTO calls(idempotency_key, item) VALUES (@idempotency_key, @item); SELECT @item AS item, @index AS idx, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT max(x) FROM c) AS spin"
                args: { type: object, required: [item, index], properties: { item: { type: string }, index: { type: integer } } }

            """);
        Directory.CreateDirectory(w.PathOf("data"));
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = """
            CREATE TABLE effects(idempotency_key TEXT PRIMARY KEY, item TEXT NOT NULL, idx INTEGER NOT NULL);
            CREATE TABLE calls(id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL, item TEXT NOT NULL);
            """;
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Starts <c>ordo run</c>, then kills and restarts (<c>ordo resume</c>) up to <paramref name="kills"/> times at
    /// random points, snapshotting after every kill; finally resumes to the end. Returns the job id.
    /// </summary>
    /// <param name="coordinator">The coordinating step whose branches are snapshotted.</param>
    /// <param name="maxSteps">The largest number of finished steps a kill waits for.</param>
    public async Task<string> RunWithKillsAsync(string[] runArgs, int kills, string coordinator, int maxSteps)
    {
        string job;
        var killed = 0;
        using (var run = OrdoProcess.Start(w.Root, ["run", .. runArgs, "--db", w.Db, "--workers", "3"]))
        {
            Assert.True(await run.WaitForOutputAsync(l => l.Count > 0, Patience), "ordo run printed nothing\n" + run.Err);
            Assert.StartsWith("ordo: running job ", run.OutLines[0], StringComparison.Ordinal);
            job = run.OutLines[0]["ordo: running job ".Length..].Split(' ')[0];
            if (await KillAtRandomPointAsync(run, "run", maxSteps))
            {
                killed++;
                await SnapshotAsync(job, "run", coordinator);
            }
        }

        for (var round = 1; round <= kills && !await CompletedAsync(job); round++)
        {
            var workers = random.Next(1, 5).ToString(CultureInfo.InvariantCulture);
            using var resume = OrdoProcess.Start(w.Root, "resume", "--db", w.Db, "--workers", workers);
            var what = $"resume #{round} ({workers} workers)";
            if (await KillAtRandomPointAsync(resume, what, maxSteps))
            {
                killed++;
                await SnapshotAsync(job, what, coordinator);
            }
        }

        Assert.True(killed > 0, "no process was killed while it had work to do");
        var final = await OrdoProcess.RunAsync(w.Root, Patience, "resume", "--db", w.Db);
        Assert.True(final.ExitCode == 0, "final resume\n" + final);
        log.WriteLine($"{killed} kills; final resume: {(final.OutLines.Count > 0 ? final.OutLines[^1] : "")}");
        return job;
    }

    /// <summary>Kills the process after a random number of finished steps or after a random time; false when it ended by itself first.</summary>
    private async Task<bool> KillAtRandomPointAsync(OrdoProcess p, string what, int maxSteps)
    {
        bool due;
        string trigger;
        if (random.Next(3) == 0)
        {
            var ms = random.Next(300, 1800);
            trigger = $"{ms} ms after start";
            await Task.WhenAny(p.ExitedAsync(), Task.Delay(ms));
            due = !p.HasExited;
        }
        else
        {
            var steps = random.Next(1, maxSteps + 1);
            var extraMs = random.Next(0, 150);
            trigger = $"after {steps} steps + {extraMs} ms";
            due = await p.WaitForOutputAsync(l => Finished(l) >= steps, Patience);
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
        log.WriteLine($"{what}: SIGKILL {trigger}; {Finished(p.OutLines)} steps had finished");
        Assert.DoesNotContain("internal error", p.Err, StringComparison.Ordinal);
        return true;
    }

    private static int Finished(IReadOnlyList<string> lines) => lines.Count(x => x.TrimStart().StartsWith('✓'));

    private async Task SnapshotAsync(string job, string what, string coordinator)
    {
        var audit = await CliRunner.RunAsync("audit", "verify", "--all", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, $"audit verify --all after the kill of {what}\n{audit}");
        var events = await EventsAsync(job);
        Snapshots.Add(new KillSnapshot(
            what,
            events.Where(e => Type(e) == "StepSucceeded").Select(Visit).ToHashSet(),
            StartedCounts(events),
            CallsPerKey(),
            EndedBranches(events, coordinator)));
    }

    public async Task<IReadOnlyList<JsonElement>> EventsAsync(string job)
        => (await CliRunner.RunExpectingAsync(0, "events", job, "--json", "--db", w.Db)).JsonLines();

    public async Task<bool> CompletedAsync(string job)
        => (await CliRunner.RunExpectingAsync(0, "jobs", "--json", "--db", w.Db)).Json().EnumerateArray()
            .Any(j => j.GetProperty("job_id").GetString() == job && j.GetProperty("status").GetString() == "completed");

    public static string Type(JsonElement e) => e.GetProperty("type").GetString()!;

    public static VisitRef Visit(JsonElement e)
        => new(e.TryGetProperty("scope", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null, e.GetProperty("step_id").GetString()!, e.TryGetProperty("visit", out var v) ? v.GetInt32() : 1);

    public static Dictionary<VisitRef, int> StartedCounts(IEnumerable<JsonElement> events)
        => events.Where(e => Type(e) == "StepStarted").GroupBy(Visit).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>The branches of <paramref name="coordinator"/> that ended, by label, with their status.</summary>
    public static Dictionary<string, string> EndedBranches(IEnumerable<JsonElement> events, string coordinator)
        => events.Where(e => Type(e) == "BranchEnded" && e.GetProperty("step_id").GetString() == coordinator)
            .ToDictionary(e => e.GetProperty("payload").GetProperty("label").GetString()!, e => e.GetProperty("payload").GetProperty("status").GetString()!, StringComparer.Ordinal);

    /// <summary>
    /// The checks shared by the pattern crash tests: no step visit succeeded twice; every step visit that had succeeded
    /// at a kill was never started again, and its effect never executed again, after that kill; every branch that had
    /// ended at a kill ended once and ran nothing more in its scope; every effect is applied exactly once and belongs
    /// to a call of the log; every hash chain is intact.
    /// </summary>
    public async Task AssertCommonAsync(string job, IReadOnlyList<JsonElement> events, string coordinator, string coordinatorScope)
    {
        var succeeded = events.Where(e => Type(e) == "StepSucceeded").Select(Visit).ToList();
        var twice = succeeded.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => $"{g.Key} x{g.Count()}").ToList();
        Assert.True(twice.Count == 0, $"step visits that succeeded more than once: {string.Join(", ", twice)}");

        var started = StartedCounts(events);
        var calls = CallsPerKey();
        var requested = events.Where(e => Type(e) == "ToolCallRequested").ToList();
        var keyOf = requested.GroupBy(Visit).ToDictionary(g => g.Key, g => g.Select(e => e.GetProperty("payload").GetProperty("idempotency_key").GetString()!).ToHashSet(StringComparer.Ordinal));
        var branchesAtEnd = events.Where(e => Type(e) == "BranchEnded" && e.GetProperty("step_id").GetString() == coordinator).ToList();
        Assert.True(branchesAtEnd.GroupBy(e => e.GetProperty("payload").GetProperty("label").GetString()).All(g => g.Count() == 1), "a branch ended more than once");

        foreach (var snap in Snapshots)
        {
            foreach (var v in snap.Succeeded)
            {
                Assert.True(started.GetValueOrDefault(v) == snap.Started.GetValueOrDefault(v),
                    $"{v} had succeeded before the kill of {snap.What} ({snap.Started.GetValueOrDefault(v)} starts) but was started again after it ({started.GetValueOrDefault(v)} starts)");
                foreach (var key in keyOf.GetValueOrDefault(v) ?? [])
                {
                    Assert.True(calls.GetValueOrDefault(key) == snap.Calls.GetValueOrDefault(key),
                        $"the effect of {v} (key {key}) had been made before the kill of {snap.What} ({snap.Calls.GetValueOrDefault(key)} executions) but ran again after it ({calls.GetValueOrDefault(key)} executions)");
                }
            }

            // A branch that had ended runs nothing more: no step in its scope starts after the kill.
            foreach (var (label, status) in snap.EndedBranches)
            {
                var scope = $"{coordinatorScope}/{label}";
                var before = snap.Started.Where(kv => InScope(kv.Key, scope)).Sum(kv => kv.Value);
                var after = started.Where(kv => InScope(kv.Key, scope)).Sum(kv => kv.Value);
                Assert.True(before == after, $"branch {label} had ended ({status}) before the kill of {snap.What} with {before} step starts, but has {after} now");
            }
        }

        // Each effect once, and only the effects of calls the log recorded.
        var effects = ReadEffects();
        var keys = requested.Select(e => e.GetProperty("payload").GetProperty("idempotency_key").GetString()!).ToHashSet(StringComparer.Ordinal);
        Assert.True(keys.SetEquals(effects.Select(e => e.Key)), $"the effects' idempotency keys differ from the calls in the log:\nlog: {string.Join(", ", keys.Order(StringComparer.Ordinal))}\neffects: {string.Join(", ", effects.Select(e => e.Key).Order(StringComparer.Ordinal))}");
        var totalCalls = calls.Values.Sum();
        log.WriteLine($"{effects.Count} effects, {totalCalls} executions: {totalCalls - effects.Count} repeated executions were absorbed by their idempotency keys; {Snapshots.Count} snapshots");
        Assert.True(totalCalls >= effects.Count);

        var audit = await OrdoProcess.RunAsync(w.Root, Patience, "audit", "verify", "--all", "--db", w.Db);
        Assert.True(audit.ExitCode == 0, "audit verify --all\n" + audit);
    }

    private static bool InScope(VisitRef v, string scope)
        => v.Scope is { } s && (s == scope || s.StartsWith(scope + "/", StringComparison.Ordinal));

    /// <summary>The effects, once each: idempotency key, item, index.</summary>
    public List<(string Key, string Item, long Index)> ReadEffects()
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT idempotency_key, item, idx FROM effects ORDER BY idx, item";
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string, long)>();
        while (r.Read()) list.Add((r.GetString(0), r.GetString(1), r.GetInt64(2)));
        return list;
    }

    /// <summary>Executions of the effect tool per idempotency key.</summary>
    public Dictionary<string, int> CallsPerKey()
    {
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT idempotency_key, COUNT(*) FROM calls GROUP BY idempotency_key";
        using var r = cmd.ExecuteReader();
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        while (r.Read()) map[r.GetString(0)] = r.GetInt32(1);
        return map;
    }

    /// <summary>
    /// Opens the effects database. Reads use a read-write connection too: after a SIGKILL of the process that was
    /// writing it, SQLite must recover its WAL index before anyone reads, which a read-only connection cannot do.
    /// </summary>
    private SqliteConnection Open()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = w.PathOf("data/effects.db"),
            Pooling = false,
            Mode = SqliteOpenMode.ReadWriteCreate,
        }.ToString());
        c.Open();
        return c;
    }

    private static int? EnvInt(string name)
        => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
}

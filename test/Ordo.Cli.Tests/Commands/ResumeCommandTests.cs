using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

public sealed class ResumeCommandTests
{
    [Fact]
    public async Task Resume_ManyJobsCallingAToolWhoseDatabaseDoesNotExistYet_AllComplete()
    {
        // Regression: the database of a sql connection with `init:` was visible to other workers before its script
        // had committed, and their first calls failed with "no such table".
        using var w = Workspace.Create();
        w.Write("ordo.yaml", """
            tools: [tools.yaml]
            connections:
              notes: { sqlite: data/notes.db, init: data/notes.sql }

            """);
        // The script seeds some data, so that it takes a moment: long enough for the workers to meet.
        w.Write("data/notes.sql", """
            CREATE TABLE notes(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, text TEXT NOT NULL);
            CREATE TABLE seed(n INTEGER NOT NULL);
            WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 200000) INSERT INTO seed(n) SELECT n FROM c;

            """);
        w.Write("tools.yaml", """
            tools:
              notes.add:
                kind: sql
                connection: notes
                effect: write
                query: "INSERT INTO notes(idempotency_key, job_id, text) VALUES (@idempotency_key, @job_id, @text) ON CONFLICT(idempotency_key) DO NOTHING"
                args: { type: object, required: [text], properties: { text: { type: string } } }

            """);
        var workflow = w.Write("notes.yaml", """
            ordo: 1
            workflow: notes
            version: 1
            steps:
              - { id: first, tool: notes.add, args: { text: one }, next: second }
              - { id: second, tool: notes.add, args: { text: two } }

            """);

        const int jobs = 8;
        for (var i = 0; i < jobs; i++)
        {
            await CliRunner.RunExpectingAsync(0, "submit", workflow, "--db", w.Db);
        }

        var r = await CliRunner.RunExpectingAsync(0, "resume", "--workers", jobs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", "--db", w.Db);
        Assert.Equal(jobs, r.Json().GetProperty("jobs").GetProperty("completed").GetInt32());
        Assert.Empty(Directory.GetFiles(w.PathOf("data"), "notes.db.init-*"));
    }

    [Fact]
    public async Task Resume_NothingToDo_ExitsZero()
    {
        using var w = Workspace.WithSample();
        await CliRunner.RunExpectingAsync(0, SampleJob.Args(w, "run", "--quiet"));
        var before = w.DbFingerprint();
        var r = await CliRunner.RunExpectingAsync(0, "resume", "--db", w.Db);
        Assert.Contains("0 step attempts", r.Out, StringComparison.Ordinal);
        Assert.Contains("1 completed", r.Out, StringComparison.Ordinal);
        Assert.Equal(before, w.DbFingerprint());
    }
}

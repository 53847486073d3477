using Microsoft.Data.Sqlite;
using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Tools;
using Ordo.Workflows;

namespace Ordo.Sqlite.Tests;

/// <summary>
/// <c>sql</c> tools against real SQLite files, run by a runtime on a real job store, with hostile statements: a query
/// that never ends stops at its timeout or when its run or job is cancelled; a statement cannot reach beyond its
/// database (ATTACH of the job store, VACUUM INTO a file, PRAGMAs, temporary triggers, extensions); a read tool
/// cannot write, dry run or not; results are bounded. Each test ends by showing that the job store and the pooled
/// tool connection still work.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "xunit disposes the store and the runtime through IAsyncLifetime")]
public sealed class SqlToolTests : IAsyncLifetime
{
    /// <summary>Only a guard against a hang: none of these runs comes close to it.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    private const string Endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-sqltool-" + Guid.NewGuid().ToString("N"));
    private Storage.IOrdoStore _store = null!;
    private OrdoRuntime _runtime = null!;

    private string Db => Path.Combine(_dir, "ordo.db");
    private string Ledger => Path.Combine(_dir, "data", "ledger.db");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _store = new SqliteOrdoStore(Db);
        await _store.InitializeAsync();
        _runtime = NewRuntime(TimeSpan.FromSeconds(10));
    }

    public async Task DisposeAsync()
    {
        await _runtime.DisposeAsync();
        await _store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private OrdoRuntime NewRuntime(TimeSpan shutdownGrace, TimeSpan? leaseDuration = null) => new(_store,
        new OrdoRuntimeOptions
        {
            Workers = 2, PollInterval = TimeSpan.FromMilliseconds(5), ShutdownGrace = shutdownGrace, LeaseDuration = leaseDuration ?? TimeSpan.FromSeconds(30),
        },
        new OrdoComponents { SqlConnections = { new SqliteConnectionFactory() } });

    /// <summary>
    /// Writes a project whose ledger has one journal row, the tools <c>journal.count</c> (read) and
    /// <c>journal.post</c> (write) beside <paramref name="tools"/>, and a workflow of one step per tool named.
    /// </summary>
    private async Task<Dictionary<string, WorkflowDefinition>> ProjectAsync(string tools, params string[] workflowsOfTools)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "ordo.yaml"), "tools: [tools.yaml]\nconnections: { ledger: { sqlite: data/ledger.db, init: ledger.sql } }\n");
        await File.WriteAllTextAsync(Path.Combine(_dir, "ledger.sql"), "CREATE TABLE journal(k TEXT PRIMARY KEY, amount INTEGER);\nINSERT INTO journal VALUES ('a', 1);\n");
        await File.WriteAllTextAsync(Path.Combine(_dir, "tools.yaml"), $$"""
            tools:
              journal.count: { kind: sql, connection: ledger, effect: read, query: "SELECT count(*) AS n FROM journal" }
              journal.post: { kind: sql, connection: ledger, effect: write, query: "INSERT OR IGNORE INTO journal(k, amount) VALUES (@idempotency_key, 5)" }
            {{tools}}
            """);
        var result = new Dictionary<string, WorkflowDefinition>(StringComparer.Ordinal);
        foreach (var tool in workflowsOfTools.Append("journal.count").Append("journal.post").Distinct(StringComparer.Ordinal))
        {
            var file = Path.Combine(_dir, tool + ".yaml");
            await File.WriteAllTextAsync(file, $"ordo: 1\nworkflow: w-{tool.Replace('.', '-')}\nversion: 1\nsteps:\n  - {{ id: call, tool: {tool} }}\n");
            result[tool] = await WorkflowLoader.LoadFileAsync(file, options: _runtime.LoadOptions);
        }

        return result;
    }

    private async Task<(JobState State, List<EventEnvelope> Events)> RunAsync(WorkflowDefinition workflow, bool dryRun = false)
    {
        var job = await _runtime.SubmitAsync(workflow, null, new SubmitOptions { DryRun = dryRun });
        await _runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true }).WaitAsync(HangGuard);
        return ((await _runtime.GetStateAsync(job.JobId))!, await EventsAsync(job.JobId));
    }

    private async Task<List<EventEnvelope>> EventsAsync(JobId job)
    {
        var list = new List<EventEnvelope>();
        await foreach (var e in _store.ReadEventsAsync(job)) list.Add(e);
        return list;
    }

    private long JournalRows()
    {
        using var db = new SqliteConnection($"Data Source={Ledger};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM journal";
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>
    /// The job store and the pooled tool connections work after what a test did: every job's log is intact, a read and
    /// a write through the same pools succeed (no guard, cancelled token or transaction was left on them).
    /// </summary>
    private async Task AssertStoreAndConnectionsIntactAsync(Dictionary<string, WorkflowDefinition> workflows, long journalRowsBefore)
    {
        var read = await RunAsync(workflows["journal.count"]);
        Assert.True(read.State.Status == JobStatus.Completed, read.State.Reason);
        Assert.Equal(journalRowsBefore, Succeeded(read.Events).GetProperty("rows")[0].GetProperty("n").GetInt64());
        var write = await RunAsync(workflows["journal.post"]);
        Assert.True(write.State.Status == JobStatus.Completed, write.State.Reason);
        Assert.Equal(journalRowsBefore + 1, JournalRows());
        foreach (var job in await _store.ListJobsAsync(new Storage.JobQuery()))
        {
            Assert.True((await AuditVerifier.VerifyAsync(_store, job.JobId)).Intact, $"the log of job {job.JobId} is not intact");
        }
    }

    private static System.Text.Json.JsonElement Succeeded(List<EventEnvelope> events)
        => events.Single(e => e.Type == EventTypes.ToolCallSucceeded).GetPayload<ToolCallSucceededPayload>().Result!.Value;

    private static ToolCallFailedPayload Failed(List<EventEnvelope> events)
        => events.Last(e => e.Type == EventTypes.ToolCallFailed).GetPayload<ToolCallFailedPayload>();

    [Fact]
    public async Task AnEndlessRecursiveQuery_WithTimeout2s_IsInterruptedAtItsTimeout_AndFailsAsTimeout()
    {
        var workflows = await ProjectAsync($"""
              slow.count: {"{"} kind: sql, connection: ledger, effect: read, timeout: 2s, retry: {"{"} max_attempts: 1 {"}"}, query: "{Endless}" {"}"}
            """, "slow.count");

        var (state, events) = await RunAsync(workflows["slow.count"]);

        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = Failed(events);
        Assert.Equal(("timeout", "slow.count", true, 1), (failed.Error, failed.Tool, failed.Retryable, failed.Attempts));
        Assert.Contains("'slow.count'", failed.Message, StringComparison.Ordinal);
        Assert.Contains("timeout of 2s", failed.Message, StringComparison.Ordinal);
        Assert.Contains("timeout of 2s", state.Reason, StringComparison.Ordinal);
        // The interrupted connection went back to its pool clean: its cancelled token no longer stops statements.
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Fact]
    public async Task AnEndlessQuery_IsInterruptedWhenItsRunIsStopped_AndItsJobCanBeResumed()
    {
        // The tool's own timeout is far away: only the stop (what SIGTERM does to `ordo run`) can end the statement.
        // (effect: write, so that the call is in the log before the statement starts.)
        var workflows = await ProjectAsync($"""
              forever: {"{"} kind: sql, connection: ledger, effect: write, timeout: 10m, query: "{Endless}" {"}"}
            """, "forever");
        await using var runtime = NewRuntime(TimeSpan.FromMilliseconds(200));
        var job = await runtime.SubmitAsync(workflows["forever"], null);
        using var stop = new CancellationTokenSource();
        var run = runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true }, stop.Token);
        await WaitForEventAsync(job.JobId, EventTypes.ToolCallRequested);

        await stop.CancelAsync();
        var summary = await run.WaitAsync(HangGuard);

        Assert.True(summary.Stopped);
        var state = (await runtime.GetStateAsync(job.JobId))!;
        Assert.False(state.Status.IsTerminal(), $"the stopped job ended as {state.Status}: it should wait for a resume");
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Fact]
    public async Task AnEndlessQuery_IsInterruptedWhenItsJobIsCancelled()
    {
        var workflows = await ProjectAsync($"""
              forever: {"{"} kind: sql, connection: ledger, effect: write, timeout: 10m, query: "{Endless}" {"}"}
            """, "forever");
        // A running step learns that its job was cancelled when its lease is renewed (every third of the lease).
        await using var runtime = NewRuntime(TimeSpan.FromSeconds(10), leaseDuration: TimeSpan.FromSeconds(1.5));
        var job = await runtime.SubmitAsync(workflows["forever"], null);
        var run = runtime.RunAsync(new RunRequest { RootJobId = job.JobId, UntilIdle = true });
        await WaitForEventAsync(job.JobId, EventTypes.ToolCallRequested);

        Assert.True(await runtime.CancelAsync(job.JobId, "enough", "alice"));
        await run.WaitAsync(HangGuard);

        Assert.Equal(JobStatus.Cancelled, (await runtime.GetStateAsync(job.JobId))!.Status);
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    private async Task WaitForEventAsync(JobId job, string type)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!(await EventsAsync(job)).Any(e => e.Type == type))
        {
            await Task.Delay(20, guard.Token);
        }

        // The call is recorded just before the statement starts; give it a moment to be inside SQLite.
        await Task.Delay(200, guard.Token);
    }

    /// <summary>A call of <paramref name="tool"/> straight through the executor, without a gateway around it.</summary>
    private ValueTask<System.Text.Json.JsonElement> CallDirectlyAsync(SqlToolExecutor executor, ToolDefinition tool, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Ledger)!);
        var project = new Configuration.ProjectDefinition
        {
            BaseDirectory = _dir,
            Connections = new Dictionary<string, Configuration.ConnectionDefinition>
            {
                ["ledger"] = new() { Name = "ledger", Provider = "sqlite", Target = Ledger, InitSql = "CREATE TABLE journal(k TEXT PRIMARY KEY, amount INTEGER);" },
            },
        };
        return executor.ExecuteAsync(new ToolInvocation
        {
            Tool = tool, Args = Json.Of(new { }), IdempotencyKey = "k", JobId = JobId.New(DateTimeOffset.UnixEpoch), Tenant = "default", Project = project,
        }, cancellationToken);
    }

    [Fact]
    public async Task TheExecutorKeepsTheToolsTimeoutByItself_AndTheInterruptedConnectionServesTheNextCall()
    {
        var executor = new SqlToolExecutor([new SqliteConnectionFactory()]);
        var slow = new ToolDefinition { Name = "slow.count", Kind = "sql", Effect = ToolEffect.Read, Connection = "ledger", Query = Endless, Timeout = TimeSpan.FromMilliseconds(300) };

        var e = await Assert.ThrowsAsync<ToolExecutionException>(() => CallDirectlyAsync(executor, slow, CancellationToken.None).AsTask().WaitAsync(HangGuard));

        Assert.Equal(("timeout", true), (e.Error, e.Retryable));
        Assert.Equal("sql tool 'slow.count' did not finish within its timeout of 300ms; its statement was interrupted", e.Message);
        var quick = new ToolDefinition { Name = "quick", Kind = "sql", Effect = ToolEffect.Read, Connection = "ledger", Query = "SELECT 42 AS n" };
        Assert.Equal(42, (await CallDirectlyAsync(executor, quick, CancellationToken.None)).GetProperty("rows")[0].GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task ACancelledCall_IsInterrupted_AndEndsAsCancelled()
    {
        var executor = new SqlToolExecutor([new SqliteConnectionFactory()]);
        var slow = new ToolDefinition { Name = "slow.count", Kind = "sql", Effect = ToolEffect.Read, Connection = "ledger", Query = Endless, Timeout = TimeSpan.FromMinutes(10) };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        // The statement blocks the calling thread inside SQLite: run it on another, as a worker would.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Run(() => CallDirectlyAsync(executor, slow, cancel.Token).AsTask()).WaitAsync(HangGuard));
    }

    public static TheoryData<string, string, string> Escapes => new()
    {
        // The attack as found: a read tool attaches the job store and reads every job.
        { "read", "ATTACH '{ordo.db}' AS store; SELECT count(*) AS n FROM store.jobs", "ATTACH is not allowed in a tool's statement" },
        { "write", "ATTACH '{ordo.db}' AS store; DELETE FROM store.jobs", "ATTACH is not allowed in a tool's statement" },
        { "write", "DETACH DATABASE main", "DETACH is not allowed in a tool's statement" },
        // VACUUM INTO writes a copy of the database wherever it is told, even from a read-only connection.
        { "read", "VACUUM INTO '{dir}/copy.db'", "VACUUM is not allowed in a tool's statement" },
        { "write", "VACUUM INTO '{dir}/copy.db'", "VACUUM is not allowed in a tool's statement" },
        { "write", "PRAGMA writable_schema = 1", "PRAGMA writable_schema is not allowed in a tool's statement" },
        { "write", "PRAGMA journal_mode = OFF", "PRAGMA journal_mode is not allowed in a tool's statement" },
        { "read", "SELECT file FROM pragma_database_list", "PRAGMA database_list is not allowed in a tool's statement" },
        // Temporary objects would stay on the pooled connection and act on the calls of other tools and tenants.
        { "write", "CREATE TEMP TRIGGER wipe AFTER INSERT ON journal BEGIN DELETE FROM journal; END", "a temporary table, view, trigger or index is not allowed" },
        { "write", "CREATE TEMP VIEW journal AS SELECT 'forged' AS k, 0 AS amount", "a temporary table, view, trigger or index is not allowed" },
        { "read", "CREATE TEMP TABLE t AS SELECT * FROM journal", "a temporary table, view, trigger or index is not allowed" },
        { "read", "SELECT load_extension('/tmp/evil.so')", "the function load_extension() is not allowed in a tool's statement" },
        { "write", "SELECT fts3_tokenizer('simple', x'0000000000000000')", "the function fts3_tokenizer() is not allowed in a tool's statement" },
    };

    [Theory]
    [MemberData(nameof(Escapes))]
    public async Task AStatementThatReachesBeyondItsDatabase_IsRefused_NotRetried_AndNamesWhatWasRefused(string effect, string query, string refused)
    {
        var workflows = await ProjectAsync($"""
              hostile: {"{"} kind: sql, connection: ledger, effect: {effect}, query: "{query.Replace("{ordo.db}", Db, StringComparison.Ordinal).Replace("{dir}", _dir, StringComparison.Ordinal)}" {"}"}
            """, "hostile");

        var (state, events) = await RunAsync(workflows["hostile"]);

        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = Failed(events);
        Assert.Equal(("not_allowed", false, 1), (failed.Error, failed.Retryable, failed.Attempts));
        Assert.StartsWith($"sql tool 'hostile': {refused}", failed.Message, StringComparison.Ordinal);
        Assert.Contains($"sql tool 'hostile': {refused}", state.Reason, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "copy.db")), "VACUUM INTO wrote its file");
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Theory]
    [InlineData("DELETE FROM journal", "DELETE", false)]
    [InlineData("DELETE FROM journal", "DELETE", true)]
    [InlineData("INSERT INTO journal VALUES ('b', 2)", "INSERT", false)]
    [InlineData("INSERT INTO journal VALUES ('b', 2)", "INSERT", true)]
    [InlineData("UPDATE journal SET amount = 0", "UPDATE", true)]
    [InlineData("CREATE TABLE stolen(x)", "CREATE", false)]
    [InlineData("CREATE TABLE stolen(x)", "CREATE", true)]
    [InlineData("DROP TABLE journal", "DROP", true)]
    public async Task AReadTool_CannotWrite_InARealRunOrADryRun(string query, string refused, bool dryRun)
    {
        var workflows = await ProjectAsync($"""
              sneaky: {"{"} kind: sql, connection: ledger, effect: read, query: "{query}" {"}"}
            """, "sneaky");

        var (state, events) = await RunAsync(workflows["sneaky"], dryRun);

        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = Failed(events);
        Assert.Equal(("not_allowed", false), (failed.Error, failed.Retryable));
        Assert.Equal($"sql tool 'sneaky': {refused} is not allowed: the tool is effect: read", failed.Message);
        Assert.Equal(1, JournalRows());
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Theory]
    [InlineData("INSERT INTO sqlite_master VALUES ('table', 'ghost', 'ghost', 0, 'CREATE TABLE ghost(x)')")]
    [InlineData("UPDATE sqlite_schema SET sql = 'CREATE TABLE journal(k)' WHERE name = 'journal'")]
    [InlineData("DELETE FROM sqlite_master")]
    public async Task AWriteTool_CannotWriteTheSchemaTable(string query)
    {
        var workflows = await ProjectAsync($"""
              forge: {"{"} kind: sql, connection: ledger, effect: write, query: "{query}" {"}"}
            """, "forge");

        var (state, events) = await RunAsync(workflows["forge"]);

        Assert.Equal(JobStatus.Failed, state.Status);
        Assert.False(Failed(events).Retryable);
        Assert.Contains("may not be modified", Failed(events).Message, StringComparison.Ordinal);
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Fact]
    public async Task TheAllowedPragmas_DescribeTheToolsSchema()
    {
        var workflows = await ProjectAsync("""
              columns: { kind: sql, connection: ledger, effect: read, query: "SELECT name FROM pragma_table_info('journal') ORDER BY cid" }
              info: { kind: sql, connection: ledger, effect: read, query: "PRAGMA table_info(journal)" }
            """, "columns", "info");

        var columns = await RunAsync(workflows["columns"]);
        var info = await RunAsync(workflows["info"]);

        Assert.True(columns.State.Status == JobStatus.Completed, columns.State.Reason);
        Assert.Equal(["k", "amount"], Succeeded(columns.Events).GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        Assert.True(info.State.Status == JobStatus.Completed, info.State.Reason);
        Assert.Equal(2, Succeeded(info.Events).GetProperty("rows").GetArrayLength());
    }

    [Fact]
    public async Task AStatementThatLeavesATransactionOpen_IsRolledBack_AndFailsTheCall()
    {
        var workflows = await ProjectAsync("""
              half: { kind: sql, connection: ledger, effect: write, query: "BEGIN; INSERT INTO journal VALUES ('b', 2)" }
            """, "half");

        var (state, events) = await RunAsync(workflows["half"]);

        Assert.Equal(JobStatus.Failed, state.Status);
        var failed = Failed(events);
        Assert.Equal(("sql_error", false), (failed.Error, failed.Retryable));
        Assert.Contains("sql tool 'half' left a transaction open", failed.Message, StringComparison.Ordinal);
        Assert.Equal(1, JournalRows());
        // The next write on the pooled connection commits on its own, not inside the abandoned transaction.
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Fact]
    public async Task MoreRowsThanMaxRows_FailTheCall_NamingTheLimitAndTheOption_WhileAsManyAsTheLimitPass()
    {
        var workflows = await ProjectAsync("""
              six: { kind: sql, connection: ledger, effect: read, max_rows: 5, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 6) SELECT x FROM c" }
              five: { kind: sql, connection: ledger, effect: read, max_rows: 5, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 5) SELECT x FROM c" }
              endless: { kind: sql, connection: ledger, effect: read, timeout: 1m, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c" }
            """, "six", "five", "endless");

        var six = await RunAsync(workflows["six"]);
        var five = await RunAsync(workflows["five"]);
        // Endless rows stop at the default limit, long before the timeout.
        var endless = await RunAsync(workflows["endless"]);

        Assert.Equal(JobStatus.Failed, six.State.Status);
        var failed = Failed(six.Events);
        Assert.Equal(("result_too_large", false, 1), (failed.Error, failed.Retryable, failed.Attempts));
        Assert.Equal("sql tool 'six' returned more rows than its limit, max_rows: 5 (raise max_rows on the tool, or narrow the query)", failed.Message);
        Assert.True(five.State.Status == JobStatus.Completed, five.State.Reason);
        Assert.Equal(5, Succeeded(five.Events).GetProperty("rows").GetArrayLength());
        Assert.Equal(JobStatus.Failed, endless.State.Status);
        Assert.Contains("max_rows: 10000", Failed(endless.Events).Message, StringComparison.Ordinal);
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }

    [Fact]
    public async Task AResultLargerThanMaxResultBytes_FailsTheCall_AsDoesOneHugeValue()
    {
        var workflows = await ProjectAsync("""
              wide: { kind: sql, connection: ledger, effect: read, max_result_bytes: 2000, query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100) SELECT x, printf('%.50c', 'y') AS pad FROM c" }
              huge: { kind: sql, connection: ledger, effect: read, query: "SELECT randomblob(50000000) AS b" }
              fits: { kind: sql, connection: ledger, effect: read, max_result_bytes: 2000, query: "SELECT printf('%.1000c', 'y') AS pad" }
            """, "wide", "huge", "fits");

        var wide = await RunAsync(workflows["wide"]);
        var huge = await RunAsync(workflows["huge"]);
        var fits = await RunAsync(workflows["fits"]);

        Assert.Equal(JobStatus.Failed, wide.State.Status);
        var failed = Failed(wide.Events);
        Assert.Equal(("result_too_large", false), (failed.Error, failed.Retryable));
        Assert.Equal("sql tool 'wide' returned a result larger than its limit, max_result_bytes: 2000 (2000 bytes of JSON; raise max_result_bytes on the tool, or narrow the query)", failed.Message);
        Assert.Equal(JobStatus.Failed, huge.State.Status);
        Assert.Contains("max_result_bytes: 4194304 (4 MiB of JSON", Failed(huge.Events).Message, StringComparison.Ordinal);
        Assert.True(fits.State.Status == JobStatus.Completed, fits.State.Reason);
        await AssertStoreAndConnectionsIntactAsync(workflows, 1);
    }
}

using Npgsql;
using Ordo.Cli.Tests.TestSupport;
using Ordo.Postgres.Tests;

namespace Ordo.Cli.Tests.ScaleOut;

/// <summary>
/// <c>ordo</c> on a PostgreSQL store it cannot or must not use, and decisions on jobs there: every refusal exits with the
/// code of its kind (2 for a connection string that cannot name an Ordo schema, 7 for a server or schema that cannot be
/// used), never 1, and says why without repeating a password.
/// </summary>
public sealed class PostgresCliTests : IDisposable
{
    private readonly string _schema = PostgresTestServer.NewSchema();

    private string ConnectionString => new NpgsqlConnectionStringBuilder(PostgresTestServer.ConnectionString) { SearchPath = _schema }.ConnectionString;

    public void Dispose() => PostgresTestServer.DropSchema(_schema);

    [Fact]
    public async Task AServerThatRequiresAPassword_WhenNoneIsGiven_Exits7_NamingHostAndPort()
    {
        await using var server = FakePostgresServer.RequiringAPassword();
        var r = await CliRunner.RunExpectingAsync(7, "jobs", "--postgres", $"Host=127.0.0.1;Port={server.Port};Username=ordo;Database=ordo;Timeout=10");
        Assert.Contains($"PostgreSQL at 127.0.0.1:{server.Port} requires a password and none was given", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", r.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pg_catalog", "'pg_catalog' is a schema of PostgreSQL itself")]
    [InlineData("pg_temp", "'pg_temp' is a schema of PostgreSQL itself")]
    [InlineData("pg_toast", "'pg_toast' is a schema of PostgreSQL itself")]
    [InlineData("pg_mine", "'pg_mine' is a schema of PostgreSQL itself")]
    [InlineData("information_schema", "'information_schema' is a schema of PostgreSQL itself")]
    [InlineData("a,b", "Search Path names 2 schemas (a, b): name exactly one")]
    public async Task ASearchPathThatCannotNameTheOrdoSchema_IsBadInput(string searchPath, string expected)
    {
        foreach (var command in new[] { new[] { "jobs" }, ["db", "migrate"] })
        {
            var r = await CliRunner.RunExpectingAsync(2, [.. command, "--postgres", $"{PostgresTestServer.ConnectionString};Search Path={searchPath}"]);
            Assert.Contains($"ordo: --postgres: {expected}", r.Err, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("installed_rank int, version varchar(50), description varchar(200), type varchar(20), script varchar(1000), checksum int, installed_by varchar(100), installed_on timestamp, execution_time int, success boolean")]
    [InlineData("id int")]
    public async Task ASchemaWithAnotherProgramsSchemaVersionTable_Exits7_NotAnOrdoSchema(string columns)
    {
        await ExecuteAsync($"CREATE SCHEMA \"{_schema}\"; CREATE TABLE \"{_schema}\".schema_version({columns})");
        foreach (var command in new[] { new[] { "jobs" }, ["db", "migrate"] })
        {
            var r = await CliRunner.RunExpectingAsync(7, [.. command, "--postgres", ConnectionString]);
            Assert.Contains("is not an Ordo schema: its schema_version table is another program's", r.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Approve_OnPostgres_SaysTheWorkersTakeTheJobUp_NotOrdoResume()
    {
        using var w = Workspace.WithSample("governed-payment");
        var job = await RunToApprovalAsync(w);
        await CliRunner.RunExpectingAsync(0, "approve", job, "--postgres", ConnectionString, "--as", "bob");
        var approved = await CliRunner.RunExpectingAsync(0, "approve", job, "--postgres", ConnectionString, "--as", "carol");
        Assert.Contains($"approved; the workers on this PostgreSQL store continue job {job} by themselves", approved.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("ordo resume", approved.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Approve_OnPostgres_OfAJobWhoseStoredDefinitionChanged_FailsItWithDefinitionChanged()
    {
        using var w = Workspace.WithSample("governed-payment");
        var job = await RunToApprovalAsync(w);
        // `args.amount >= 100` needs two approvers; >= 100000 would let the payment through without any.
        await ExecuteAsync($"UPDATE \"{_schema}\".definitions SET content = convert_to(replace(convert_from(content, 'UTF8'), '\\u003E= 100\\u0022', '\\u003E= 100000\\u0022'), 'UTF8')");

        var approved = await CliRunner.RunExpectingAsync(3, "approve", job, "--postgres", ConnectionString, "--as", "bob");
        Assert.Contains($"job {job} failed with definition_changed", approved.Err, StringComparison.Ordinal);
        var shown = (await CliRunner.RunExpectingAsync(0, "show", job, "--postgres", ConnectionString, "--json")).Json();
        Assert.Equal("failed", shown.GetProperty("status").GetString());
        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--postgres", ConnectionString, "--json")).JsonLines();
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "StepFailed" && e.GetProperty("payload").GetProperty("error").GetString() == "definition_changed");
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "JobFailed" && e.GetProperty("payload").GetProperty("error").GetString() == "definition_changed");
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() == "ApprovalDecided");
    }

    private async Task<string> RunToApprovalAsync(Workspace w)
    {
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--postgres", ConnectionString, "--as", "alice", "--json");
        return run.Json().GetProperty("job_id").GetString()!;
    }

    private static async Task ExecuteAsync(string sql)
    {
        await using var c = new NpgsqlConnection(PostgresTestServer.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }
}

using Ordo.Cli.Tests.Audit;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Replay;

/// <summary>
/// Export files as a replay reads and <c>ordo export</c> writes them: an edited event is refused by its hash chain,
/// a suite opens only its own regular files, and <c>--out</c> never replaces the database or a file that is not an export.
/// </summary>
public sealed class ExportFileTests
{
    [Fact]
    public async Task ADefinitionRowRewrittenAsText_IsReadAsItsBytes_AChangedOneIsDefinitionChanged()
    {
        using var w = Workspace.WithSample("governed-payment");
        var run = await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/pay.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json");
        var job = run.Json().GetProperty("job_id").GetString()!;

        // The same bytes stored as TEXT: the definition the job recorded, still.
        Execute(w.Db, "UPDATE definitions SET content = CAST(content AS TEXT)");
        Assert.Equal("text", Scalar(w.Db, "SELECT typeof(content) FROM definitions"));
        await CliRunner.RunExpectingAsync(0, "replay", job, "--db", w.Db);

        // A change made with replace() (which gives TEXT): definition_changed, exit 2, as any other change.
        Execute(w.Db, "UPDATE definitions SET content = replace(content, '\\u003E= 100\\u0022', '\\u003E= 100000\\u0022')");
        Assert.Equal("text", Scalar(w.Db, "SELECT typeof(content) FROM definitions"));
        var replay = await CliRunner.RunExpectingAsync(2, "replay", job, "--db", w.Db);
        Assert.Contains($"job {job} cannot be replayed against its recorded definition: definition_changed", replay.Err, StringComparison.Ordinal);
        Assert.Contains("it was changed in the database", replay.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("Unable to cast", replay.Err, StringComparison.Ordinal);
    }

    private static void Execute(string db, string sql)
    {
        using var c = AuditTampering.Open(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        Assert.True(cmd.ExecuteNonQuery() > 0);
    }

    private static string Scalar(string db, string sql)
    {
        using var c = AuditTampering.Open(db);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToString(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)!;
    }
}

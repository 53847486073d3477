using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

/// <summary><c>ordo audit verify</c> passes on an untouched log and finds each kind of tampering done directly in the SQLite file.</summary>
public sealed class AuditCommandTests : IClassFixture<AuditCommandTests.CompletedSampleJob>
{
    private readonly CompletedSampleJob _job;

    public AuditCommandTests(CompletedSampleJob job) => _job = job;

    public enum Tampering
    {
        AlterPayload,
        DeleteMiddleEvent,
        DeleteLastEvent,
        SwapTwoEvents,
    }

    [Fact]
    public async Task Verify_FreshJob_ExitsZero()
    {
        using var w = _job.CopyToNewWorkspace();
        var r = await CliRunner.RunExpectingAsync(0, "audit", "verify", _job.JobId, "--db", w.Db);
        Assert.Contains("every hash chain intact", r.Out, StringComparison.Ordinal);

        var json = (await CliRunner.RunExpectingAsync(0, "audit", "verify", _job.JobId, "--json", "--db", w.Db)).JsonLines()[0];
        Assert.True(json.GetProperty("intact").GetBoolean());
        Assert.Equal(_job.LastSeq, json.GetProperty("events").GetInt64());
        await CliRunner.RunExpectingAsync(0, "audit", "verify", "--all", "--db", w.Db);
    }

    [Theory]
    [InlineData(Tampering.AlterPayload)]
    [InlineData(Tampering.DeleteMiddleEvent)]
    [InlineData(Tampering.DeleteLastEvent)]
    [InlineData(Tampering.SwapTwoEvents)]
    public async Task Verify_TamperedLog_FailsAndNamesTheJobAndTheSequenceNumber(Tampering tampering)
    {
        using var w = _job.CopyToNewWorkspace();
        var brokenAt = Tamper(w.Db, _job.JobId, _job.LastSeq, tampering);

        var r = await CliRunner.RunAsync("audit", "verify", _job.JobId, "--db", w.Db);
        Assert.True(r.ExitCode == 3, $"{tampering}: expected exit code 3\n{r}");
        Assert.Contains($"job {_job.JobId}: chain broken at seq {brokenAt}:", r.Err, StringComparison.Ordinal);
        Assert.Contains("BROKEN", r.Out, StringComparison.Ordinal);

        var json = await CliRunner.RunAsync("audit", "verify", _job.JobId, "--json", "--db", w.Db);
        Assert.Equal(3, json.ExitCode);
        Assert.False(json.JsonLines()[0].GetProperty("intact").GetBoolean());
        Assert.Equal(brokenAt, json.JsonLines()[0].GetProperty("broken_at_seq").GetInt64());
        Assert.False(json.JsonLines()[^1].GetProperty("audit_log").GetProperty("intact").GetBoolean());

        var all = await CliRunner.RunAsync("audit", "verify", "--all", "--db", w.Db);
        Assert.Equal(3, all.ExitCode);
        Assert.Contains(_job.JobId, all.Err, StringComparison.Ordinal);
    }

    /// <summary>Changes the log behind Ordo's back and returns the sequence number where the chain must break.</summary>
    private static long Tamper(string db, string jobId, long lastSeq, Tampering tampering)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString());
        c.Open();
        var key = Scalar(c, "SELECT job_key FROM jobs WHERE job_id = $id", ("$id", jobId));
        var middle = lastSeq / 2;
        switch (tampering)
        {
            case Tampering.AlterPayload:
                var seq = Scalar(c, "SELECT seq FROM events WHERE job_key = $k AND type = 'StepSucceeded' AND step_id = 'extract'", ("$k", key));
                Assert.Equal(1, Execute(c, "UPDATE events SET payload = replace(payload, 'Globex', 'Globez') WHERE job_key = $k AND seq = $s", ("$k", key), ("$s", seq)));
                return seq;
            case Tampering.DeleteMiddleEvent:
                Assert.Equal(1, Execute(c, "DELETE FROM events WHERE job_key = $k AND seq = $s", ("$k", key), ("$s", middle)));
                return middle;
            case Tampering.DeleteLastEvent:
                Assert.Equal(1, Execute(c, "DELETE FROM events WHERE job_key = $k AND seq = $s", ("$k", key), ("$s", lastSeq)));
                return lastSeq;
            case Tampering.SwapTwoEvents:
                using (var tx = c.BeginTransaction())
                {
                    Execute(c, "UPDATE events SET seq = -1 WHERE job_key = $k AND seq = $s", ("$k", key), ("$s", middle));
                    Execute(c, "UPDATE events SET seq = $s WHERE job_key = $k AND seq = $s + 1", ("$k", key), ("$s", middle));
                    Assert.Equal(1, Execute(c, "UPDATE events SET seq = $s + 1 WHERE job_key = $k AND seq = -1", ("$k", key), ("$s", middle)));
                    tx.Commit();
                }

                return middle;
            default:
                throw new ArgumentOutOfRangeException(nameof(tampering));
        }
    }

    private static long Scalar(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
        return (long)cmd.ExecuteScalar()!;
    }

    private static int Execute(SqliteConnection c, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args) cmd.Parameters.AddWithValue(n, v);
        return cmd.ExecuteNonQuery();
    }

    /// <summary>One completed sample job; each test works on its own copy of the database.</summary>
    public sealed class CompletedSampleJob : IAsyncLifetime
    {
        private readonly Workspace _workspace = Workspace.WithSample();

        public string JobId { get; private set; } = "";

        public long LastSeq { get; private set; }

        internal Workspace CopyToNewWorkspace()
        {
            var w = Workspace.Create();
            File.Copy(_workspace.Db, w.Db);
            return w;
        }

        public async Task InitializeAsync()
        {
            var run = (await CliRunner.RunExpectingAsync(0, SampleJob.Args(_workspace, "run", "--json"))).Json();
            JobId = run.GetProperty("job_id").GetString()!;
            LastSeq = run.GetProperty("audit").GetProperty("events").GetInt64();
            Assert.False(File.Exists(_workspace.Db + "-wal"), "the database was left with a write-ahead log after the run");
        }

        public Task DisposeAsync()
        {
            _workspace.Dispose();
            return Task.CompletedTask;
        }
    }
}

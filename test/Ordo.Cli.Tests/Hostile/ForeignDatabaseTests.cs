using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Hostile;

/// <summary>
/// A database is written only if it is Ordo's (its application id, or only Ordo's tables), and commands that only
/// read open it read-only: another program's SQLite file, a file that is not a database and a read-only job store
/// are left exactly as they were.
/// </summary>
public sealed class ForeignDatabaseTests
{
    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static string ForeignDatabase(Workspace w)
    {
        var path = w.PathOf("crm.db");
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers(name) VALUES ('ada');";
            cmd.ExecuteNonQuery();
        }

        return path;
    }

    public static TheoryData<string[]> Commands => new()
    {
        { ["jobs"] },
        { ["doctor"] },
        { ["audit", "verify"] },
        { ["kill", "list"] },
        { ["kill", "set", "tool:x"] },
        { ["db", "migrate"] },
        { ["events", "0123456789abcdef0123456789abcdef"] },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task AnotherProgramsDatabase_IsRefused_AndLeftAsItWas(string[] command)
    {
        using var w = Workspace.WithSample();
        var db = ForeignDatabase(w);
        var before = Hash(db);
        var result = await CliRunner.RunAsync([.. command, "--db", db]);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"{db} is not an Ordo database: it holds tables of another program (customers); nothing was changed", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hash(db));
        Assert.False(File.Exists(db + "-wal") && new FileInfo(db + "-wal").Length > 0);
        Assert.False(Directory.Exists(db + ".workers"));
    }

    [Fact]
    public async Task RunningAJobOnAnotherProgramsDatabase_IsRefused_BeforeAnythingRuns()
    {
        using var w = Workspace.WithSample();
        var db = ForeignDatabase(w);
        var before = Hash(db);
        var result = await CliRunner.RunAsync(SampleJob.Args(w, "run").With(5, db));
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("is not an Ordo database", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hash(db));
        using var c = new SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'";
        Assert.Equal("customers", cmd.ExecuteScalar());
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("delete", cmd.ExecuteScalar());
    }

    [Fact]
    public async Task ADatabaseWithAnotherApplicationId_IsRefused()
    {
        using var w = Workspace.WithSample();
        var db = w.PathOf("app.db");
        using (var c = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA application_id = 1234;";
            cmd.ExecuteNonQuery();
        }

        var before = Hash(db);
        var result = await CliRunner.RunAsync(SampleJob.Args(w, "run").With(5, db));
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("another program's application id (0x000004D2)", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hash(db));
    }

    [Fact]
    public async Task AFileThatIsNotADatabase_IsRefused_AndLeftAsItWas()
    {
        using var w = Workspace.WithSample();
        var path = w.Write("notes.db", "these are my notes, not a database\n");
        var before = Hash(path);
        var result = await CliRunner.RunAsync("jobs", "--db", path);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("cannot be opened as an Ordo database", result.Err, StringComparison.Ordinal);
        result = await CliRunner.RunAsync(SampleJob.Args(w, "run").With(5, path));
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal(before, Hash(path));
    }

    [Fact]
    public async Task AnOrdoDatabaseWrittenBeforeApplicationIds_IsStillOpened_AndGetsItsId()
    {
        using var w = Workspace.WithSample();
        Assert.Equal(0, (await CliRunner.RunAsync(SampleJob.Args(w, "run"))).ExitCode);
        SqliteConnection.ClearAllPools();
        using (var c = new SqliteConnection($"Data Source={w.Db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA application_id = 0;";
            cmd.ExecuteNonQuery();
        }

        Assert.Equal(0, (await CliRunner.RunAsync("jobs", "--db", w.Db)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync(SampleJob.Args(w, "run"))).ExitCode);
        SqliteConnection.ClearAllPools();
        using var check = new SqliteConnection($"Data Source={w.Db};Mode=ReadOnly;Pooling=False");
        check.Open();
        using var id = check.CreateCommand();
        id.CommandText = "PRAGMA application_id";
        Assert.Equal(0x4F52444FL, id.ExecuteScalar());
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ReadCommands_WorkOnAReadOnlyDatabaseInAReadOnlyFolder_AndChangeNothing()
    {
        using var w = Workspace.WithSample();
        var run = await CliRunner.RunAsync(SampleJob.Args(w, "run"));
        Assert.Equal(0, run.ExitCode);
        var job = SampleJob.JobIdFromRunOutput(run);
        SqliteConnection.ClearAllPools();

        // The store alone, read-only, in a folder nobody may write to.
        var folder = w.PathOf("readonly");
        Directory.CreateDirectory(folder);
        var db = Path.Combine(folder, "ordo.db");
        using (var source = new SqliteConnection($"Data Source={w.Db};Pooling=False"))
        {
            source.Open();
            using var cmd = source.CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
            cmd.ExecuteNonQuery();
        }

        File.Copy(w.Db, db);
        var before = Hash(db);
        File.SetUnixFileMode(db, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            foreach (var args in new[] { new[] { "jobs" }, ["show", job], ["events", job], ["audit", "verify"], ["doctor"], ["kill", "list"] })
            {
                var result = await AsUnprivilegedAsync(w.Root, [.. args, "--db", db]);
                Assert.True(result.ExitCode == 0, $"ordo {string.Join(' ', args)}: {result}");
            }

            var write = await AsUnprivilegedAsync(w.Root, ["kill", "set", "tool:x", "--db", db]);
            Assert.NotEqual(0, write.ExitCode);
            Assert.Equal(before, Hash(db));
            Assert.Equal(["ordo.db"], Directory.GetFileSystemEntries(folder).Select(Path.GetFileName));
        }
        finally
        {
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>
    /// Runs ordo as a user who cannot write the file (root ignores file modes: as root, it runs as <c>nobody</c>).
    /// </summary>
    private static async Task<(int ExitCode, string Out, string Err)> AsUnprivilegedAsync(string directory, string[] args)
    {
        var root = Environment.UserName == "root";
        var info = new ProcessStartInfo(root ? "runuser" : TestPaths.DotnetHost)
        {
            WorkingDirectory = "/",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (root)
        {
            foreach (var a in new[] { "-u", "nobody", "--", "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", "DOTNET_NOLOGO=1", TestPaths.DotnetHost }) info.ArgumentList.Add(a);
        }

        info.ArgumentList.Add(TestPaths.CliDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["ORDO_LOG_DIR"] = Path.Combine(Path.GetTempPath(), "ordo-unprivileged-logs");
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        return (p.ExitCode, await stdout, await stderr);
    }
}

using Ordo.Cli.Tests.TestSupport;
using Ordo.Postgres.Tests;

namespace Ordo.Cli.Tests.Hostile;

/// <summary>
/// What <c>ordo</c> repeats of its command line and of connection strings — the crash log of an internal error, its
/// messages — never holds a secret: passwords, password files, API keys and tokens are written as <c>***</c>; the log's
/// folder and file are its owner's alone.
/// </summary>
public sealed class CrashLogTests
{
    private const string Secret = "TopSecretPw99";

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnInternalError_WritesACrashLog_WithoutThePassword_ReadableByItsOwnerOnly()
    {
        // A "server" that answers the login with a message PostgreSQL does not have: an error nothing expects.
        await using var server = FakePostgresServer.SpeakingNonsense();
        var cs = $"Host=127.0.0.1;Port={server.Port};Username=ordo;Password={Secret};Database=ordo;Timeout=10";
        var r = await CliRunner.RunExpectingAsync(1, "jobs", "--postgres", cs);
        Assert.DoesNotContain(Secret, r.Err, StringComparison.Ordinal);
        var log = r.Err.Split('\n').Single(l => l.StartsWith("ordo: details were written to ", StringComparison.Ordinal))["ordo: details were written to ".Length..].Trim();
        try
        {
            var text = await File.ReadAllTextAsync(log);
            Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
            Assert.Contains($"args: jobs --postgres 'Host=127.0.0.1;Port={server.Port};Username=ordo;Password=***;Database=ordo;Timeout=10'", text, StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(log));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(log)!));
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void TheLog_MasksEverySecretOfTheCommandLineAndTheError_AndMakesItsFolderPrivate()
    {
        using var w = Workspace.Create();
        var folder = w.PathOf("logs");
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, (UnixFileMode)0b111_101_101);
        var key = "ordo_" + new string('k', 43);
        var error = new InvalidOperationException($"could not use postgres://u:{Secret}@db/ordo with Bearer {Secret}-2 and {key}\nnor Host=db;Username=u;Password=\"{Secret};x\";Passfile=/home/u/.pgpass");

        var path = InternalErrorLog.Write(error,
            ["serve", "--postgres", $"Host=db;PWD={Secret}", "--api-key", Secret, "--token=" + Secret, "--as", "bob", "--reason", $"Ssl Password={Secret}"], folder);

        var text = File.ReadAllText(path);
        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain("/home/u/.pgpass", text, StringComparison.Ordinal);
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.Contains("args: serve --postgres 'Host=db;PWD=***' --api-key *** --token=*** --as bob --reason 'Ssl Password=***'", text, StringComparison.Ordinal);
        Assert.Contains("could not use postgres://u:***@db/ordo with Bearer *** and ordo_***\nnor Host=db;Username=u;Password=***;Passfile=***\n", text, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));

        // A second error of the same process in the same second gets a file of its own.
        var second = InternalErrorLog.Write(error, ["jobs"], folder);
        Assert.NotEqual(path, second);
        Assert.True(File.Exists(second));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void ANewLogFolder_IsCreatedPrivate()
    {
        using var w = Workspace.Create();
        var folder = w.PathOf("tmp/ordo/logs");
        var path = InternalErrorLog.Write(new InvalidOperationException("boom"), ["jobs"], folder);
        Assert.StartsWith(folder, path, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Theory]
    [InlineData("Host=db;Password=p4ss;Database=ordo", "Host=db;Password=***;Database=ordo")]
    [InlineData("host=db; password = 'p;4ss' ;database=ordo", "host=db; password = *** ;database=ordo")]
    [InlineData("Host=db;Psw=p4ss", "Host=db;Psw=***")]
    [InlineData("Host=db;Passfile=/secret/place", "Host=db;Passfile=***")]
    [InlineData("Host=db;SSL Password=p4ss;Port=5432", "Host=db;SSL Password=***;Port=5432")]
    [InlineData("postgresql://ordo:p4ss@db:5432/ordo", "postgresql://ordo:***@db:5432/ordo")]
    [InlineData("Host=db;Database=ordo_workers_0123456789abcdef0123456789abcdef012345", "Host=db;Database=ordo_workers_0123456789abcdef0123456789abcdef012345")]
    [InlineData("Host=db;Username=ordo;Database=ordo", "Host=db;Username=ordo;Database=ordo")]
    public void ConnectionStrings_KeepWhereTheyGo_AndLoseTheirSecrets(string text, string expected)
        => Assert.Equal(expected, Redaction.Text(text));

    [Fact]
    public async Task AParseErrorThatRepeatsAnArgument_DoesNotRepeatItsPassword()
    {
        var r = await CliRunner.RunExpectingAsync(2, "jobs", $"Host=db;Password={Secret}");
        Assert.DoesNotContain(Secret, r.Err, StringComparison.Ordinal);
    }
}

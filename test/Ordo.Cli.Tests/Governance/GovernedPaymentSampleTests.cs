using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Governance;

/// <summary>The governed-payment sample, as docs/governance.md tells a user to run it.</summary>
public sealed class GovernedPaymentSampleTests
{
    [Fact]
    public async Task Sample_WaitsForTwoApprovers_ThenPaysOnce()
    {
        using var w = Workspace.WithSample("governed-payment");
        var flow = w.PathOf("sample/pay.yaml");
        var input = w.PathOf("sample/input.json");
        var run = await CliRunner.RunExpectingAsync(4, "run", flow, "--input", input, "--db", w.Db, "--as", "alice", "--json");
        var json = run.Json();
        var job = json.GetProperty("job_id").GetString()!;
        Assert.Equal("verified", json.GetProperty("artifacts").GetProperty("payment").GetProperty("status").GetString());
        Assert.Equal(125.0, json.GetProperty("artifacts").GetProperty("payment").GetProperty("value").GetProperty("amount").GetDouble());

        var events = (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines().Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Contains("ArtifactRejected", events);
        Assert.Contains("ArtifactQuarantined", events);
        Assert.Contains("ArtifactVerified", events);
        Assert.Contains("ApprovalRequested", events);

        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "bob", "--reason", "matches the ledger");
        await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "bob");
        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "carol");
        var resumed = await CliRunner.RunExpectingAsync(0, "resume", job, "--db", w.Db, "--json");
        Assert.Equal("completed", resumed.Json().GetProperty("status").GetString());

        await using var ledger = new SqliteConnection($"Data Source={w.PathOf("sample/data/ledger.db")};Pooling=False");
        await ledger.OpenAsync();
        await using var cmd = ledger.CreateCommand();
        cmd.CommandText = "SELECT count(*), sum(amount) FROM payments";
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(1L, r.GetInt64(0));
        Assert.Equal(125.0, r.GetDouble(1));
    }
}

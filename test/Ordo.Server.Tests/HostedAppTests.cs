using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Ordo.Server.Auth;
using Ordo.Storage;

namespace Ordo.Server.Tests;

/// <summary>The sample app of a user's own, as it is (its ordo.yaml, its workflow, SQLite), under WebApplicationFactory.</summary>
public sealed class HostedAppTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-hosted-app", Guid.NewGuid().ToString("N"));

    public HostedAppTests() => Directory.CreateDirectory(_dir);

    [Fact]
    public async Task TheSampleApp_ServesOrdosApiDashboardAndMetrics_BesideItsOwnEndpoints_OnItsSqliteFile()
    {
        var db = Path.Combine(_dir, "app.db");
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Ordo:Database", db));
        using var client = factory.CreateClient();
        Assert.Equal("this app also serves its own endpoints beside Ordo's", await client.GetStringAsync("/hello"));
        Assert.Contains("<html", await client.GetStringAsync("/"), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/metrics")).StatusCode);

        var key = ApiKeys.NewKey();
        await ((IApiKeyStore)factory.Services.GetRequiredService<IOrdoStore>()).CreateApiKeyAsync(new ApiKeyRecord(ApiKeys.NewKeyId(), "acme", "alice", ApiKeys.Hash(key), DateTimeOffset.UnixEpoch));
        using var submit = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent("""{"workflow":"refund","input":{"order":"A-1","amount":12.5}}""", System.Text.Encoding.UTF8, "application/json") };
        submit.Headers.Authorization = new("Bearer", key);
        var response = await client.SendAsync(submit);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var id = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("job_id").GetString()!;

        // The job is in the app's own SQLite file, and reaches the two-person approval.
        string? status = null;
        for (var i = 0; i < 300 && status != "waiting_approval"; i++)
        {
            using var get = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}");
            get.Headers.Authorization = new("Bearer", key);
            status = System.Text.Json.JsonDocument.Parse(await (await client.SendAsync(get)).Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString();
            if (status != "waiting_approval") await Task.Delay(50);
        }

        Assert.Equal("waiting_approval", status);
        await using var c = new SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT status FROM jobs WHERE job_id = $id";
        cmd.Parameters.AddWithValue("$id", id);
        Assert.Equal("waiting_approval", await cmd.ExecuteScalarAsync());
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }
}

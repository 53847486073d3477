using System.Text;
using Ordo.Audit;

namespace Ordo.Server.Tests;

/// <summary><c>GET /v1/audit/checkpoint</c>: 404 until a checkpoint is recorded, then the latest, signed and verifiable by anyone with the public key.</summary>
public sealed class AuditCheckpointApiTests
{
    [Fact]
    public async Task AuditCheckpoint_IsNotFoundUntilOneIsTaken_ThenServesTheLatestSigned()
    {
        await using var api = await ApiFixture.StartAsync();
        var viewer = await api.KeyAsync("acme", "vic");
        var none = await api.SendAsync(HttpMethod.Get, "/v1/audit/checkpoint", viewer);
        Assert.Equal(404, none.Status);
        Assert.Equal("application/problem+json", none.Response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("ordo audit checkpoint", none.Json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(401, (await api.SendAsync(HttpMethod.Get, "/v1/audit/checkpoint", null)).Status);

        var alice = await api.KeyAsync("acme", "alice");
        var job = await api.SubmitAsync(alice, "hello");
        await api.WaitForStatusAsync(alice, job, "completed");
        var head = await AuditLog.GetHeadAsync(api.Store);
        Assert.True(head.Size >= 2);
        var keyFile = Path.Combine(Path.GetTempPath(), "ordo-server-tests", Guid.NewGuid().ToString("N"), "audit-key.pem");
        using var key = AuditKey.LoadOrCreate(keyFile);
        await api.Store.AddAuditCheckpointAsync(key.Sign(1, MerkleHash.Empty(), DateTimeOffset.UnixEpoch, null));
        await api.Store.AddAuditCheckpointAsync(key.Sign(head.Size, head.Root, DateTimeOffset.UnixEpoch.AddDays(1), null));

        var got = await api.SendAsync(HttpMethod.Get, "/v1/audit/checkpoint", viewer);
        Assert.Equal(200, got.Status);
        Assert.Equal(head.Size, got.Json.GetProperty("tree_size").GetInt64());
        Assert.False(got.Json.TryGetProperty("jobs", out _));
        var parsed = AuditCheckpointJson.Parse("GET /v1/audit/checkpoint", Encoding.UTF8.GetBytes(got.Json.GetRawText()));
        Assert.True(key.Verifies(parsed.Checkpoint));
        Assert.Equal(head.Root, parsed.Checkpoint.Root);
        Directory.Delete(Path.GetDirectoryName(keyFile)!, recursive: true);
    }
}

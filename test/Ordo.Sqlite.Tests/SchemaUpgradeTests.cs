using Microsoft.Data.Sqlite;

namespace Ordo.Sqlite.Tests;

public sealed class SchemaUpgradeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-upgrade-" + Guid.NewGuid().ToString("N"));

    public SchemaUpgradeTests() => Directory.CreateDirectory(_dir);

    [Fact]
    public async Task Version4Database_KillSwitchesStopEveryTenant_AfterTheUpgrade()
    {
        var path = Path.Combine(_dir, "ordo.db");
        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
        }

        // The database as version 4 left it: one switch per target, no tenant.
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = """
                DROP TABLE kill_switches;
                CREATE TABLE kill_switches(target TEXT PRIMARY KEY, reason TEXT, set_by TEXT NOT NULL, set_at INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO kill_switches VALUES ('tool:web.*', 'outage', 'ops', 0);
                UPDATE meta SET value = '4' WHERE key = 'schema_version';
                """;
            cmd.ExecuteNonQuery();
        }

        await using (var store = new SqliteOrdoStore(path))
        {
            await store.InitializeAsync();
            Assert.Equal(5, store.SchemaVersion);
            var kept = Assert.Single(await store.ListKillSwitchesAsync());
            Assert.Equal(("tool:web.*", "outage", null), (kept.Target, kept.Reason, kept.Tenant));
            await store.SetKillSwitchAsync(kept with { Tenant = "acme", Reason = "acme's" });
            Assert.Equal(2, (await store.ListKillSwitchesAsync()).Count);
        }
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

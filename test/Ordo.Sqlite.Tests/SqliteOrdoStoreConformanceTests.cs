using Ordo.Storage;
using Ordo.Storage.Conformance;

namespace Ordo.Sqlite.Tests;

public sealed class SqliteOrdoStoreConformanceTests : StoreConformanceTests, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-sqlite-" + Guid.NewGuid().ToString("N"));

    protected override Task<IOrdoStore> CreateStoreAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.FromResult<IOrdoStore>(new SqliteOrdoStore(Path.Combine(_dir, "ordo.db")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public sealed class SqliteOrdoStoreFullDurabilityConformanceTests : StoreConformanceTests, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ordo-sqlite-" + Guid.NewGuid().ToString("N"));

    protected override Task<IOrdoStore> CreateStoreAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.FromResult<IOrdoStore>(new SqliteOrdoStore(new SqliteStoreOptions { Path = Path.Combine(_dir, "ordo.db"), Durability = SqliteDurability.Full }));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

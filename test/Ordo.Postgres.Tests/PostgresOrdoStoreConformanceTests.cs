using Ordo.Storage;
using Ordo.Storage.Conformance;

namespace Ordo.Postgres.Tests;

/// <summary>The storage contract on PostgreSQL: the same suite the in-memory and SQLite stores pass, each test in a schema of its own.</summary>
public sealed class PostgresOrdoStoreConformanceTests : StoreConformanceTests, IDisposable
{
    private readonly string _schema = PostgresTestServer.NewSchema();

    protected override Task<IOrdoStore> CreateStoreAsync()
        => Task.FromResult<IOrdoStore>(new PostgresOrdoStore(new PostgresStoreOptions { ConnectionString = PostgresTestServer.ConnectionString, Schema = _schema }));

    public void Dispose() => PostgresTestServer.DropSchema(_schema);
}

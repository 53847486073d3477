using Microsoft.Extensions.DependencyInjection.Extensions;
using Ordo.Hosting;
using Ordo.Sqlite;
using Ordo.Storage;
using Ordo.Tools;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Puts Ordo on the embedded SQLite store.</summary>
public static class SqliteOrdoBuilderExtensions
{
    /// <summary>Stores jobs in a SQLite file and lets <c>sql</c> tools use SQLite connections.</summary>
    public static IOrdoBuilder UseSqlite(this IOrdoBuilder builder, string path, SqliteDurability durability = SqliteDurability.Normal)
        => builder.UseSqlite(o =>
        {
            o.Path = path;
            o.Durability = durability;
        });

    /// <summary>Stores jobs in a SQLite file, with options.</summary>
    public static IOrdoBuilder UseSqlite(this IOrdoBuilder builder, Action<SqliteStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new SqliteStoreOptions();
        configure(options);
        builder.Services.Replace(ServiceDescriptor.Singleton<IOrdoStore>(_ => new SqliteOrdoStore(options)));
        builder.AddSqliteConnections();
        return builder;
    }

    /// <summary>Lets <c>sql</c> tools open SQLite connections (also with another store).</summary>
    public static IOrdoBuilder AddSqliteConnections(this IOrdoBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ISqlConnectionFactory, SqliteConnectionFactory>());
        return builder;
    }
}

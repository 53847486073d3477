using Microsoft.Extensions.DependencyInjection.Extensions;
using Ordo.Hosting;
using Ordo.Postgres;
using Ordo.Storage;
using Ordo.Tools;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Puts Ordo on PostgreSQL: any number of processes on any number of machines share one store.</summary>
public static class PostgresOrdoBuilderExtensions
{
    /// <summary>Stores jobs in PostgreSQL (the schema <c>ordo</c>, or the connection string's <c>Search Path</c>) and lets <c>sql</c> tools use PostgreSQL connections.</summary>
    public static IOrdoBuilder UsePostgres(this IOrdoBuilder builder, string connectionString)
        => builder.UsePostgres(o => o.ConnectionString = connectionString);

    /// <summary>Stores jobs in PostgreSQL, with options.</summary>
    public static IOrdoBuilder UsePostgres(this IOrdoBuilder builder, Action<PostgresStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PostgresStoreOptions();
        configure(options);
        builder.Services.Replace(ServiceDescriptor.Singleton<IOrdoStore>(_ => new PostgresOrdoStore(options)));
        builder.AddPostgresConnections();
        return builder;
    }

    /// <summary>Lets <c>sql</c> tools open PostgreSQL connections (also with another store).</summary>
    public static IOrdoBuilder AddPostgresConnections(this IOrdoBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ISqlConnectionFactory, PostgresConnectionFactory>());
        return builder;
    }
}

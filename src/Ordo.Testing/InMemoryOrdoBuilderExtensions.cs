using Microsoft.Extensions.DependencyInjection.Extensions;
using Ordo.Hosting;
using Ordo.Storage;
using Ordo.Testing;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Puts Ordo on a store that lives in memory.</summary>
public static class InMemoryOrdoBuilderExtensions
{
    /// <summary>Keeps jobs in memory (tests, demos, benchmarks); they are lost when the process ends.</summary>
    public static IOrdoBuilder UseInMemoryStore(this IOrdoBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Replace(ServiceDescriptor.Singleton<IOrdoStore, InMemoryOrdoStore>());
        return builder;
    }
}

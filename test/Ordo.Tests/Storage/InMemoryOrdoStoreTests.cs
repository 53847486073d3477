using Ordo.Storage;
using Ordo.Storage.Conformance;
using Ordo.Testing;

namespace Ordo.Tests.Storage;

public sealed class InMemoryOrdoStoreTests : StoreConformanceTests
{
    protected override Task<IOrdoStore> CreateStoreAsync() => Task.FromResult<IOrdoStore>(new InMemoryOrdoStore());
}

using Microsoft.Extensions.DependencyInjection;

namespace Ordo.Hosting;

/// <summary>The result of <c>AddOrdo</c>: storage packages and registrations extend it.</summary>
public interface IOrdoBuilder
{
    /// <summary>The service collection Ordo is registered in.</summary>
    IServiceCollection Services { get; }
}

using System.Net;

namespace Ordo.Tools;

/// <summary>
/// The clients of http tools without a container (plain construction, the CLI, tests): every client it makes, whatever
/// its name, shares one <see cref="HttpToolConnections.CreatePrimaryHandler"/> and is set up by
/// <see cref="HttpToolConnections.Configure"/>, as the <c>ordo-tools</c> client <c>AddOrdoHttpClients</c> registers.
/// </summary>
/// <remarks>Thread-safe. Disposing it closes the connections of every client it made.</remarks>
internal sealed class HttpToolClientFactory(Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null) : IHttpClientFactory, IDisposable
{
    private readonly HttpMessageHandler _handler = HttpToolConnections.CreatePrimaryHandler(resolve);

    /// <inheritdoc />
    public HttpClient CreateClient(string name)
    {
#pragma warning disable RS0030 // This is the factory: its clients share one handler, so making them is cheap and exhausts nothing.
        var client = new HttpClient(_handler, disposeHandler: false);
#pragma warning restore RS0030
        HttpToolConnections.Configure(client);
        return client;
    }

    /// <inheritdoc />
    public void Dispose() => _handler.Dispose();
}

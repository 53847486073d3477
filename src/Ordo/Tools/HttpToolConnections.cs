using System.Net;
using System.Net.Sockets;

namespace Ordo.Tools;

/// <summary>
/// The connections of http tools, and the one place their rules live: a handler that follows no redirect on its own
/// (the executor decides, hop by hop), keeps no cookies (they would travel between tools and tenants), bounds response
/// headers, and checks every address a host name resolves to against the tool's <see cref="HttpAddressRules"/> when it
/// connects — after name resolution, so a name that resolves to a refused address (DNS rebinding included) is refused,
/// and only checked addresses are dialled. The named client <see cref="ClientName"/> (registered by
/// <c>AddOrdoHttpClients</c>, or made by <see cref="HttpToolClientFactory"/> without a container) is built from here.
/// </summary>
internal static class HttpToolConnections
{
    /// <summary>The largest response header block, in KiB.</summary>
    public const int MaxResponseHeadersKiB = 64;

    /// <summary>The name of the client of http tools in <see cref="System.Net.Http.IHttpClientFactory"/>.</summary>
    public const string ClientName = "ordo-tools";

    /// <summary>
    /// The most a client of http tools buffers of an answer read whole (<see cref="HttpClient.MaxResponseContentBufferSize"/>):
    /// 4 MiB. http tools read answers as streams, up to their own <c>max_response_bytes</c>.
    /// </summary>
    public const int MaxBufferedResponseBytes = 4 * 1024 * 1024;

    /// <summary>The address rules a request is sent under (<see cref="HttpAddressRules.Default"/> when it has none).</summary>
    public static readonly HttpRequestOptionsKey<HttpAddressRules> Rules = new("ordo.http-address-rules");

    /// <summary>The primary handler of the client of http tools: connections per allowlist, as <see cref="Rules"/> says.</summary>
    /// <param name="resolve">Resolves a host name (default: DNS).</param>
    public static HttpMessageHandler CreatePrimaryHandler(Func<string, CancellationToken, Task<IPAddress[]>>? resolve) => new HttpToolConnectionPool(resolve);

    /// <summary>Sets up a client of http tools: no client-wide timeout (each tool has its own, enforced by the gateway), a bounded buffer.</summary>
    public static void Configure(HttpClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        client.Timeout = Timeout.InfiniteTimeSpan;
        client.MaxResponseContentBufferSize = MaxBufferedResponseBytes;
    }

    /// <summary>Creates the handler of tools whose allowlist is <paramref name="rules"/>.</summary>
    /// <param name="rules">The addresses refused.</param>
    /// <param name="resolve">Resolves a host name (default: DNS).</param>
    public static SocketsHttpHandler CreateHandler(HttpAddressRules rules, Func<string, CancellationToken, Task<IPAddress[]>>? resolve)
    {
        resolve ??= Dns.GetHostAddressesAsync;
        return new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            MaxResponseHeadersLength = MaxResponseHeadersKiB,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectCallback = async (context, cancellationToken) =>
            {
                var host = context.DnsEndPoint.Host;
                var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, cancellationToken).ConfigureAwait(false);
                foreach (var address in addresses)
                {
                    if (rules.Refusal(address) is { } why)
                    {
                        throw new AddressRefusedException(host, address, why);
                    }
                }

                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    // A dual-mode socket dials both families; without IPv6 only the IPv4 addresses can be dialled.
                    var dialled = socket.AddressFamily == AddressFamily.InterNetworkV6 && socket.DualMode
                        ? addresses
                        : Array.FindAll(addresses, a => a.AddressFamily == socket.AddressFamily);
                    if (dialled.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
                    await socket.ConnectAsync(dialled, context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
    }
}

/// <summary>A connection refused by the address rules of an http tool, before it was made.</summary>
internal sealed class AddressRefusedException(string host, IPAddress address, string why)
    : Exception($"{(host == address.ToString() ? host : $"{host} ({address})")} is {why}")
{
    /// <summary>The host as requested.</summary>
    public string Host { get; } = host;

    /// <summary>The address refused.</summary>
    public IPAddress Address { get; } = address;
}

using System.Collections.Concurrent;
using System.Net;

namespace Ordo.Tools;

/// <summary>
/// The primary handler of the client of http tools: one set of connections per address allowlist (the request's
/// <see cref="HttpToolConnections.Rules"/>, else the default rules), each made by <see cref="HttpToolConnections.CreateHandler"/>,
/// so that a pooled connection made under one tool's allowlist is never reused by a tool without it.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class HttpToolConnectionPool(Func<string, CancellationToken, Task<IPAddress[]>>? resolve) : HttpMessageHandler
{
    private readonly ConcurrentDictionary<string, Lazy<HttpMessageInvoker>> _invokers = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <inheritdoc />
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var rules = request.Options.TryGetValue(HttpToolConnections.Rules, out var r) ? r : HttpAddressRules.Default;
        var invoker = _invokers.GetOrAdd(rules.Key, _ => new Lazy<HttpMessageInvoker>(() => new HttpMessageInvoker(HttpToolConnections.CreateHandler(rules, resolve), disposeHandler: true))).Value;
        return invoker.SendAsync(request, cancellationToken);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            foreach (var invoker in _invokers.Values)
            {
                if (invoker.IsValueCreated) invoker.Value.Dispose();
            }

            _invokers.Clear();
        }

        base.Dispose(disposing);
    }
}

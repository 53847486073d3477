using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ordo.TestServers;

/// <summary>A request the server received.</summary>
public sealed record ReceivedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, string Body, DateTimeOffset At)
{
    /// <summary>The Idempotency-Key header, if sent.</summary>
    public string? IdempotencyKey => Headers.TryGetValue("Idempotency-Key", out var k) ? k : null;
}

/// <summary>
/// A real HTTP server on 127.0.0.1 (Kestrel, a free port) whose answers a test scripts with a handler; it records every request.
/// </summary>
public sealed class LoopbackServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();

    private LoopbackServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The server's base address, like <c>http://127.0.0.1:41234</c>.</summary>
    public Uri Address { get; }

    /// <summary>Every request received so far, in order.</summary>
    public IReadOnlyList<ReceivedRequest> Requests => _requests.ToArray();

    /// <summary>Starts a server whose every request is answered by <paramref name="handler"/>.</summary>
    public static async Task<LoopbackServer> StartAsync(Func<HttpContext, ReceivedRequest, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        LoopbackServer? self = null;
        app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var request = new ReceivedRequest(
                context.Request.Method, context.Request.Path.Value ?? "/", context.Request.QueryString.Value ?? "",
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), body, DateTimeOffset.UtcNow);
            self!._requests.Enqueue(request);
            await handler(context, request);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new LoopbackServer(app, new Uri(address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal)));
        return self;
    }

    /// <summary>Writes a JSON answer.</summary>
    public static async Task JsonAsync(HttpContext context, int status, string json)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json, context.RequestAborted);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ordo.Server.Api;

/// <summary>One entry of a live list: its key, its JSON as the list shows it, and the JSON that says it left the list.</summary>
internal readonly record struct LiveItem(string Key, string Json, string RemovedJson);

/// <summary>
/// A list that follows itself as server-sent events (<c>Accept: text/event-stream</c> on a list endpoint): the list is
/// read again every poll interval, server side, and only what changed is sent — an entry that is new or changed as
/// <c>event: ITEM</c> with its JSON, an entry that left the list (another status under a filter, a page it fell off) as
/// <c>event: removed</c>. The first read sends every entry, then <c>event: synced</c> (the client now holds the whole
/// list: an empty list shows as empty only then). A comment line every 15 s keeps idle proxies from closing
/// the stream. It ends when the client goes away, the server stops, or the store cannot be read (the client reconnects).
/// </summary>
internal sealed class LiveList(string itemEvent, TimeSpan interval, Func<CancellationToken, Task<IReadOnlyList<LiveItem>>> read) : IResult
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>Whether the request asks for a live list.</summary>
    public static bool Wanted(HttpRequest request)
        => request.Headers.Accept.Any(a => a is not null && a.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase));

    /// <inheritdoc />
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var response = httpContext.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.StartAsync(httpContext.RequestAborted).ConfigureAwait(false);
        var lifetime = httpContext.RequestServices.GetRequiredService<IHostApplicationLifetime>();
        var time = httpContext.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(httpContext.RequestAborted, lifetime.ApplicationStopping);
        var sent = new Dictionary<string, LiveItem>(StringComparer.Ordinal);
        var lastWrite = time.GetTimestamp();
        var lastCheck = time.GetTimestamp();
        var first = true;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (time.GetElapsedTime(lastCheck) >= ApiContext.RecheckEvery(httpContext))
                {
                    if (!await ApiContext.StillAuthorizedAsync(httpContext, stop.Token).ConfigureAwait(false)) break;
                    lastCheck = time.GetTimestamp();
                }

                var items = await read(stop.Token).ConfigureAwait(false);
                var text = new StringBuilder();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                // Oldest first: a client that inserts each entry at the top ends with the list's own order.
                for (var i = items.Count - 1; i >= 0; i--)
                {
                    var item = items[i];
                    if (!seen.Add(item.Key)) continue;
                    if (sent.TryGetValue(item.Key, out var before) && before.Json == item.Json) continue;
                    sent[item.Key] = item;
                    text.Append("event: ").Append(itemEvent).Append("\ndata: ").Append(item.Json).Append("\n\n");
                }

                foreach (var gone in sent.Values.Where(s => !seen.Contains(s.Key)).ToList())
                {
                    sent.Remove(gone.Key);
                    text.Append("event: removed\ndata: ").Append(gone.RemovedJson).Append("\n\n");
                }

                if (first) text.Append("event: synced\ndata: {}\n\n");
                first = false;
                if (text.Length == 0 && time.GetElapsedTime(lastWrite) >= KeepAlive) text.Append(": keep-alive\n\n");
                if (text.Length > 0)
                {
                    await response.WriteAsync(text.ToString(), stop.Token).ConfigureAwait(false);
                    await response.Body.FlushAsync(stop.Token).ConfigureAwait(false);
                    lastWrite = time.GetTimestamp();
                }

                await Task.Delay(interval, time, stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The client went away or the server stops.
        }
    }
}

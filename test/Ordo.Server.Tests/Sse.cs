using System.Net.Http.Headers;
using System.Text.Json;

namespace Ordo.Server.Tests;

/// <summary>Reads a server-sent event stream to its end.</summary>
internal static class Sse
{
    public static async Task<List<(long Id, JsonElement Json)>> ReadAsync(HttpClient client, string path, string key, long? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is { } last) request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var events = new List<(long, JsonElement)>();
        long id = 0;
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal)) id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((id, JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }

        return events;
    }
}

/// <summary>A live list (<c>Accept: text/event-stream</c> on a list endpoint) read event by event.</summary>
internal sealed class LiveStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private LiveStream(HttpResponseMessage response, StreamReader reader)
    {
        _response = response;
        _reader = reader;
    }

    public static async Task<LiveStream> OpenAsync(HttpClient client, string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Accept.ParseAdd("text/event-stream");
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        return new LiveStream(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }

    /// <summary>The next event: its name and data.</summary>
    public async Task<(string Name, JsonElement Data)> NextAsync()
    {
        string? name = null;
        string? data = null;
        while (await _reader.ReadLineAsync(_timeout.Token) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data = line[6..];
            else if (line.Length == 0 && data is not null) return (name ?? "message", JsonDocument.Parse(data).RootElement.Clone());
        }

        throw new EndOfStreamException("the live list ended");
    }

    /// <summary>Reads events until one matches.</summary>
    public async Task<JsonElement> UntilAsync(Func<string, JsonElement, bool> match)
    {
        for (;;)
        {
            var (name, data) = await NextAsync();
            if (match(name, data)) return data;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _timeout.CancelAsync();
        _reader.Dispose();
        _response.Dispose();
        _timeout.Dispose();
    }
}

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

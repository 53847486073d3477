using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Ordo.Events;

namespace Ordo.Cli.Output;

/// <summary>Writes the JSON shapes of CLI.md.</summary>
internal static class JsonOut
{
    private static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonWriterOptions Indented = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true };

    public static string Write(Action<Utf8JsonWriter> write, bool indented = false)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, indented ? Indented : Compact))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string Hex(byte[] hash) => Convert.ToHexStringLower(hash);

    /// <summary>One event as a JSON line (the <c>ordo events --json</c> shape).</summary>
    public static string Event(EventEnvelope e) => Write(w => Replay.JobExport.WriteEvent(w, e, asStored: false));

    public static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}

using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Ordo.Cli.Output;

namespace Ordo.Server.Api;

/// <summary>Answers in <c>application/problem+json</c> (RFC 9457).</summary>
internal static class Problems
{
    public const string ContentType = "application/problem+json";

    public static IResult Of(int status, string title, string? detail = null, IReadOnlyDictionary<string, string[]>? errors = null, string? type = null)
    {
        var json = JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type ?? $"https://ordo.dev/problems/{status}");
            w.WriteString("title", title);
            w.WriteNumber("status", status);
            if (detail is not null) w.WriteString("detail", detail);
            if (errors is { Count: > 0 })
            {
                w.WriteStartObject("errors");
                foreach (var (path, messages) in errors)
                {
                    w.WriteStartArray(path);
                    foreach (var m in messages) w.WriteStringValue(m);
                    w.WriteEndArray();
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
        });
        return Results.Text(json, ContentType, System.Text.Encoding.UTF8, status);
    }

    public static IResult Invalid(string path, string message) => Of(400, "The request is invalid", message, new Dictionary<string, string[]> { [path] = [message] });

    public static IResult NotFound(string what) => Of(404, "Not found", what);

    public static IResult Json(string json, int status = 200) => Results.Text(json, "application/json", System.Text.Encoding.UTF8, status);

    /// <summary>The JSON path of a property of the body, quoted when it is not a plain name.</summary>
    public static string Path(string parent, string name)
        => name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && name.Length > 0 ? $"{parent}.{name}" : $"{parent}[{JsonSerializer.Serialize(name)}]";
}

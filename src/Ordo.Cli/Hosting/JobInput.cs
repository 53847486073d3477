using System.Text.Json;

namespace Ordo.Cli.Hosting;

/// <summary>A job input as read from the command line: its value, the name it is reported under (file, <c>stdin</c> or <c>input</c>) and its text, when it came from one.</summary>
internal sealed record JobInput(JsonElement Value, string Name, string? Text);

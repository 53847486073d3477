using System.Text.Json;

namespace Ordo.Tools.Mcp;

/// <summary>A tool an MCP server offers.</summary>
/// <param name="Name">Its name on the server (what <c>tool:</c> names in tools files).</param>
/// <param name="Description">What it does, as the server describes it.</param>
/// <param name="InputSchema">The JSON Schema of its arguments (an object schema).</param>
public sealed record McpToolInfo(string Name, string? Description, JsonElement InputSchema);

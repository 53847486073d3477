using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Ordo.Agents.Models;

namespace Ordo.Agents.ToolUse;

/// <summary>The identity of a model request: what a replay matches a recorded answer by.</summary>
internal static class ModelRequests
{
    /// <summary>
    /// The <c>sha256:</c> of the request (tier, model, messages with their tool calls and results, offered functions,
    /// response format) and its size in bytes (a bound of its input tokens: no tokenizer makes more tokens than bytes).
    /// </summary>
    public static (string Hash, long Bytes) Hash(ModelTier tier, IReadOnlyList<ChatMessage> messages, ChatOptions options)
    {
        var options_ = AIJsonUtilities.DefaultOptions;
        var request = new JsonObject
        {
            ["tier"] = tier.Name,
            ["provider"] = tier.Provider,
            ["model"] = options.ModelId ?? tier.Model,
            ["messages"] = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject
            {
                ["role"] = m.Role.Value,
                ["content"] = new JsonArray([.. m.Contents.Select(c => Content(c, options_)).OfType<JsonNode>()]),
            })]),
            ["tools"] = new JsonArray([.. (options.Tools ?? []).OfType<AIFunctionDeclaration>().Select(t => (JsonNode)new JsonObject
            {
                ["name"] = t.Name,
                ["description"] = t.Description,
                ["schema"] = JsonNode.Parse(t.JsonSchema.GetRawText()),
            })]),
            ["format"] = options.ResponseFormat is ChatResponseFormatJson json
                ? new JsonObject { ["schema"] = json.Schema is { } schema ? JsonNode.Parse(schema.GetRawText()) : null, ["name"] = json.SchemaName }
                : null,
            ["max_output_tokens"] = options.MaxOutputTokens,
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(request);
        return ("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.LongLength);
    }

    /// <summary>
    /// What a message part says, and only that (not the ids or timestamps a provider's client attaches): text, a tool call
    /// (id, name, arguments), or a tool result (call id, result). The same conversation replayed from the log hashes the same.
    /// </summary>
    private static JsonNode? Content(AIContent content, JsonSerializerOptions options) => content switch
    {
        TextContent t when !string.IsNullOrEmpty(t.Text) => new JsonObject { ["text"] = t.Text },
        FunctionCallContent f => new JsonObject
        {
            ["call"] = f.CallId,
            ["name"] = f.Name,
            ["args"] = f.Arguments is null ? null : JsonSerializer.SerializeToNode(f.Arguments, options.GetTypeInfo(typeof(IDictionary<string, object?>))),
        },
        FunctionResultContent r => new JsonObject
        {
            ["result_of"] = r.CallId,
            ["result"] = r.Result is null ? null : JsonSerializer.SerializeToNode(r.Result, options.GetTypeInfo(r.Result.GetType())),
        },
        _ => null,
    };
}

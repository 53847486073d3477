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
            ["messages"] = new JsonArray([.. messages.Select(m => JsonSerializer.SerializeToNode(m, options_.GetTypeInfo(typeof(ChatMessage))))]),
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
}

using System.ClientModel;
using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using OpenAI;
using Ordo.Expressions;

namespace Ordo.Agents.Models;

/// <summary>
/// Creates the <see cref="IChatClient"/> of a model tier: the scripted provider, or any OpenAI-compatible endpoint
/// (OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio). Clients are cached per tier definition.
/// </summary>
/// <remarks>Thread-safe. Register your own factory to use any other <see cref="IChatClient"/>.</remarks>
public class ModelClientFactory(ExpressionEvaluator evaluator, Gateway.SecretResolver? secrets = null)
{
    private readonly ConcurrentDictionary<ModelTier, IChatClient> _clients = new();
    private readonly Gateway.SecretResolver _secrets = secrets ?? new Gateway.SecretResolver();

    /// <summary>The connections to model providers, one pool shared by every tier of the process: answers are bounded in size.</summary>
#pragma warning disable RS0030 // One client for the process's lifetime, like the host's: it cannot exhaust sockets.
    private static readonly HttpClient Http = new(new BoundedResponseHandler(BoundedResponseHandler.DefaultMaxBytes)) { Timeout = Timeout.InfiniteTimeSpan };
#pragma warning restore RS0030

    /// <summary>Returns the client of a tier.</summary>
    /// <exception cref="ModelCallException">The tier's provider cannot be created (missing endpoint, key…).</exception>
    public virtual IChatClient GetClient(ModelTier tier)
    {
        ArgumentNullException.ThrowIfNull(tier);
        return _clients.GetOrAdd(tier, Create);
    }

    private IChatClient Create(ModelTier tier)
    {
        if (tier.Provider == "scripted")
        {
            return new ScriptedChatClient(tier.Fixtures ?? throw new ModelCallException("config_error", $"tier '{tier.Name}' has no fixtures", false), evaluator);
        }

        var endpoint = Resolve(tier.Endpoint) ?? tier.Provider switch
        {
            "openai" => "https://api.openai.com/v1",
            "ollama" => "http://127.0.0.1:11434/v1",
            "lmstudio" => "http://127.0.0.1:1234/v1",
            _ => throw new ModelCallException("config_error", $"tier '{tier.Name}' ({tier.Provider}) needs an 'endpoint'", retryable: false),
        };
        if (tier.Provider is "ollama" && !endpoint.TrimEnd('/').EndsWith("/v1", StringComparison.Ordinal))
        {
            endpoint = endpoint.TrimEnd('/') + "/v1";
        }
        else if (tier.Provider is "azure-openai" && !endpoint.Contains("/openai/", StringComparison.Ordinal))
        {
            endpoint = endpoint.TrimEnd('/') + "/openai/v1";
        }

        var key = Resolve(tier.ApiKey);
        if (string.IsNullOrEmpty(key))
        {
            if (tier.Provider is "openai" or "azure-openai")
            {
                throw new ModelCallException("config_error", $"tier '{tier.Name}' ({tier.Provider}) needs an 'api_key'", retryable: false);
            }

            key = "unused";
        }

        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(endpoint),
            NetworkTimeout = tier.Timeout,
            Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(Http),
        };
        return new OpenAIClient(new ApiKeyCredential(key), options).GetChatClient(tier.Model).AsIChatClient();
    }

    private string? Resolve(string? text)
    {
        if (text is null) return null;
        try
        {
            return _secrets.Resolve(text);
        }
        catch (Gateway.SecretNotFoundException e)
        {
            throw new ModelCallException("config_error", e.Message, retryable: false, e);
        }
    }
}

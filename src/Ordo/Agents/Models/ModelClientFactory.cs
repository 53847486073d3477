using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OpenAI;
using Ordo.Expressions;

namespace Ordo.Agents.Models;

/// <summary>
/// Creates the <see cref="IChatClient"/> of a model tier: the provider's client (scripted, Ollama's native API, or any
/// OpenAI-compatible endpoint: OpenAI, Azure OpenAI, vLLM, LM Studio), composed with <see cref="ChatClientBuilder"/>
/// under Ordo's middleware: the tier's circuit breaker, then its timeout and the classification of failures into
/// <see cref="ModelErrors"/>. Clients and circuits are kept per tier definition, for every job of the process.
/// </summary>
/// <remarks>
/// Thread-safe. Providers' clients never retry by themselves: a failed call fails the step's attempt, and the step's
/// <c>retry</c> decides. Override <see cref="CreateProviderClient"/> to use any other <see cref="IChatClient"/>.
/// </remarks>
public class ModelClientFactory(ExpressionEvaluator evaluator, Gateway.SecretResolver? secrets = null, TimeProvider? time = null)
{
    private readonly ConcurrentDictionary<TierKey, Lazy<IChatClient>> _clients = new();
    private readonly ConcurrentDictionary<TierKey, ModelCircuit> _circuits = new();
    private readonly Gateway.SecretResolver _secrets = secrets ?? new Gateway.SecretResolver();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The connections to model providers, one pool shared by every tier of the process: answers are bounded in size.</summary>
    private static readonly BoundedResponseHandler Handler = new(BoundedResponseHandler.DefaultMaxBytes);

#pragma warning disable RS0030 // Clients for the process's lifetime over one handler, like the host's: they cannot exhaust sockets.
    private static readonly HttpClient OpenAIHttp = new(Handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Ollama's client keeps only the status of an error answer: the handler keeps its message and Retry-After.</summary>
    private static readonly ErrorStatusHandler OllamaHandler = new(Handler);
#pragma warning restore RS0030

    /// <summary>The default endpoint of Ollama's native API.</summary>
    public const string DefaultOllamaEndpoint = "http://127.0.0.1:11434";

    /// <summary>Returns the client of a tier: its provider under the circuit breaker, the timeout and the error classification.</summary>
    /// <exception cref="ModelCallException">The tier's provider cannot be created (missing endpoint, key…): <see cref="ModelErrors.ConfigError"/>.</exception>
    public IChatClient GetClient(ModelTier tier)
    {
        ArgumentNullException.ThrowIfNull(tier);
        var key = TierKey.Of(tier);
        var lazy = _clients.GetOrAdd(key, k => new Lazy<IChatClient>(() => Compose(tier, CircuitOf(k)), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return lazy.Value;
        }
        catch (ModelCallException)
        {
            // A configuration that cannot be used now (a secret not set yet) may be fixed later: do not cache the failure.
            _clients.TryRemove(new KeyValuePair<TierKey, Lazy<IChatClient>>(key, lazy));
            throw;
        }
    }

    /// <summary>The circuit breaker of a tier, shared by every job of the process that uses the same tier definition.</summary>
    public ModelCircuit GetCircuit(ModelTier tier)
    {
        ArgumentNullException.ThrowIfNull(tier);
        return CircuitOf(TierKey.Of(tier));
    }

    /// <summary>
    /// The tier a call goes to: <paramref name="tier"/> itself, or, while its circuit is open, its fallback
    /// (<c>models.fallback</c>), followed as long as the fallback's own circuit is open and it has one.
    /// </summary>
    public ModelRoute Route(ModelTier tier, IReadOnlyDictionary<string, ModelTier> tiers, IReadOnlyDictionary<string, string> fallback)
    {
        ArgumentNullException.ThrowIfNull(tier);
        ArgumentNullException.ThrowIfNull(tiers);
        ArgumentNullException.ThrowIfNull(fallback);
        var current = tier;
        var seen = new HashSet<string>(StringComparer.Ordinal) { tier.Name };
        while (GetCircuit(current).IsOpen
            && fallback.TryGetValue(current.Name, out var next)
            && tiers.TryGetValue(next, out var nextTier)
            && seen.Add(next))
        {
            current = nextTier;
        }

        return new ModelRoute(current, ReferenceEquals(current, tier) ? null : tier.Name);
    }

    /// <summary>Creates the provider's own client of a tier, without Ordo's middleware (which <see cref="GetClient"/> adds).</summary>
    /// <exception cref="ModelCallException">The tier cannot be used as configured.</exception>
    protected virtual IChatClient CreateProviderClient(ModelTier tier)
    {
        ArgumentNullException.ThrowIfNull(tier);
        return tier.Provider switch
        {
            "scripted" => new ScriptedChatClient(tier.Fixtures ?? throw Config($"tier '{tier.Name}' has no fixtures"), evaluator),
            "ollama" => CreateOllama(tier),
            _ => CreateOpenAI(tier),
        };
    }

    private IChatClient Compose(ModelTier tier, ModelCircuit circuit)
        => new ChatClientBuilder(CreateProviderClient(tier))
            .Use(inner => new Faults.FaultChatClient(inner, tier))
            .Use(inner => new CircuitBreakerChatClient(inner, circuit, tier.Name))
            .Use(inner => new ModelErrorChatClient(inner, tier, _time))
            .Build();

    private ModelCircuit CircuitOf(TierKey key) => _circuits.GetOrAdd(key, k => new ModelCircuit(k.Breaker, _time));

    private IChatClient CreateOpenAI(ModelTier tier)
    {
        var endpoint = Resolve(tier.Endpoint) ?? tier.Provider switch
        {
            "openai" => "https://api.openai.com/v1",
            "lmstudio" => "http://127.0.0.1:1234/v1",
            "vllm" => "http://127.0.0.1:8000/v1",
            _ => throw Config($"tier '{tier.Name}' ({tier.Provider}) needs an 'endpoint'"),
        };
        if (tier.Provider is "azure-openai" && !endpoint.Contains("/openai/", StringComparison.Ordinal))
        {
            endpoint = endpoint.TrimEnd('/') + "/openai/v1";
        }

        var key = Resolve(tier.ApiKey);
        if (string.IsNullOrEmpty(key))
        {
            if (tier.Provider is "openai" or "azure-openai")
            {
                throw Config($"tier '{tier.Name}' ({tier.Provider}) needs an 'api_key'");
            }

            key = "unused";
        }

        var options = new OpenAIClientOptions
        {
            Endpoint = Uri(tier, endpoint),
            // The step's retry is the only retry of a model call: the client's own (3 by default, with its own backoff)
            // would multiply requests behind the step's back and hide them from the log.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            // The tier's timeout is applied around the call (ModelErrorChatClient); this only backs it up.
            NetworkTimeout = tier.Timeout + TimeSpan.FromSeconds(30),
            Transport = new HttpClientPipelineTransport(OpenAIHttp),
        };
        return new OpenAIClient(new ApiKeyCredential(key), options).GetChatClient(tier.Model).AsIChatClient();
    }

    private OllamaApiClient CreateOllama(ModelTier tier)
    {
        // Ollama's native API is at /api/chat; an endpoint written for its OpenAI-compatible API (…/v1) names the same server.
        var endpoint = (Resolve(tier.Endpoint) ?? DefaultOllamaEndpoint).TrimEnd('/');
        if (endpoint.EndsWith("/v1", StringComparison.Ordinal)) endpoint = endpoint[..^3];
#pragma warning disable RS0030 // A thin client per tier over the process's one handler: the connections are shared.
        var http = new HttpClient(OllamaHandler, disposeHandler: false) { BaseAddress = Uri(tier, endpoint + "/"), Timeout = Timeout.InfiniteTimeSpan };
#pragma warning restore RS0030
        var client = new OllamaApiClient(http, tier.Model);
        if (Resolve(tier.ApiKey) is { Length: > 0 } key)
        {
            client.DefaultRequestHeaders["Authorization"] = "Bearer " + key;
        }

        return client;
    }

    private static Uri Uri(ModelTier tier, string endpoint)
        => System.Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw Config($"tier '{tier.Name}' ({tier.Provider}): endpoint '{endpoint}' is not an http(s) URL");

    private static ModelCallException Config(string message) => new(ModelErrors.ConfigError, message, retryable: false);

    private string? Resolve(string? text)
    {
        if (text is null) return null;
        try
        {
            return _secrets.Resolve(text);
        }
        catch (Gateway.SecretNotFoundException e)
        {
            throw new ModelCallException(ModelErrors.ConfigError, e.Message, retryable: false, e);
        }
    }

    /// <summary>What makes two tiers the same for their client and circuit: their definition, not the object.</summary>
    private sealed record TierKey(string Name, string Provider, string Model, string? Endpoint, string? ApiKey, TimeSpan Timeout, Tools.CircuitBreakerSettings Breaker, ScriptedFixtures? Fixtures)
    {
        public static TierKey Of(ModelTier t) => new(t.Name, t.Provider, t.Model, t.Endpoint, t.ApiKey, t.Timeout, t.CircuitBreaker, t.Fixtures);
    }
}

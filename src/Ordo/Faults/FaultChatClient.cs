using Microsoft.Extensions.AI;
using Ordo.Agents.Models;

namespace Ordo.Faults;

/// <summary>
/// Middleware right above a tier's provider that injects the model faults of the job's project (handed over in
/// <see cref="ModelCallProperties.Faults"/>): a timeout, rate limit or server error fails the call as the provider's
/// own would (the circuit breaker counts it); <c>malformed</c> answers with text that is not JSON. The provider is not called then.
/// </summary>
internal sealed class FaultChatClient(IChatClient inner, ModelTier tier) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var properties = options?.AdditionalProperties;
        if (properties?.TryGetValue(ModelCallProperties.Faults, out var f) == true && f is FaultSettings { Models.Count: > 0 } faults
            && properties.TryGetValue(ModelCallProperties.Job, out var j) && j is string job
            && properties.TryGetValue(ModelCallProperties.CallId, out var c) && c is string call)
        {
            var agent = properties.TryGetValue(ModelCallProperties.Agent, out var a) ? a as string : null;
            var attempt = properties.TryGetValue(ModelCallProperties.Attempt, out var n) && n is int i ? i : 1;
            var fault = faults.Models.FirstOrDefault(m => (m.Tier is null || m.Tier == tier.Name) && (m.Agent is null || m.Agent == agent) && (m.Attempts is null || m.Attempts.Contains(attempt)));
            if (fault is not null && FaultDecision.Hit(faults.Seed, job, call, fault.Rate))
            {
                var message = $"injected fault ({fault.Where})";
                return fault.Error switch
                {
                    "timeout" => throw new ModelCallException(ModelErrors.Timeout, $"no answer: {message}", retryable: true),
                    "rate_limited" => throw new ModelCallException(ModelErrors.RateLimited, $"rate limited: {message}", retryable: true) { RetryAfter = TimeSpan.FromSeconds(1) },
                    "server_error" => throw new ModelCallException(ModelErrors.ServerError, $"server error: {message}", retryable: true),
                    _ => Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "{\"injected fault\": this answer is not JSON")) { ModelId = tier.Model }),
                };
            }
        }

        return base.GetResponseAsync(messages, options, cancellationToken);
    }
}

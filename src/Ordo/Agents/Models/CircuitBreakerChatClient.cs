using Microsoft.Extensions.AI;

namespace Ordo.Agents.Models;

/// <summary>Middleware that sends a tier's calls through its <see cref="ModelCircuit"/>.</summary>
/// <remarks>Streaming calls pass through unguarded: Ordo's agents make whole calls.</remarks>
internal sealed class CircuitBreakerChatClient(IChatClient inner, ModelCircuit circuit, string tier) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        => circuit.ExecuteAsync(ct => base.GetResponseAsync(messages, options, ct), tier, cancellationToken);
}

using Microsoft.Extensions.AI;

namespace Ordo.Agents.Models;

/// <summary>
/// Middleware that bounds a tier's call by its <c>timeout</c> and turns whatever the provider's client throws into a
/// <see cref="ModelCallException"/> of one of the <see cref="ModelErrors"/> kinds; an answer without a message is
/// <see cref="ModelErrors.MalformedResponse"/>. Cancellation by the caller passes through as it is.
/// </summary>
/// <remarks>Streaming calls pass through unclassified: Ordo's agents make whole calls.</remarks>
internal sealed class ModelErrorChatClient(IChatClient inner, ModelTier tier, TimeProvider time) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var timeout = new CancellationTokenSource(tier.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        ChatResponse response;
        try
        {
            // WaitAsync: a client that ignores its token does not hold the step past the timeout.
            response = await base.GetResponseAsync(messages, options, linked.Token).WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Ours, or the transport's own network timeout: either way the provider did not answer in time.
            throw new ModelCallException(ModelErrors.Timeout, $"no answer within {Durations.Format(tier.Timeout)}", retryable: true);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not ModelCallException && ProviderErrors.Classify(e, time) is { } classified)
        {
            throw classified;
        }

        if (response.Messages.Count == 0)
        {
            throw new ModelCallException(ModelErrors.MalformedResponse, "the provider's answer has no message", retryable: true);
        }

        return response;
    }
}

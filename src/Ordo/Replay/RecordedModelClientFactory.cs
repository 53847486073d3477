using Microsoft.Extensions.AI;
using Ordo.Agents.Models;
using Ordo.Expressions;

namespace Ordo.Replay;

/// <summary>
/// The model clients of a replay: every tier's provider is the recording (<see cref="RecordedChatClient"/>), under the
/// same circuit breaker, timeout and error classification as a live tier's, so a recorded failure takes the same path.
/// </summary>
internal sealed class RecordedModelClientFactory(ExpressionEvaluator evaluator, ReplaySource source, TimeProvider time)
    : ModelClientFactory(evaluator, null, time)
{
    protected override IChatClient CreateProviderClient(ModelTier tier) => new RecordedChatClient(source);
}

using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Ordo.Events;

/// <summary>Serializes event payloads to and from their stored JSON form (snake_case, nulls omitted).</summary>
public static class EventPayloads
{
    /// <summary>Serializes a payload to UTF-8 JSON.</summary>
    public static byte[] Serialize<T>(T payload) where T : class
        => JsonSerializer.SerializeToUtf8Bytes(payload, Info<T>());

    /// <summary>Deserializes a payload from UTF-8 JSON.</summary>
    /// <exception cref="InvalidDataException">The JSON does not match the payload type.</exception>
    public static T Deserialize<T>(ReadOnlySpan<byte> json) where T : class
        => JsonSerializer.Deserialize(json, Info<T>()) ?? throw new InvalidDataException($"An event payload of type {typeof(T).Name} is null.");

    private static JsonTypeInfo<T> Info<T>() => InfoCache<T>.Value;

    private static class InfoCache<T>
    {
        public static readonly JsonTypeInfo<T> Value = (JsonTypeInfo<T>?)EventPayloadJsonContext.Default.GetTypeInfo(typeof(T))
            ?? throw new InvalidOperationException($"{typeof(T).Name} is not an event payload type.");
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(JobSubmittedPayload))]
[JsonSerializable(typeof(StepScheduledPayload))]
[JsonSerializable(typeof(StepStartedPayload))]
[JsonSerializable(typeof(StepSucceededPayload))]
[JsonSerializable(typeof(StepFailedPayload))]
[JsonSerializable(typeof(ArtifactPutPayload))]
[JsonSerializable(typeof(ArtifactVerdictPayload))]
[JsonSerializable(typeof(ToolCallRequestedPayload))]
[JsonSerializable(typeof(ToolCallSucceededPayload))]
[JsonSerializable(typeof(ToolCallFailedPayload))]
[JsonSerializable(typeof(ModelCallRequestedPayload))]
[JsonSerializable(typeof(ModelCallSucceededPayload))]
[JsonSerializable(typeof(ModelCallFailedPayload))]
[JsonSerializable(typeof(JobCompletedPayload))]
[JsonSerializable(typeof(JobFailedPayload))]
[JsonSerializable(typeof(JobCancelledPayload))]
[JsonSerializable(typeof(StepBlockedPayload))]
[JsonSerializable(typeof(PolicyDecisionPayload))]
[JsonSerializable(typeof(ApprovalRequestedPayload))]
[JsonSerializable(typeof(ApprovalDecidedPayload))]
[JsonSerializable(typeof(BudgetExceededPayload))]
[JsonSerializable(typeof(EscalatedPayload))]
[JsonSerializable(typeof(KillSwitchTriggeredPayload))]
[JsonSerializable(typeof(CircuitStateChangedPayload))]
[JsonSerializable(typeof(PatternStartedPayload))]
[JsonSerializable(typeof(BranchStartedPayload))]
[JsonSerializable(typeof(BranchEndedPayload))]
[JsonSerializable(typeof(PatternProgressedPayload))]
internal sealed partial class EventPayloadJsonContext : JsonSerializerContext;

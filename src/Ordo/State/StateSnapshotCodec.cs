using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Ordo.State;

/// <summary>A job's state as of one sequence number, stored so that loading a job does not replay its whole log.</summary>
/// <param name="Seq">The sequence number of the last event the state includes.</param>
/// <param name="Data">The serialized state (see <see cref="StateSnapshotCodec"/>).</param>
public sealed record StateSnapshot(long Seq, byte[] Data);

/// <summary>Serializes <see cref="JobState"/> for snapshots.</summary>
public static class StateSnapshotCodec
{
    /// <summary>The version of the snapshot format; a snapshot of another version is ignored and the log replayed.</summary>
    public const int FormatVersion = 2;

    /// <summary>Serializes a state.</summary>
    public static StateSnapshot Encode(JobState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var envelope = new SnapshotEnvelope(FormatVersion, state);
        return new StateSnapshot(state.Seq, JsonSerializer.SerializeToUtf8Bytes(envelope, SnapshotJsonContext.Default.SnapshotEnvelope));
    }

    /// <summary>Deserializes a snapshot, or returns null when it was written in another format version or is unreadable (the log is then replayed).</summary>
    public static JobState? Decode(StateSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        SnapshotEnvelope? envelope;
        try
        {
            envelope = JsonSerializer.Deserialize(snapshot.Data, SnapshotJsonContext.Default.SnapshotEnvelope);
        }
        catch (JsonException)
        {
            return null;
        }

        if (envelope is null || envelope.Format != FormatVersion || envelope.State.Seq != snapshot.Seq)
        {
            return null;
        }

        return envelope.State;
    }
}

internal sealed record SnapshotEnvelope(int Format, JobState State);

internal sealed class JobIdJsonConverter : JsonConverter<JobId>
{
    public override JobId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => new(reader.GetString() ?? throw new JsonException("job id is null"));

    public override void Write(Utf8JsonWriter writer, JobId value, JsonSerializerOptions options) => writer.WriteStringValue(value.Value);
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(JobIdJsonConverter)])]
[JsonSerializable(typeof(SnapshotEnvelope))]
internal sealed partial class SnapshotJsonContext : JsonSerializerContext
{
    internal static JsonTypeInfo<JobState> JobStateInfo => Default.JobState;
}

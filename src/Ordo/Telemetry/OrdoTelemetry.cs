using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;

namespace Ordo.Telemetry;

/// <summary>
/// The names under which Ordo reports traces and metrics: one <see cref="ActivitySource"/> and one <see cref="Meter"/>,
/// both called <c>Ordo</c>. The runtime depends only on <c>System.Diagnostics</c>: with no listener attached a span is
/// never created and no measurement is taken.
/// </summary>
public static class OrdoTelemetry
{
    /// <summary>The name of Ordo's <see cref="ActivitySource"/> and <see cref="Meter"/>: <c>Ordo</c>.</summary>
    public const string Name = "Ordo";

    /// <summary>The source of every span the runtime starts.</summary>
    internal static readonly ActivitySource Source = new(Name, typeof(OrdoTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>The meter of every instrument the runtime records.</summary>
    internal static readonly Meter Meter = new(Name, typeof(OrdoTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// The context every span of a job's steps descends from: the job's trace id (stored when it was submitted) and the
    /// span id of the job span recorded then, or — when nothing recorded a job span — one derived from the job id, so
    /// every process that runs a step of the job names the same parent.
    /// </summary>
    public static ActivityContext JobContext(JobId jobId, string traceId, string? rootSpanId)
    {
        var trace = traceId.Length == 32 && IsHex(traceId) ? ActivityTraceId.CreateFromString(traceId) : DerivedTraceId(jobId);
        var span = rootSpanId is { Length: 16 } && IsHex(rootSpanId) ? ActivitySpanId.CreateFromString(rootSpanId) : DerivedSpanId(jobId);
        return new ActivityContext(trace, span, ActivityTraceFlags.Recorded, traceState: null, isRemote: true);
    }

    /// <summary>The span id a job's steps name as their parent when no job span was recorded: the first 8 bytes of SHA-256 over the job id.</summary>
    public static ActivitySpanId DerivedSpanId(JobId jobId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("ordo-job-span:" + jobId.Value), hash);
        return ActivitySpanId.CreateFromBytes(hash[..8]);
    }

    private static ActivityTraceId DerivedTraceId(JobId jobId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("ordo-job-trace:" + jobId.Value), hash);
        return ActivityTraceId.CreateFromBytes(hash[..16]);
    }

    private static bool IsHex(string s)
    {
        foreach (var c in s)
        {
            if (!char.IsAsciiHexDigit(c)) return false;
        }

        return true;
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Ordo.Engine;
using Ordo.Sqlite;

namespace Ordo.Cli.Bench;

/// <summary>
/// Runs the reference workloads W1–W5 on Ordo, with the definitions, sizes, repetition rules and JSON field names of
/// the LangGraph.js peer harness (<c>peer/langgraph/README.md</c>), and returns one JSON object like the peer's.
/// </summary>
/// <remarks>
/// Where the two differ, the difference is stated in <c>detail</c>: an invocation is <c>SubmitAsync</c> followed by
/// <c>WaitAsync</c> on a runtime whose workers are running. The <c>patterns</c> workload is Ordo's own (the cost of a
/// foreach over 1,000 items and of a parallel step of 64 branches) and is reported under <c>patterns</c>.
/// </remarks>
internal sealed partial class OrdoBench(BenchSettings settings, TextWriter? progress)
{
    private readonly BenchSizes _p = BenchSizes.For(settings.Quick);

    /// <summary>Workers of the runtimes that run one job at a time (W1, W2, W4, W5): the runtime's default.</summary>
    private static int DefaultWorkers => new OrdoRuntimeOptions().Workers;

    private int W3Workers => settings.W3Workers ?? BenchSettings.DefaultW3Workers;

    /// <summary>Runs the selected workloads in order; a workload that fails is reported under <c>errors</c> and the others still run.</summary>
    public async Task<JsonObject> RunAsync(CancellationToken stop)
    {
        var started = Stopwatch.GetTimestamp();
        var ordoVersion = typeof(OrdoRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "?";
        var sqliteVersion = typeof(Microsoft.Data.Sqlite.SqliteConnection).Assembly.GetName().Version?.ToString(3) ?? "?";
        var output = new JsonObject
        {
            ["engine"] = $"ordo {ordoVersion}",
            ["store"] = $"SqliteOrdoStore (Microsoft.Data.Sqlite {sqliteVersion})",
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["cpus"] = Environment.ProcessorCount,
            ["timestamp"] = Output.JsonOut.Timestamp(TimeProvider.System.GetUtcNow()),
            ["quick"] = settings.Quick,
            ["workloads"] = new JsonArray(settings.Workloads.Select(w => (JsonNode)w).ToArray()),
        };
        var detail = new JsonObject
        {
            ["platform"] = $"{RuntimeInformation.OSDescription} {RuntimeInformation.OSArchitecture}".ToLowerInvariant(),
            ["cpu_model"] = CpuModel(),
            ["loadavg_at_start"] = LoadAverage(),
            ["tmpdir"] = Path.GetTempPath(),
            ["gc"] = $"{(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, {(System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.Batch ? "non-concurrent" : "concurrent")}",
            ["params"] = _p.ToJson(),
            ["invocation"] = "SubmitAsync then WaitAsync, on a runtime whose workers run in the background (RunAsync, UntilIdle = false); a fresh job per invocation, as the peer uses a fresh thread_id",
            ["workers"] = new JsonObject { ["default"] = DefaultWorkers, ["w3"] = W3Workers },
        };

        output["sqlite"] = await ProbeSqliteAsync(stop).ConfigureAwait(false);

        var errors = new JsonObject();
        foreach (var w in settings.Workloads)
        {
            var t0 = Stopwatch.GetTimestamp();
            try
            {
                switch (w)
                {
                    case "w1": await W1Async(output, detail, stop).ConfigureAwait(false); break;
                    case "w2": await W2Async(output, detail, stop).ConfigureAwait(false); break;
                    case "w3": await W3Async(output, detail, stop).ConfigureAwait(false); break;
                    case "w4": await W4Async(output, detail, stop).ConfigureAwait(false); break;
                    case "w5": await W5Async(output, detail, stop).ConfigureAwait(false); break;
                    case "patterns": await PatternsAsync(output, stop).ConfigureAwait(false); break;
                    case "models": await ModelsAsync(output, stop).ConfigureAwait(false); break;
                    case "server": await ServerAsync(output, stop).ConfigureAwait(false); break;
                    case "audit": await AuditAsync(output, stop).ConfigureAwait(false); break;
                    case "stats": await StatsAsync(output, stop).ConfigureAwait(false); break;
                    default: throw new InvalidOperationException($"unknown workload {w}");
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                errors[w] = e is BenchFailedException ? e.Message : e.ToString();
                Log($"{w} FAILED: {e.Message}");
            }

            Log($"{w} done in {Stopwatch.GetElapsedTime(t0).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
            // Start each workload with a clean heap, outside any timed region, so one workload's garbage is not the next one's pause.
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        detail["loadavg_at_end"] = LoadAverage();
        output["total_wall_s"] = BenchStats.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1);
        if (errors.Count > 0) output["errors"] = errors;
        output["detail"] = detail;
        return output;
    }

    /// <summary>The effective settings of a fresh store as the benchmark uses it.</summary>
    private static async Task<JsonObject> ProbeSqliteAsync(CancellationToken stop)
    {
        using var db = BenchDatabase.Create("probe");
        var store = db.OpenStore();
        try
        {
            await store.InitializeAsync(stop).ConfigureAwait(false);
            var (mode, sync) = store.GetPragmas();
            using var c = db.OpenInspector();
            return new JsonObject { ["journal_mode"] = mode, ["synchronous"] = sync, ["sqlite_version"] = SqliteFacts.Version(c) };
        }
        finally
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void Log(string message) => progress?.WriteLine($"[bench] {message}");

    private static string F0(double x) => x.ToString("0", CultureInfo.InvariantCulture);

    private static string F2(double x) => x.ToString("0.00", CultureInfo.InvariantCulture);

    private static JsonArray Array(IEnumerable<double> values, int digits) => new([.. values.Select(v => (JsonNode)BenchStats.Round(v, digits))]);

    private static string? CpuModel()
    {
        try
        {
            return File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static JsonArray? LoadAverage()
    {
        try
        {
            if (!File.Exists("/proc/loadavg")) return null;
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return new JsonArray([.. parts.Take(3).Select(p => (JsonNode)double.Parse(p, CultureInfo.InvariantCulture))]);
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
            return null;
        }
    }

    private static SqliteOrdoStore Sqlite(BenchHost host) => (SqliteOrdoStore)host.Store;
}

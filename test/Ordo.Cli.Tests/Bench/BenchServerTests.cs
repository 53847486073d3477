using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Bench;

/// <summary>
/// <c>ordo bench --server</c> runs end to end: a real server on loopback, clients over HTTP, the queue drained, and every
/// accepted job found completed through the API. Counts only; no timing is asserted.
/// </summary>
public sealed class BenchServerTests
{
    [Fact]
    public async Task BenchServer_TinyRun_LosesNothing_AndItsCountsAgree()
    {
        var r = await CliRunner.RunExpectingAsync(0, "bench", "--server", "--duration", "2", "--clients", "2", "--json");
        var root = r.Json();
        Assert.Equal(["server"], root.GetProperty("workloads").EnumerateArray().Select(w => w.GetString()));
        Assert.False(root.TryGetProperty("errors", out _), r.ToString());
        var s = root.GetProperty("server");
        Assert.Equal(2, s.GetProperty("clients").GetInt32());
        var accepted = s.GetProperty("accepted").GetInt32();
        Assert.True(accepted > 0, r.ToString());
        Assert.Equal(accepted, s.GetProperty("accepted_distinct_job_ids").GetInt32());
        Assert.Equal(accepted, s.GetProperty("completed").GetInt32());
        Assert.Equal(accepted, s.GetProperty("submit_latency_ms").GetProperty("samples").GetInt32());
        Assert.InRange(s.GetProperty("completed_during_load").GetInt32(), 0, accepted);
        Assert.Equal(0, s.GetProperty("lost").GetInt32());
        var v = s.GetProperty("verification");
        Assert.Equal(accepted, v.GetProperty("listed").GetInt32());
        foreach (var zero in new[] { "missing", "not_completed", "duplicated", "unacknowledged" })
        {
            Assert.Equal(0, v.GetProperty(zero).GetInt32());
        }

        Assert.Equal(v.GetProperty("idempotent_replays_checked").GetInt32(), v.GetProperty("idempotent_replays_same_job").GetInt32());
        Assert.Equal(v.GetProperty("outputs_checked").GetInt32(), v.GetProperty("outputs_right").GetInt32());
        Assert.True(v.GetProperty("outputs_checked").GetInt32() > 0);
        var latency = s.GetProperty("submit_latency_ms");
        Assert.True(latency.GetProperty("p50").GetDouble() <= latency.GetProperty("p95").GetDouble());
        Assert.True(latency.GetProperty("p95").GetDouble() <= latency.GetProperty("p99").GetDouble());
    }

    [Fact]
    public async Task BenchServer_RefusesNonsenseOptions()
    {
        var r = await CliRunner.RunAsync("bench", "--server", "--clients", "0");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--clients", r.Err, StringComparison.Ordinal);
    }
}

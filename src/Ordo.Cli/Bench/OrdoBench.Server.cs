using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ordo.Server;
using Ordo.Server.Auth;
using Ordo.Server.Hosting;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    private const string ServerTenant = "bench";
    private const string ServerWorkflowName = "bench-server";

    /// <summary>Steps of the server workload's workflow: a transform then three code steps.</summary>
    private const int ServerWorkflowSteps = 4;

    /// <summary>Attempts of one submission (the same Idempotency-Key each time) before the client gives it up.</summary>
    private const int SubmitAttempts = 5;

    /// <summary>
    /// The server under load: <c>ordo serve</c>'s host (<see cref="ServerHost"/>) on a free loopback port, over a fresh
    /// SQLite file, with its default workers and an API key created in the store as <c>ordo keys create</c> does. N clients
    /// (one HttpClient and connection each) submit a four-step workflow with <c>POST /v1/jobs</c> and a unique
    /// <c>Idempotency-Key</c> for the set duration; then the queue drains and every job of the tenant is listed through
    /// the API. The workload fails when an accepted job is missing, is not completed, or is listed twice.
    /// </summary>
    private async Task ServerAsync(JsonObject output, CancellationToken stop)
    {
        var duration = settings.ServerDuration ?? (settings.Quick ? BenchSettings.QuickServerDuration : BenchSettings.DefaultServerDuration);
        var clients = settings.ServerClients ?? BenchSettings.DefaultServerClients;
        var loadAtStart = LoadAverage();
        using var db = BenchDatabase.Create("server");

        var key = ApiKeys.NewKey();
        var store = db.OpenStore();
        try
        {
            await store.InitializeAsync(stop).ConfigureAwait(false);
            await ((IApiKeyStore)store).CreateApiKeyAsync(new ApiKeyRecord(ApiKeys.NewKeyId(), ServerTenant, "bench-client", ApiKeys.Hash(key), TimeProvider.System.GetUtcNow()), stop).ConfigureAwait(false);
        }
        finally
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }

        await using var app = ServerHost.Build(new ServeSettings
        {
            Urls = "http://127.0.0.1:0",
            DatabasePath = db.Path,
            Workflows = [ServerWorkflow()],
            Workers = settings.ServerWorkers,
            Configure = b =>
            {
                // The bench prints its own report on stdout; the server's errors (a 500 has one) go to stderr beside the progress.
                b.Logging.ClearProviders();
                b.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter((_, level) => level >= LogLevel.Error);
                b.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
                // The default of 600 requests a minute per key would measure the rate limiter, not the server.
                b.Services.Configure<OrdoServerOptions>(o => o.RateLimitPermits = int.MaxValue);
            },
        });
        await app.StartAsync(stop).ConfigureAwait(false);
        try
        {
            var baseUri = new Uri(app.Urls.First());
            var workers = settings.ServerWorkers ?? Environment.ProcessorCount;
            Log($"server: {baseUri} with {workers} workers; {clients} clients submit for {duration.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s");
            using var admin = NewClient(baseUri, key);
            (await admin.GetAsync(new Uri("/readyz", UriKind.Relative), stop).ConfigureAwait(false)).EnsureSuccessStatusCode();

            var run = new ServerRun();
            var started = Stopwatch.GetTimestamp();
            var startedAt = TimeProvider.System.GetUtcNow();
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                deadline.CancelAfter(duration);
                await Task.WhenAll(Enumerable.Range(0, clients).Select(c => ClientAsync(c, baseUri, key, run, deadline.Token, stop))).ConfigureAwait(false);
            }

            stop.ThrowIfCancellationRequested();
            var loadWall = Stopwatch.GetElapsedTime(started);
            var loadEndedAt = startedAt + loadWall;
            Log($"server: {run.Accepted.Count} jobs accepted in {loadWall.TotalSeconds:0.0} s; waiting for the queue to drain");

            // The clients submit faster than the workers run jobs (see docs/benchmarks.md): the backlog drains for about as long again as the load.
            var drainBound = TimeSpan.FromSeconds(Math.Max(120, duration.TotalSeconds * 5));
            var drainStarted = Stopwatch.GetTimestamp();
            while (await PendingAsync(admin, stop).ConfigureAwait(false))
            {
                if (Stopwatch.GetElapsedTime(drainStarted) > drainBound)
                {
                    throw new BenchFailedException($"server: jobs were still queued or running {drainBound.TotalSeconds:0} s after the load stopped");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), stop).ConfigureAwait(false);
            }

            var drain = Stopwatch.GetElapsedTime(drainStarted);
            var listed = await ListAllAsync(admin, stop).ConfigureAwait(false);
            Verify(output, run, listed, await ReplayAsync(admin, run, stop).ConfigureAwait(false), await CheckOutputsAsync(admin, run, stop).ConfigureAwait(false),
                new JsonObject
                {
                    ["note"] = "ordo serve's host in this process on loopback, SQLite (synchronous=NORMAL) in a temp file, default workers; POST /v1/jobs with a unique Idempotency-Key per job, one HttpClient (one connection) per client, each submitting its next job when the last is answered; the per-key rate limit is lifted",
                    ["url"] = baseUri.ToString(),
                    ["workflow"] = $"{ServerWorkflowName}@1: a transform and three code steps",
                    ["steps_per_job"] = ServerWorkflowSteps,
                    ["workers"] = workers,
                    ["clients"] = clients,
                    ["duration_s"] = BenchStats.Round(duration.TotalSeconds, 1),
                    ["load_wall_s"] = BenchStats.Round(loadWall.TotalSeconds, 2),
                    ["drain_s"] = BenchStats.Round(drain.TotalSeconds, 2),
                    ["loadavg_at_start"] = loadAtStart,
                },
                startedAt, loadEndedAt, loadWall);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static WorkflowDefinition ServerWorkflow() => WorkflowBuilder.Create(ServerWorkflowName, 1)
        .Step("receive", s => s.Transform("order", "${ input }").Next("price"))
        .Step("price", s => s.Code(ctx => Json.Of(new { i = ctx.State.Input!.Value.GetProperty("i").GetInt32() + 1 })).Next("tax"))
        .Step("tax", s => s.Code(ctx => Json.Of(new { i = ctx.OutputOf("price")!.Value.GetProperty("i").GetInt32() + 1 })).Next("total"))
        .Step("total", s => s.Code(ctx => Json.Of(new { i = ctx.OutputOf("tax")!.Value.GetProperty("i").GetInt32() + 1 }), output: "total"))
        .Build();

    private static HttpClient NewClient(Uri baseUri, string key)
    {
#pragma warning disable RS0030 // Each client stands for a separate caller with its own connection, for the whole workload: no host gives these.
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
#pragma warning restore RS0030
        {
            BaseAddress = baseUri,
            Timeout = TimeSpan.FromSeconds(60),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>One client: submits until the deadline, each job with its own Idempotency-Key, retried with that key on a transport error or a 5xx.</summary>
    private static async Task ClientAsync(int client, Uri baseUri, string key, ServerRun run, CancellationToken deadline, CancellationToken stop)
    {
        using var http = NewClient(baseUri, key);
        var latencies = new List<double>();
        for (var seq = 0; !deadline.IsCancellationRequested; seq++)
        {
            var idempotencyKey = $"bench-{client}-{seq}";
            var body = $"{{\"workflow\":\"{ServerWorkflowName}\",\"input\":{{\"i\":{seq}}}}}";
            for (var attempt = 1; ; attempt++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                request.Headers.Add("Idempotency-Key", idempotencyKey);
                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    // Once sent, a submission is seen through (stop only): giving up mid-request would leave the client not knowing.
                    using var response = await http.SendAsync(request, stop).ConfigureAwait(false);
                    var text = await response.Content.ReadAsStringAsync(stop).ConfigureAwait(false);
                    var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    if (response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK)
                    {
                        latencies.Add(ms);
                        using var doc = JsonDocument.Parse(text);
                        var jobId = doc.RootElement.GetProperty("job_id").GetString()!;
                        if (!run.Accepted.TryAdd(idempotencyKey, jobId)) run.Count("same_key_twice");
                        if (response.StatusCode == HttpStatusCode.OK) run.Count(attempt == 1 ? "replayed_unexpectedly" : "replayed_after_retry");
                        break;
                    }

                    run.Count($"http_{(int)response.StatusCode}");
                    if ((int)response.StatusCode < 500 && response.StatusCode != HttpStatusCode.TooManyRequests) break;
                }
                catch (HttpRequestException)
                {
                    run.Count("transport_error");
                }

                if (attempt == SubmitAttempts)
                {
                    run.Count("given_up");
                    break;
                }

                run.Count("retries");
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt), stop).ConfigureAwait(false);
            }
        }

        run.AddLatencies(latencies);
    }

    /// <summary>Whether a job of the tenant is still queued or running.</summary>
    private static async Task<bool> PendingAsync(HttpClient admin, CancellationToken stop)
    {
        foreach (var status in new[] { "queued", "running" })
        {
            using var doc = JsonDocument.Parse(await admin.GetStringAsync(new Uri($"/v1/jobs?status={status}&limit=1", UriKind.Relative), stop).ConfigureAwait(false));
            if (doc.RootElement.GetProperty("jobs").GetArrayLength() > 0) return true;
        }

        return false;
    }

    /// <summary>Every job of the tenant, page by page (500 a page) through <c>GET /v1/jobs</c>.</summary>
    private static async Task<List<(string JobId, string Status, DateTimeOffset UpdatedAt)>> ListAllAsync(HttpClient admin, CancellationToken stop)
    {
        var jobs = new List<(string, string, DateTimeOffset)>();
        string? cursor = null;
        do
        {
            var uri = "/v1/jobs?limit=500" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor));
            using var doc = JsonDocument.Parse(await admin.GetStringAsync(new Uri(uri, UriKind.Relative), stop).ConfigureAwait(false));
            foreach (var j in doc.RootElement.GetProperty("jobs").EnumerateArray())
            {
                jobs.Add((j.GetProperty("job_id").GetString()!, j.GetProperty("status").GetString()!,
                    DateTimeOffset.Parse(j.GetProperty("updated_at").GetString()!, CultureInfo.InvariantCulture)));
            }

            cursor = doc.RootElement.GetProperty("next_cursor").ValueKind == JsonValueKind.String ? doc.RootElement.GetProperty("next_cursor").GetString() : null;
        }
        while (cursor is not null);
        return jobs;
    }

    /// <summary>Submits again, with the same keys, up to 100 accepted jobs: each must answer 200 with the same job and create nothing.</summary>
    private static async Task<(int Checked, int Same)> ReplayAsync(HttpClient admin, ServerRun run, CancellationToken stop)
    {
        var sample = run.Accepted.OrderBy(kv => kv.Key, StringComparer.Ordinal).Where((_, k) => k % Math.Max(1, run.Accepted.Count / 100) == 0).Take(100).ToList();
        var same = 0;
        foreach (var (idempotencyKey, jobId) in sample)
        {
            var seq = idempotencyKey[(idempotencyKey.LastIndexOf('-') + 1)..];
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent($"{{\"workflow\":\"{ServerWorkflowName}\",\"input\":{{\"i\":{seq}}}}}", Encoding.UTF8, "application/json") };
            request.Headers.Add("Idempotency-Key", idempotencyKey);
            using var response = await admin.SendAsync(request, stop).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(stop).ConfigureAwait(false));
            if (response.StatusCode == HttpStatusCode.OK && doc.RootElement.TryGetProperty("job_id", out var id) && id.GetString() == jobId) same++;
        }

        return (sample.Count, same);
    }

    /// <summary>Reads up to 20 accepted jobs in full: each must have run its four steps, its <c>total</c> artifact at <c>i</c> = its input + 3.</summary>
    private static async Task<(int Checked, int Right)> CheckOutputsAsync(HttpClient admin, ServerRun run, CancellationToken stop)
    {
        var sample = run.Accepted.OrderBy(kv => kv.Value, StringComparer.Ordinal).Take(20).ToList();
        var right = 0;
        foreach (var (idempotencyKey, jobId) in sample)
        {
            var seq = int.Parse(idempotencyKey[(idempotencyKey.LastIndexOf('-') + 1)..], CultureInfo.InvariantCulture);
            var job = JsonNode.Parse(await admin.GetStringAsync(new Uri($"/v1/jobs/{jobId}", UriKind.Relative), stop).ConfigureAwait(false));
            if (job?["status"]?.GetValue<string>() == "completed" && FindI(job) == seq + 3) right++;
        }

        return (sample.Count, right);
    }

    /// <summary>The <c>i</c> of the <c>total</c> artifact in the job JSON, when all four steps succeeded.</summary>
    private static int? FindI(JsonNode job)
    {
        var succeeded = (job["steps"] as JsonArray)?.Count(s => s?["status"]?.GetValue<string>() == "succeeded") ?? 0;
        return succeeded == ServerWorkflowSteps && job["artifacts"]?["total"]?["value"]?["i"] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;
    }

    /// <summary>Puts the figures under <c>server</c>, then fails the workload if a job was lost, duplicated or wrong.</summary>
    private static void Verify(JsonObject output, ServerRun run, List<(string JobId, string Status, DateTimeOffset UpdatedAt)> listed, (int Checked, int Same) replays,
        (int Checked, int Right) outputs, JsonObject result, DateTimeOffset startedAt, DateTimeOffset loadEndedAt, TimeSpan loadWall)
    {
        var accepted = run.Accepted.Values.ToHashSet(StringComparer.Ordinal);
        var byId = listed.GroupBy(j => j.JobId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var duplicated = byId.Values.Count(g => g.Count > 1);
        var missing = accepted.Count(id => !byId.ContainsKey(id));
        var notCompleted = accepted.Count(id => byId.TryGetValue(id, out var g) && g[0].Status != "completed");
        var unexpected = byId.Keys.Count(id => !accepted.Contains(id));
        var completed = listed.Where(j => j.Status == "completed").ToList();
        var completedDuringLoad = completed.Count(j => j.UpdatedAt <= loadEndedAt);
        var lastCompletion = completed.Count > 0 ? completed.Max(j => j.UpdatedAt) : startedAt;
        var latencies = run.Latencies();

        result["accepted"] = run.Accepted.Count;
        result["accepted_distinct_job_ids"] = accepted.Count;
        result["accepted_per_sec"] = BenchStats.Round(run.Accepted.Count / loadWall.TotalSeconds, 1);
        result["submit_latency_ms"] = latencies.Length == 0 ? null : new JsonObject
        {
            ["p50"] = BenchStats.Round(Percentile(latencies, 0.50), 2),
            ["p95"] = BenchStats.Round(Percentile(latencies, 0.95), 2),
            ["p99"] = BenchStats.Round(Percentile(latencies, 0.99), 2),
            ["max"] = BenchStats.Round(latencies[^1], 2),
            ["mean"] = BenchStats.Round(latencies.Average(), 2),
            ["samples"] = latencies.Length,
        };
        result["completed"] = completed.Count;
        result["completed_during_load"] = completedDuringLoad;
        result["completed_per_sec_during_load"] = BenchStats.Round(completedDuringLoad / loadWall.TotalSeconds, 1);
        result["completed_per_sec"] = BenchStats.Round(completed.Count / Math.Max(0.001, (lastCompletion - startedAt).TotalSeconds), 1);
        result["steps_per_sec"] = BenchStats.Round(completed.Count * ServerWorkflowSteps / Math.Max(0.001, (lastCompletion - startedAt).TotalSeconds), 1);
        result["requests"] = new JsonObject(run.Counters.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        result["verification"] = new JsonObject
        {
            ["listed"] = listed.Count,
            ["missing"] = missing,
            ["not_completed"] = notCompleted,
            ["duplicated"] = duplicated,
            ["unacknowledged"] = unexpected,
            ["idempotent_replays_checked"] = replays.Checked,
            ["idempotent_replays_same_job"] = replays.Same,
            ["outputs_checked"] = outputs.Checked,
            ["outputs_right"] = outputs.Right,
        };
        result["lost"] = missing + notCompleted;
        result["loadavg_at_end"] = LoadAverage();
        output["server"] = result;

        var problems = new List<string>();
        if (missing > 0) problems.Add($"{missing} accepted job(s) are not listed");
        if (notCompleted > 0) problems.Add($"{notCompleted} accepted job(s) did not complete");
        if (duplicated > 0) problems.Add($"{duplicated} job id(s) are listed more than once");
        if (accepted.Count != run.Accepted.Count) problems.Add($"{run.Accepted.Count - accepted.Count} distinct Idempotency-Keys were answered with the same job");
        if (replays.Same != replays.Checked) problems.Add($"{replays.Checked - replays.Same} of {replays.Checked} repeated submissions did not return their job with 200");
        if (outputs.Right != outputs.Checked) problems.Add($"{outputs.Checked - outputs.Right} of {outputs.Checked} jobs read back have a wrong output");
        if (run.Accepted.IsEmpty) problems.Add("no job was accepted");
        if (problems.Count > 0) throw new BenchFailedException($"server: {string.Join("; ", problems)}");
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    private static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>What the clients saw: accepted jobs by Idempotency-Key, latencies, and counts of everything else.</summary>
    private sealed class ServerRun
    {
        private readonly ConcurrentBag<List<double>> _latencies = [];

        public ConcurrentDictionary<string, string> Accepted { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, int> Counters { get; } = new(StringComparer.Ordinal);

        public void Count(string what) => Counters.AddOrUpdate(what, 1, (_, n) => n + 1);

        public void AddLatencies(List<double> values) => _latencies.Add(values);

        public double[] Latencies() => [.. _latencies.SelectMany(l => l).Order()];
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Ordo.Agents.Models;
using Ordo.Expressions;
using Ordo.State;
using Ordo.Testing;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

internal sealed partial class OrdoBench
{
    /// <summary>
    /// The runtime's own overhead per model call (no peer counterpart): against an OpenAI-compatible server on loopback
    /// that answers at once, the median of a job whose one step is an <c>llm</c> agent, less the median of the same job
    /// with a transform step instead (the job's own cost), less the median of the same request made directly with the
    /// tier's <see cref="IChatClient"/> (the wire's cost). What is left is what Ordo adds to a call: the prompt, the
    /// request hash, the recorded events, the answer's parsing, redaction and the artifact check. In memory, one worker.
    /// </summary>
    private async Task ModelsAsync(JsonObject output, CancellationToken stop)
    {
        using var server = ImmediateModelServer.Start();
        var dir = Path.Combine(Path.GetTempPath(), "ordo-bench-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "ordo.yaml"), $"models:\n  fast: {{ provider: openai-compatible, model: bench, endpoint: \"{server.Address}v1\", price: {{ input_per_1k: 0.001, output_per_1k: 0.002 }} }}\n", stop).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(dir, "llm.yaml"), Workflow("agent: answerer"), stop).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(dir, "plain.yaml"), Workflow("transform: { set: { verdict: { verdict: ok, score: 1 } } }"), stop).ConfigureAwait(false);
            var llm = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "llm.yaml"), cancellationToken: stop).ConfigureAwait(false);
            var plain = await WorkflowLoader.LoadFileAsync(Path.Combine(dir, "plain.yaml"), cancellationToken: stop).ConfigureAwait(false);
            var n = settings.Quick ? 100 : 1000;
            var input = JsonSerializer.SerializeToElement(new { text = "The quarterly report is ready for review." });

            await using var host = await BenchHost.StartAsync(new InMemoryOrdoStore(), 1, stop).ConfigureAwait(false);
            Log($"models: {n} jobs with one model call, {n} without, {n} direct calls, interleaved, after a warm-up");
            var client = new ModelClientFactory(new ExpressionEvaluator()).GetClient(llm.Project.Models["fast"]);
            var messages = new List<ChatMessage> { new(ChatRole.System, "Answer with one JSON object."), new(ChatRole.User, input.GetRawText()) };
            var options = new ChatOptions { ModelId = "bench", ResponseFormat = ChatResponseFormat.Json };
            for (var i = 0; i < 50; i++)
            {
                Check(await host.InvokeAsync(llm, input).ConfigureAwait(false));
                Check(await host.InvokeAsync(plain, input).ConfigureAwait(false));
                await client.GetResponseAsync(messages, options, stop).ConfigureAwait(false);
            }

            var withCall = new List<double>(n);
            var without = new List<double>(n);
            var direct = new List<double>(n);
            var requestsBefore = server.Requests;
            for (var i = 0; i < n; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                Check(await host.InvokeAsync(llm, input).ConfigureAwait(false));
                withCall.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                t0 = Stopwatch.GetTimestamp();
                Check(await host.InvokeAsync(plain, input).ConfigureAwait(false));
                without.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                t0 = Stopwatch.GetTimestamp();
                await client.GetResponseAsync(messages, options, stop).ConfigureAwait(false);
                direct.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }

            if (server.Requests - requestsBefore != 2 * n)
            {
                throw new BenchFailedException($"models: the server saw {server.Requests - requestsBefore} requests for {2 * n} calls");
            }

            var (a, b, c) = (BenchStats.Median(withCall), BenchStats.Median(without), BenchStats.Median(direct));
            var overhead = a - b - c;
            output["models"] = new JsonObject
            {
                ["note"] = "Ordo only; in-memory store, one worker; an OpenAI-compatible server on 127.0.0.1 answering at once. overhead = median(job with one llm step) - median(same job with a transform step making the same artifact) - median(the same request made directly with the tier's IChatClient)",
                ["calls"] = n,
                ["job_with_model_call_median_ms"] = BenchStats.Round(a, 3),
                ["job_without_median_ms"] = BenchStats.Round(b, 3),
                ["direct_call_median_ms"] = BenchStats.Round(c, 3),
                ["overhead_per_call_median_ms"] = BenchStats.Round(overhead, 3),
            };
            Log($"models: with call {F2(a)} ms, without {F2(b)} ms, direct call {F2(c)} ms: overhead {overhead.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)} ms per call");
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // A temporary folder left behind is harmless.
            }
        }

        static void Check(JobState state)
        {
            if (state.Status != JobStatus.Completed) throw new BenchFailedException($"models: a job ended {state.Status}: {state.Reason}");
        }

        static string Workflow(string step) => $$"""
            ordo: 1
            workflow: model-call
            version: 1
            artifacts:
              verdict: { schema: { type: object, required: [verdict], properties: { verdict: { type: string }, score: { type: number } } } }
            agents:
              answerer: { kind: llm, tier: fast, output: verdict }
            steps:
              - { id: answer, {{step}} }
            """;
    }

    /// <summary>An OpenAI-compatible chat-completions server on 127.0.0.1 that answers every request at once.</summary>
    private sealed class ImmediateModelServer : IDisposable
    {
        private static readonly byte[] Answer = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            id = "bench", @object = "chat.completion", created = 1, model = "bench",
            choices = new[] { new { index = 0, message = new { role = "assistant", content = "{\"verdict\":\"ok\",\"score\":1}" }, finish_reason = "stop" } },
            usage = new { prompt_tokens = 30, completion_tokens = 8, total_tokens = 38 },
        }));

        private readonly HttpListener _listener;
        private int _requests;

        private ImmediateModelServer(HttpListener listener, Uri address)
        {
            _listener = listener;
            Address = address;
            _ = Task.Run(LoopAsync);
        }

        public Uri Address { get; }

        public int Requests => Volatile.Read(ref _requests);

        public static ImmediateModelServer Start()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var address = new Uri($"http://127.0.0.1:{port}/");
            var listener = new HttpListener();
            listener.Prefixes.Add(address.ToString());
            listener.Start();
            return new ImmediateModelServer(listener, address);
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                Interlocked.Increment(ref _requests);
                await context.Request.InputStream.CopyToAsync(Stream.Null).ConfigureAwait(false);
                context.Response.ContentType = "application/json";
                context.Response.ContentLength64 = Answer.Length;
                await context.Response.OutputStream.WriteAsync(Answer).ConfigureAwait(false);
                context.Response.Close();
            }
        }

        public void Dispose()
        {
            // The loop ends when the listener stops (its pending accept fails).
            _listener.Stop();
            _listener.Close();
        }
    }
}

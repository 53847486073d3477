using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Workflows;

namespace Ordo.Agents;

/// <summary>
/// Runs <c>http</c> agents: POSTs the input as JSON to the agent's URL and reads a JSON object back, under the agent's
/// <c>timeout</c>, with an <c>Idempotency-Key</c> stable across the step's retries and a crash. Each call is recorded like
/// a model call (<c>ModelCallRequested</c>, then <c>ModelCallSucceeded</c> with the answer or <c>ModelCallFailed</c>;
/// provider <c>http</c>), so the log holds what a replay needs.
/// </summary>
internal sealed class HttpAgentRunner(HttpClient http, TimeProvider time, Gateway.SecretRedactor redactor)
{
    /// <summary>The tier and provider named in an http agent's call events.</summary>
    public const string Provider = "http";

    public async ValueTask<StepOutcome> RunAsync(StepExecution execution, AgentDefinition agent, JsonElement input, CancellationToken cancellationToken)
    {
        var index = execution.NextCallIndex();
        var callId = $"{execution.Step.WorkKey}.{execution.Step.Attempt}.m{index}";
        var url = agent.Url!;
        execution.Record(EventFactory.Step(EventTypes.ModelCallRequested, execution.Step,
            new ModelCallRequestedPayload(callId, Provider, Provider, url, null, null, null), time.GetUtcNow(), agent: agent.Ref, model: url));
        var started = time.GetTimestamp();

        using var request = new HttpRequestMessage(HttpMethod.Post, url);
        request.Content = new StringContent(input.GetRawText(), Encoding.UTF8, "application/json");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.TryAddWithoutValidation("Idempotency-Key", Gateway.ToolGateway.IdempotencyKey(execution.JobId, execution.Step, index));
        request.Headers.TryAddWithoutValidation("X-Ordo-Job", execution.JobId.Value);
        request.Headers.TryAddWithoutValidation("X-Ordo-Step", execution.Step.WorkKey);
        request.Headers.TryAddWithoutValidation("X-Ordo-Attempt", execution.Step.Attempt.ToString(CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(agent.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var code = (int)response.StatusCode;
                var moved = code is >= 300 and < 400 ? $" (a redirect to {response.Headers.Location?.GetLeftPart(UriPartial.Path) ?? "?"}; an agent's URL must answer itself)" : "";
                return Fail($"http_{code}", $"agent '{agent.Name}' at {url} answered {code}{moved}", retryable: code >= 500 || code == 429 || code == 408)
                    with { RetryAfter = code is 429 or 503 ? RetryAfterOf(response) : null };
            }

            // An answer larger than a step may record is refused after reading at most that much.
            if (response.Content.Headers.ContentLength > MaxAnswerBytes)
            {
                return TooLarge();
            }

            var buffer = new MemoryStream();
            await using (var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false))
            {
                var chunk = new byte[81920];
                int read;
                while ((read = await stream.ReadAsync(chunk, linked.Token).ConfigureAwait(false)) > 0)
                {
                    if (buffer.Length + read > MaxAnswerBytes) return TooLarge();
                    buffer.Write(chunk, 0, read);
                }
            }

            var body = redactor.Redact(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
            var parsed = LlmAgentRunner.ParseObject(body);
            if (parsed is null)
            {
                return Fail("malformed_output", $"agent '{agent.Name}' at {url} did not answer with a JSON object", retryable: true);
            }

            execution.Record(EventFactory.Step(EventTypes.ModelCallSucceeded, execution.Step,
                new ModelCallSucceededPayload(callId, Provider, Provider, url, body, 0, 0, 0m, time.GetElapsedTime(started).TotalMilliseconds),
                time.GetUtcNow(), agent: agent.Ref, model: url));
            return StepOutcome.Success(parsed.Value) with { Agent = agent.Ref };
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return Fail("timeout", $"agent '{agent.Name}' at {url} gave no answer within {Durations.Format(agent.Timeout)}", retryable: true);
        }
        catch (HttpRequestException e)
        {
            return Fail("http_error", $"agent '{agent.Name}' at {url}: {redactor.Redact(e.Message)}", retryable: true);
        }

        StepOutcome TooLarge()
            => Fail("output_too_large", $"agent '{agent.Name}' at {url} answered with more than {MaxAnswerBytes} bytes", retryable: false);

        StepOutcome Fail(string error, string message, bool retryable)
        {
            execution.Record(EventFactory.Step(EventTypes.ModelCallFailed, execution.Step,
                new ModelCallFailedPayload(callId, Provider, Provider, url, error, message, time.GetElapsedTime(started).TotalMilliseconds),
                time.GetUtcNow(), agent: agent.Ref, model: url));
            return StepOutcome.Failure(error, message, retryable) with { Agent = agent.Ref };
        }
    }

    /// <summary>The largest answer an http agent may give: 4 MiB.</summary>
    public const int MaxAnswerBytes = 4 * 1024 * 1024;

    /// <summary>The answer's <c>Retry-After</c> (or <c>retry-after-ms</c>), read as a provider's is.</summary>
    private TimeSpan? RetryAfterOf(HttpResponseMessage response)
        => Models.ProviderErrors.RetryAfter(Header(response, "retry-after-ms"), Header(response, "Retry-After"), time.GetUtcNow());

    private static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}

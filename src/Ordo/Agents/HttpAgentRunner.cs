using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Ordo.Engine;
using Ordo.Workflows;

namespace Ordo.Agents;

/// <summary>Runs <c>http</c> agents: POSTs the input as JSON to the agent's URL and reads a JSON object back.</summary>
internal sealed class HttpAgentRunner(HttpClient http)
{
    public async ValueTask<StepOutcome> RunAsync(StepExecution execution, AgentDefinition agent, JsonElement input, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, agent.Url);
        request.Content = new StringContent(input.GetRawText(), Encoding.UTF8, "application/json");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.TryAddWithoutValidation("X-Ordo-Job", execution.JobId.Value);
        request.Headers.TryAddWithoutValidation("X-Ordo-Step", execution.Step.WorkKey);
        request.Headers.TryAddWithoutValidation("X-Ordo-Attempt", execution.Step.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var code = (int)response.StatusCode;
                var moved = code is >= 300 and < 400 ? $" (a redirect to {response.Headers.Location?.GetLeftPart(UriPartial.Path) ?? "?"}; an agent's URL must answer itself)" : "";
                return StepOutcome.Failure($"http_{code}", $"agent '{agent.Name}' at {agent.Url} answered {code}{moved}", retryable: code >= 500 || code == 429) with { Agent = agent.Ref };
            }

            // An answer larger than a step may record is refused after reading at most that much.
            if (response.Content.Headers.ContentLength > MaxAnswerBytes)
            {
                return TooLarge(agent);
            }

            var buffer = new MemoryStream();
            await using (var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false))
            {
                var chunk = new byte[81920];
                int read;
                while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (buffer.Length + read > MaxAnswerBytes) return TooLarge(agent);
                    buffer.Write(chunk, 0, read);
                }
            }

            var body = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);

            var parsed = LlmAgentRunner.ParseObject(body);
            return parsed is null
                ? StepOutcome.Failure("malformed_output", $"agent '{agent.Name}' at {agent.Url} did not answer with a JSON object", retryable: true) with { Agent = agent.Ref }
                : StepOutcome.Success(parsed.Value) with { Agent = agent.Ref };
        }
        catch (HttpRequestException e)
        {
            return StepOutcome.Failure("http_error", $"agent '{agent.Name}' at {agent.Url}: {e.Message}", retryable: true) with { Agent = agent.Ref };
        }
    }

    /// <summary>The largest answer an http agent may give: 4 MiB.</summary>
    public const int MaxAnswerBytes = 4 * 1024 * 1024;

    private static StepOutcome TooLarge(AgentDefinition agent)
        => StepOutcome.Failure("output_too_large", $"agent '{agent.Name}' at {agent.Url} answered with more than {MaxAnswerBytes} bytes", retryable: false) with { Agent = agent.Ref };
}

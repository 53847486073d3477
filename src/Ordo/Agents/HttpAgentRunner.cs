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
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var code = (int)response.StatusCode;
                return StepOutcome.Failure($"http_{code}", $"agent '{agent.Name}' at {agent.Url} answered {code}", retryable: code >= 500 || code == 429) with { Agent = agent.Ref };
            }

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
}

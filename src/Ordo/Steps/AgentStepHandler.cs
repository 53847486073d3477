using System.Text.Json;
using Ordo.Agents;
using Ordo.Engine;
using Ordo.Expressions;
using Ordo.Gateway;
using Ordo.Workflows;

namespace Ordo.Steps;

/// <summary>Runs <c>agent</c> steps: evaluates the input, runs the agent by kind, and offers its output as the agent's artifact.</summary>
internal sealed class AgentStepHandler(AgentInvoker agents) : IStepHandler
{
    public string Kind => "agent";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (AgentStep)execution.Definition;
        if (!execution.Workflow.Agents.TryGetValue(step.Agent, out var agent))
        {
            return StepOutcome.Failure("config_error", $"agent '{step.Agent}' is not defined", retryable: false);
        }

        JsonElement input;
        try
        {
            input = step.Input?.Evaluate(execution.Evaluator, execution.Scope) ?? execution.State.Input ?? JsonElementFactory.EmptyObject;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In("input"), retryable: false);
        }

        var outcome = await agents.InvokeAsync(execution, agent, input, execution.Variations, cancellationToken).ConfigureAwait(false);
        outcome = outcome with { Input = step.Input is null ? null : input, Agent = agent.Ref };
        if (outcome.Succeeded && agent.Output is not null)
        {
            outcome = outcome with { Artifacts = [new ArtifactCandidate(agent.Output, outcome.Output!.Value)] };
        }

        return outcome;
    }
}

/// <summary>Runs an agent of any kind on one input (used by agent steps and by the patterns that call agents).</summary>
public sealed class AgentInvoker
{
    private readonly CodeRegistry _code;
    private readonly LlmAgentRunner _llm;
    private readonly HttpAgentRunner _http;
    private readonly ToolGateway _gateway;
    private readonly IServiceProvider? _services;

    internal AgentInvoker(CodeRegistry code, Agents.Models.ModelClientFactory models, ToolGateway gateway, HttpClient http, TimeProvider time, IServiceProvider? services, Governance? governance = null, Tools.Mcp.IMcpToolCatalog? mcp = null)
    {
        _code = code;
        _llm = new LlmAgentRunner(models, time, gateway, governance, mcp);
        _http = new HttpAgentRunner(http, time, gateway.Redactor);
        _gateway = gateway;
        _services = services;
    }

    /// <summary>Runs the agent; failures come back as a failed outcome, never as an exception (except cancellation).</summary>
    public async ValueTask<StepOutcome> InvokeAsync(StepExecution execution, AgentDefinition agent, JsonElement input, IReadOnlyList<string> variations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(execution);
        ArgumentNullException.ThrowIfNull(agent);
        switch (agent.Kind)
        {
            case AgentKind.Llm:
                return await _llm.RunAsync(execution, agent, input, variations, cancellationToken).ConfigureAwait(false);
            case AgentKind.Http:
                return await _http.RunAsync(execution, agent, input, cancellationToken).ConfigureAwait(false);
            default:
            {
                ICodeAgent impl;
                try
                {
                    impl = _code.CreateAgent(agent.Type!, _services);
                }
                catch (OrdoException e)
                {
                    return StepOutcome.Failure("config_error", e.Message, retryable: false);
                }

                var context = new AgentContext
                {
                    JobId = execution.JobId, Tenant = execution.Tenant, Step = execution.Step, Agent = agent, Input = input,
                    Tools = new ScopedToolInvoker(_gateway, execution, agent), Variations = variations,
                };
                try
                {
                    var output = await impl.InvokeAsync(context, cancellationToken).ConfigureAwait(false);
                    return output.ValueKind == JsonValueKind.Object
                        ? StepOutcome.Success(output)
                        : StepOutcome.Failure("invalid_output", $"agent '{agent.Name}' returned {output.ValueKind}, not a JSON object", retryable: true);
                }
                catch (ToolCallException e)
                {
                    return StepOutcome.Failure(e.Error, e.Message, e.Retryable);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    return StepOutcome.Failure("agent_error", $"agent '{agent.Name}' threw {e.GetType().Name}: {e.Message}", retryable: true);
                }
            }
        }
    }
}

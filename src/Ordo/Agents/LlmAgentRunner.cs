using System.Text.Json;
using Microsoft.Extensions.AI;
using Ordo.Agents.Models;
using Ordo.Agents.ToolUse;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Expressions;
using Ordo.Telemetry;
using Ordo.Workflows;

namespace Ordo.Agents;

/// <summary>
/// Runs <c>llm</c> agents on <see cref="IChatClient"/>: the prompt file (rendered over the step's input) is the
/// system message, the input is the user message as JSON, and the output artifact's schema is the structured-output
/// format. Every call is recorded (response, usage, cost, model, prompt hash) so that the job can be replayed.
/// </summary>
internal sealed class LlmAgentRunner(ModelClientFactory clients, TimeProvider time, Gateway.ToolGateway gateway, Governance? governance, Tools.Mcp.IMcpToolCatalog? mcp = null)
{
    private Gateway.SecretRedactor redactor => gateway.Redactor;

    private const string DefaultInstructions = "You are an agent in an automated workflow. Answer with one JSON object and nothing else.";

    public async ValueTask<StepOutcome> RunAsync(StepExecution execution, AgentDefinition agent, JsonElement input, IReadOnlyList<string> variations, CancellationToken cancellationToken)
    {
        var tierName = agent.Tier ?? "standard";
        if (!execution.Project.Models.TryGetValue(tierName, out var tier))
        {
            return StepOutcome.Failure("config_error", $"model tier '{tierName}' is not configured", retryable: false);
        }

        if (variations.Contains("escalate_tier"))
        {
            // Each retry moves one tier up the order of ordo.yaml's models (fast → standard → high), up to the last.
            var order = execution.Project.Models.Keys.ToList();
            var index = Math.Min(order.Count - 1, order.IndexOf(tierName) + Math.Max(0, execution.Step.Attempt - 1));
            tierName = order[index];
            tier = execution.Project.Models[tierName];
        }

        // While the tier's circuit is open its calls go to its fallback (models.fallback), recorded as fallback_from.
        var route = clients.Route(tier, execution.Project.Models, execution.Project.ModelFallback);
        tier = route.Tier;
        var circuit = clients.GetCircuit(tier);

        string instructions;
        try
        {
            var scope = execution.Scope;
            instructions = agent.Prompt?.Body.Render(execution.Evaluator, new ExpressionScope { State = scope.State, Input = input, Attempt = scope.Attempt, IncludeQuarantined = scope.IncludeQuarantined, Constraints = scope.Constraints, StepScope = scope.StepScope })
                ?? DefaultInstructions;
        }
        catch (ExpressionEvaluationException e)
        {
            return StepOutcome.Failure("expression_error", e.In($"prompt '{agent.Prompt?.Name}'"), retryable: false);
        }

        if (variations.Contains("require_citations"))
        {
            instructions += "\n\nEvery claim must carry evidence: include an \"evidence\" list of { source, ref, quote } items.";
        }

        if (variations.Contains("switch_tool"))
        {
            instructions += "\n\nA previous attempt failed. If a tool call failed, use a different tool from your list.";
        }

        var messages = new List<ChatMessage>
        {
            new(ChatRole.System, instructions),
            // Written compactly, not as the input happened to be spaced: the same input read back from the log (a redelivery,
            // a replay) makes the same request, and the recorded answer is found by it.
            new(ChatRole.User, CompactJson(input)),
        };
        var offered = await ModelTools.OfferAsync(execution.Project, agent, mcp, cancellationToken).ConfigureAwait(false);
        var options = new ChatOptions
        {
            ModelId = tier.Model,
            ResponseFormat = OutputFormat(execution.Workflow, agent),
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                [ModelCallProperties.Agent] = agent.Name,
                [ModelCallProperties.Attempt] = execution.Step.Attempt,
                [ModelCallProperties.Input] = input,
                [ModelCallProperties.Job] = execution.JobId.Value,
            },
        };
        if (offered.Declarations.Count > 0)
        {
            options.Tools = [.. offered.Declarations];
            options.ToolMode = ChatToolMode.Auto;
            options.AllowMultipleToolCalls = true;
        }

        var promptHash = agent.Prompt?.Hash;

        // What an earlier delivery of this attempt did (a crash, a lost lease, a pause for an approval in a tool round):
        // its recorded answers and tool outcomes are replayed, so the step neither asks the model again nor repeats a call.
        // (Only then is the log read: a first delivery with no approval of its own has nothing to replay.)
        var step = execution.Step;
        var ranBefore = execution.Item.Deliveries > 1
            || execution.State.Approvals.Values.Any(a => a.StepId == step.StepId && (a.Visit ?? 1) == step.Visit && a.Attempt == step.Attempt && a.Scope == step.Scope);
        var journal = ranBefore
            ? await StepJournal.LoadAsync(execution, cancellationToken).ConfigureAwait(false)
            : StepJournal.Empty;
        var asked = new Dictionary<string, int>(StringComparer.Ordinal);

        // Round 1 is the first model call; each answer that asks for tools runs them through the gateway and starts the
        // next round with their results, at most max_tool_rounds times.
        for (var round = 1; ; round++)
        {
            options.AdditionalProperties[ModelCallProperties.Round] = round;
            var (response, failure) = await CallModelAsync(execution, agent, route, circuit, messages, options, offered, journal, round, promptHash, cancellationToken).ConfigureAwait(false);
            if (failure is not null) return failure;

            var calls = response!.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
            var model = response.ModelId ?? tier.Model;
            if (calls.Count == 0)
            {
                var content = redactor.Redact(response.Text);
                var parsed = ParseObject(content);
                if (parsed is null)
                {
                    return StepOutcome.Failure("malformed_output", $"agent '{agent.Name}' answered with something that is not a JSON object: {Truncate(content)}", retryable: true)
                        with { Agent = agent.Ref, PromptHash = promptHash, Model = model };
                }

                return StepOutcome.Success(parsed.Value) with { Agent = agent.Ref, PromptHash = promptHash, Model = model };
            }

            if (round > agent.MaxToolRounds)
            {
                return StepOutcome.Failure("tool_rounds_exceeded",
                    $"agent '{agent.Name}' still asked for tools after {agent.MaxToolRounds} rounds of tool calls (max_tool_rounds)", retryable: true)
                    with { Agent = agent.Ref, PromptHash = promptHash, Model = model };
            }

            messages.AddRange(response.Messages);
            var results = new List<AIContent>(calls.Count);
            for (var i = 0; i < calls.Count; i++)
            {
                var call = calls[i];
                var (result, interrupt) = await ModelTools.RunAsync(gateway, execution, agent, offered, call, i, journal, asked, time, cancellationToken).ConfigureAwait(false);
                if (interrupt is not null)
                {
                    // The call stopped the step (an approval it needs, a budget it would break): the interruption governs.
                    return StepOutcome.Failure(interrupt.By, interrupt.Reason, retryable: false) with { Interrupt = interrupt, Agent = agent.Ref, PromptHash = promptHash, Model = model };
                }

                results.Add(new FunctionResultContent(call.CallId, result));
            }

            messages.Add(new ChatMessage(ChatRole.Tool, results));
        }
    }

    /// <summary>A model call's usage on its span (GenAI attributes) and in the metrics; <paramref name="error"/> is set for a failed call.</summary>
    private static void Measured(StepExecution execution, ModelTier tier, string model, long inTokens, long outTokens, decimal cost, double seconds, System.Diagnostics.Activity? span, string? error)
    {
        if (span is not null)
        {
            span.SetTag("gen_ai.response.model", model);
            span.SetTag("gen_ai.usage.input_tokens", inTokens);
            span.SetTag("gen_ai.usage.output_tokens", outTokens);
            span.SetTag("ordo.model.cost", (double)cost);
        }

        if (OrdoMetrics.ModelDuration.Enabled)
        {
            var tags = new System.Diagnostics.TagList { { "gen_ai.operation.name", "chat" }, { "gen_ai.provider.name", tier.Provider }, { "gen_ai.request.model", tier.Model } };
            if (error is null) tags.Add("gen_ai.response.model", model);
            else tags.Add("error.type", error);
            OrdoMetrics.ModelDuration.Record(seconds, tags);
        }

        if (error is not null) return;
        if (OrdoMetrics.TokenUsage.Enabled)
        {
            var tags = new System.Diagnostics.TagList { { "gen_ai.operation.name", "chat" }, { "gen_ai.provider.name", tier.Provider }, { "gen_ai.request.model", tier.Model }, { "gen_ai.response.model", model }, { "gen_ai.token.type", "input" } };
            OrdoMetrics.TokenUsage.Record(inTokens, tags);
            tags[4] = new("gen_ai.token.type", "output");
            OrdoMetrics.TokenUsage.Record(outTokens, tags);
        }

        if (OrdoMetrics.Tokens.Enabled)
        {
            OrdoMetrics.Tokens.Add(inTokens, new System.Diagnostics.TagList { { "ordo.workflow", execution.Workflow.Name }, { "gen_ai.request.model", tier.Model }, { "gen_ai.token.type", "input" } });
            OrdoMetrics.Tokens.Add(outTokens, new System.Diagnostics.TagList { { "ordo.workflow", execution.Workflow.Name }, { "gen_ai.request.model", tier.Model }, { "gen_ai.token.type", "output" } });
        }

        if (OrdoMetrics.Cost.Enabled && cost != 0)
        {
            OrdoMetrics.Cost.Add((double)cost, new System.Diagnostics.TagList { { "ordo.workflow", execution.Workflow.Name }, { "gen_ai.provider.name", tier.Provider }, { "gen_ai.request.model", tier.Model } });
        }
    }

    /// <summary>
    /// One model call, recorded: <c>ModelCallRequested</c> (admitted under a token or cost budget), then
    /// <c>ModelCallSucceeded</c> with the whole answer (its text and the tool calls it asks for) or <c>ModelCallFailed</c>.
    /// </summary>
    private async ValueTask<(ChatResponse? Response, StepOutcome? Failure)> CallModelAsync(
        StepExecution execution, AgentDefinition agent, ModelRoute route, ModelCircuit circuit, List<ChatMessage> messages, ChatOptions options, OfferedTools offered, StepJournal journal, int round, string? promptHash, CancellationToken cancellationToken)
    {
        var tier = route.Tier;
        var callId = $"{execution.Step.WorkKey}.{execution.Step.Attempt}.m{execution.NextCallIndex()}";
        if (tier.MaxOutputTokens is { } bound) options.MaxOutputTokens = (int)Math.Min(bound, int.MaxValue);
        var (requestHash, requestBytes) = ModelRequests.Hash(tier, messages, options);
        if (journal.Answer(callId, requestHash) is { } recorded)
        {
            // Asked and answered in an earlier delivery: the same request gets the answer it got, without a new call.
            return (recorded, null);
        }

        // Every call that reaches a provider is in the log. Under a token or cost budget the call is admitted first,
        // in one write with the check that it fits: a call with an output bound holds the most it can use (its input,
        // bounded by its size in bytes, plus that bound); one without runs alone (see Governance.BeforeModelCallAsync).
        var constraints = execution.Workflow.Constraints;
        var waived = execution.State.WaivedBudgets;
        var tokenBudget = constraints.MaxTokens is not null && !waived.Contains("tokens");
        var costBudget = constraints.MaxCost is not null && !waived.Contains("cost") && (tier.InputPer1K > 0 || tier.OutputPer1K > 0);
        var request = new ModelCallRequestedPayload(callId, tier.Name, tier.Provider, tier.Model, tier.MaxOutputTokens, null, null)
        {
            RequestHash = requestHash,
            Round = options.Tools is { Count: > 0 } ? round : null,
            FallbackFrom = route.FallbackFrom,
        };
        if (tokenBudget || costBudget)
        {
            if (tier.MaxOutputTokens is { } maxOutput)
            {
                request = request with
                {
                    ReservedTokens = tokenBudget ? requestBytes + maxOutput : null,
                    ReservedCost = costBudget ? tier.CostOf(requestBytes, maxOutput) : null,
                };
            }
            else
            {
                request = request with { Exclusive = true };
            }
        }

        // The call's span holds its events (requested, succeeded or failed): they carry its span id.
        using var span = OrdoSpans.StartChat(tier.Provider, tier.Model, tier.Name, tier.MaxOutputTokens);
        if (governance is not null)
        {
            if (await governance.BeforeModelCallAsync(execution, request, agent.Ref, promptHash, cancellationToken).ConfigureAwait(false) is { } overBudget)
            {
                OrdoSpans.Failed(span, overBudget.By, overBudget.Reason);
                return (null, StepOutcome.Failure(overBudget.By, overBudget.Reason, retryable: false) with { Interrupt = overBudget, Agent = agent.Ref, PromptHash = promptHash, Model = tier.Model });
            }
        }
        else
        {
            execution.Record(EventFactory.Step(EventTypes.ModelCallRequested, execution.Step, request, time.GetUtcNow(), agent: agent.Ref, promptHash: promptHash, model: tier.Model));
        }

        options.AdditionalProperties ??= [];
        options.AdditionalProperties[ModelCallProperties.CallId] = callId;
        options.AdditionalProperties[ModelCallProperties.RequestHash] = requestHash;
        if (execution.Project.Faults.Models.Count > 0) options.AdditionalProperties[ModelCallProperties.Faults] = execution.Project.Faults;
        var started = time.GetTimestamp();
        var circuitBefore = circuit.State;
        ChatResponse response;
        try
        {
            // The client bounds the call by the tier's timeout and classifies failures (ModelErrors); its circuit breaker
            // refuses calls while open. It never retries: the step's retry does.
            response = await clients.GetClient(tier).GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        }
        catch (ModelCallException e)
        {
            var message = redactor.Redact(e.Message);
            await FailAsync(e, message).ConfigureAwait(false);
            return (null, StepOutcome.Failure(e.Error, $"model call for agent '{agent.Name}' ({tier.Name}): {message}", e.Retryable)
                with { Agent = agent.Ref, PromptHash = promptHash, Model = tier.Model, RetryAfter = e.RetryAfter });
        }
        catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // Whatever else a provider's client throws (an answer it cannot read: a usage count out of range, a number
            // that is not one) is the answer's fault: recorded as malformed, never a crash of the step.
            var malformed = new ModelCallException(ModelErrors.MalformedResponse, $"the provider's answer could not be read ({e.GetType().Name}: {e.Message})", retryable: true, e);
            var message = redactor.Redact(malformed.Message);
            await FailAsync(malformed, message).ConfigureAwait(false);
            return (null, StepOutcome.Failure(malformed.Error, $"model call for agent '{agent.Name}' ({tier.Name}): {message}", retryable: true)
                with { Agent = agent.Ref, PromptHash = promptHash, Model = tier.Model });
        }
        finally
        {
            RecordCircuit();
        }

        // A model that echoes a secret (an API key it was sent) does not get it into the log.
        var content = redactor.Redact(response.Text);
        // A provider's count below zero would refund the budget: it counts as zero.
        var inTokens = Math.Max(0, response.Usage?.InputTokenCount ?? 0);
        var outTokens = Math.Max(0, response.Usage?.OutputTokenCount ?? 0);
        var model = response.ModelId ?? tier.Model;
        var cost = tier.CostOf(inTokens, outTokens);
        Measured(execution, tier, model, inTokens, outTokens, cost, time.GetElapsedTime(started).TotalSeconds, span, null);
        var asked = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(c => ModelTools.Describe(c, redactor, offered)).ToList();
        await Governance.AfterModelCallAsync(execution, request, EventFactory.Step(EventTypes.ModelCallSucceeded, execution.Step,
            new ModelCallSucceededPayload(callId, tier.Name, tier.Provider, model, content, inTokens, outTokens, cost, time.GetElapsedTime(started).TotalMilliseconds)
            {
                ToolCalls = asked.Count == 0 ? null : asked,
                FallbackFrom = route.FallbackFrom,
            },
            time.GetUtcNow(), agent: agent.Ref, promptHash: promptHash, model: model), cancellationToken).ConfigureAwait(false);
        return (response, null);

        ValueTask FailAsync(ModelCallException e, string message)
        {
            OrdoSpans.Failed(span, e.Error, message);
            Measured(execution, tier, tier.Model, 0, 0, 0, time.GetElapsedTime(started).TotalSeconds, null, e.Error);
            return Governance.AfterModelCallAsync(execution, request, EventFactory.Step(EventTypes.ModelCallFailed, execution.Step,
            new ModelCallFailedPayload(callId, tier.Name, tier.Provider, tier.Model, e.Error, message, time.GetElapsedTime(started).TotalMilliseconds)
            {
                FallbackFrom = route.FallbackFrom,
                RetryAfterMs = e.RetryAfter?.TotalMilliseconds,
            },
            time.GetUtcNow(), agent: agent.Ref, promptHash: promptHash, model: tier.Model), CancellationToken.None);
        }

        // Like a tool's: the change of the tier's circuit that this call saw (it may be another job's call that changed it).
        void RecordCircuit()
        {
            var after = circuit.State;
            if (after == circuitBefore) return;
            execution.Record(EventFactory.Step(EventTypes.CircuitStateChanged, execution.Step,
                new CircuitStateChangedPayload(null, circuitBefore, after, callId) { Tier = tier.Name }, time.GetUtcNow()));
        }
    }

    private static ChatResponseFormatJson OutputFormat(WorkflowDefinition workflow, AgentDefinition agent)
    {
        if (agent.Output is not null && workflow.Artifacts.TryGetValue(agent.Output, out var type) && type.Schema is { } schema)
        {
            try
            {
                return ChatResponseFormat.ForJsonSchema(JsonElementFactory.Parse(schema.Json), agent.Output);
            }
            catch (JsonException)
            {
                return ChatResponseFormat.Json;
            }
        }

        return ChatResponseFormat.Json;
    }

    /// <summary>Reads a JSON object from a model's answer, tolerating a Markdown code fence around it.</summary>
    internal static JsonElement? ParseObject(string? content)
    {
        if (string.IsNullOrWhiteSpace(content)) return null;
        var text = content.Trim();
        if (text.StartsWith("```", StringComparison.Ordinal))
        {
            var firstNewline = text.IndexOf('\n', StringComparison.Ordinal);
            var closing = text.LastIndexOf("```", StringComparison.Ordinal);
            if (firstNewline > 0 && closing > firstNewline) text = text[(firstNewline + 1)..closing].Trim();
        }

        try
        {
            var e = JsonElementFactory.Parse(text);
            return e.ValueKind == JsonValueKind.Object ? e : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static readonly System.Text.Json.JsonWriterOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A JSON value without the whitespace of its source (numbers and strings as they were written).</summary>
    internal static string CompactJson(JsonElement value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Compact))
        {
            value.WriteTo(w);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Truncate(string? s) => s is null ? "(empty)" : s.Length <= 120 ? s : s[..120] + "…";
}

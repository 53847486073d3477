using Ordo.Events;

namespace Ordo.Stats;

/// <summary>
/// What a batch of appended events adds to a job's summary row and to its agents' rows: tokens and cost of model calls,
/// retries, gate rejections and escalations, and per agent and prompt hash its step attempts, failures, tokens and cost.
/// Stores apply it in the transaction that appends the events, so the figures of <c>ordo stats</c> are read from small
/// indexed rows instead of from every event.
/// </summary>
public sealed class JobStatsDelta
{
    private readonly Dictionary<(string Agent, string PromptHash), AgentStatsDelta> _agents = [];

    /// <summary>Input plus output tokens of the model calls that succeeded.</summary>
    public long Tokens { get; private set; }

    /// <summary>Cost of those calls, in USD.</summary>
    public decimal Cost { get; private set; }

    /// <summary>Step attempts that failed and are retried (<c>StepFailed</c> with <c>will_retry</c>).</summary>
    public int Retries { get; private set; }

    /// <summary>Artifacts rejected by a contract, a gate or a verification rule (<c>ArtifactRejected</c>).</summary>
    public int Rejections { get; private set; }

    /// <summary>Steps handed to a human (<c>Escalated</c>).</summary>
    public int Escalations { get; private set; }

    /// <summary>The figures per agent (<c>name@version</c>) and prompt hash (empty when the agent has no prompt).</summary>
    public IReadOnlyDictionary<(string Agent, string PromptHash), AgentStatsDelta> Agents => _agents;

    /// <summary>Whether the events change no figure.</summary>
    public bool IsEmpty => Tokens == 0 && Cost == 0 && Retries == 0 && Rejections == 0 && Escalations == 0 && _agents.Count == 0;

    /// <summary>The figures a batch of events adds.</summary>
    public static JobStatsDelta Of(IEnumerable<EventEnvelope> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var delta = new JobStatsDelta();
        foreach (var e in events)
        {
            switch (e.Type)
            {
                case EventTypes.ModelCallSucceeded:
                    var answer = e.GetPayload<ModelCallSucceededPayload>();
                    delta.Tokens += answer.InputTokens + answer.OutputTokens;
                    delta.Cost += answer.Cost;
                    if (e.Agent is { } caller)
                    {
                        var a = delta.Agent(caller, e.PromptHash);
                        a.Tokens += answer.InputTokens + answer.OutputTokens;
                        a.Cost += answer.Cost;
                    }

                    break;
                case EventTypes.StepSucceeded when e.Agent is { } agent:
                    delta.Agent(agent, e.PromptHash).Calls++;
                    break;
                case EventTypes.StepFailed:
                    if (e.GetPayload<StepFailedPayload>().WillRetry) delta.Retries++;
                    if (e.Agent is { } failing)
                    {
                        var a = delta.Agent(failing, e.PromptHash);
                        a.Calls++;
                        a.Failures++;
                    }

                    break;
                case EventTypes.ArtifactRejected:
                    delta.Rejections++;
                    break;
                case EventTypes.Escalated:
                    delta.Escalations++;
                    break;
            }
        }

        return delta;
    }

    private AgentStatsDelta Agent(string agent, string? promptHash)
    {
        var key = (agent, promptHash ?? "");
        if (!_agents.TryGetValue(key, out var a)) _agents[key] = a = new AgentStatsDelta();
        return a;
    }
}

/// <summary>What a batch of events adds to one agent's figures in one job.</summary>
public sealed class AgentStatsDelta
{
    /// <summary>Step attempts of the agent that ended (succeeded or failed).</summary>
    public int Calls { get; internal set; }

    /// <summary>Those that failed.</summary>
    public int Failures { get; internal set; }

    /// <summary>Tokens of its model calls.</summary>
    public long Tokens { get; internal set; }

    /// <summary>Cost of its model calls, in USD.</summary>
    public decimal Cost { get; internal set; }
}

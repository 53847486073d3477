namespace Ordo.Events;

/// <summary>Where in a job an event happens: a step, its visit and attempt, and its scope inside a pattern.</summary>
/// <param name="StepId">The step id.</param>
/// <param name="Visit">1-based visit of the step (loops visit a step again).</param>
/// <param name="Attempt">1-based attempt within the visit.</param>
/// <param name="Scope">The scope inside a pattern, or null at top level.</param>
public readonly record struct StepRef(string StepId, int Visit, int Attempt, string? Scope = null)
{
    /// <summary>The key that identifies this visit's work item in its job: <c>[scope/]step#visit</c>.</summary>
    public string WorkKey => WorkKeys.For(Scope, StepId, Visit);
}

/// <summary>Builds work-item keys.</summary>
public static class WorkKeys
{
    /// <summary>The work key of a step visit: <c>[scope/]step#visit</c>.</summary>
    public static string For(string? scope, string stepId, int visit)
        => string.IsNullOrEmpty(scope) ? $"{stepId}#{visit}" : $"{scope}/{stepId}#{visit}";

    /// <summary>The key under which visits of a step are counted: <c>[scope/]step</c>.</summary>
    public static string VisitKey(string? scope, string stepId)
        => string.IsNullOrEmpty(scope) ? stepId : $"{scope}/{stepId}";
}

/// <summary>Creates <see cref="NewEvent"/>s from typed payloads.</summary>
public static class EventFactory
{
    /// <summary>Creates a job-level event.</summary>
    public static NewEvent Job<T>(string type, T payload, DateTimeOffset timestamp, string? policy = null) where T : class
        => new(type, timestamp, EventPayloads.Serialize(payload), payload) { Policy = policy };

    /// <summary>Creates a step-level event.</summary>
    public static NewEvent Step<T>(string type, StepRef step, T payload, DateTimeOffset timestamp, string? agent = null, string? promptHash = null, string? model = null, string? policy = null)
        where T : class
        => new(type, timestamp, EventPayloads.Serialize(payload), payload)
        {
            StepId = step.StepId, Visit = step.Visit, Attempt = step.Attempt, Scope = step.Scope,
            Agent = agent, PromptHash = promptHash, Model = model, Policy = policy,
        };
}

/// <summary>Events that stores create themselves.</summary>
public static class StoreEvents
{
    /// <summary>The StepStarted event appended when a work item is delivered to a worker.</summary>
    public static NewEvent StepStarted(StepRef step, string worker, int delivery, DateTimeOffset now)
        => EventFactory.Step(EventTypes.StepStarted, step, new StepStartedPayload(worker, delivery), now);
}

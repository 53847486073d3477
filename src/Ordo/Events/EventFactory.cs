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

    /// <summary>
    /// The scope of a branch, an item or a child of a coordination step: <c>OWNER_WORK_KEY/LABEL</c>
    /// (<c>fan#1/b1</c>, <c>each#1/7</c>, and nested: <c>fan#1/b1/each#1/0</c>).
    /// </summary>
    public static string BranchScope(string ownerWorkKey, string label) => $"{ownerWorkKey}/{label}";

    /// <summary>Splits a branch scope into the coordinating step's work key and the branch label.</summary>
    public static (string OwnerWorkKey, string Label) SplitScope(string scope)
    {
        var cut = scope.LastIndexOf('/');
        return cut <= 0 ? (scope, "") : (scope[..cut], scope[(cut + 1)..]);
    }

    /// <summary>The scope a work key's step runs in (null at top level): <c>fan#1/b1/x#2</c> → <c>fan#1/b1</c>.</summary>
    public static string? ScopeOf(string workKey)
    {
        var cut = workKey.LastIndexOf('/');
        return cut <= 0 ? null : workKey[..cut];
    }

    /// <summary>The scope enclosing a branch scope (null at top level): <c>fan#1/b1/each#1/0</c> → <c>fan#1/b1</c>.</summary>
    public static string? ParentScope(string scope) => ScopeOf(SplitScope(scope).OwnerWorkKey);

    /// <summary>Whether <paramref name="scope"/> is <paramref name="outer"/> or nested in it: <c>fan#1/b1/each#1/0</c> is within <c>fan#1/b1</c>.</summary>
    public static bool IsWithin(string? scope, string outer)
        => scope is not null && scope.StartsWith(outer, StringComparison.Ordinal) && (scope.Length == outer.Length || scope[outer.Length] == '/');
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
    /// <summary>How many of the workers that lost an item's lease are remembered with it.</summary>
    public const int LostOwnersKept = 5;

    /// <summary>The StepStarted event appended when a work item is delivered to a worker (<paramref name="takenOverFrom"/>: the worker whose lease was lost, if it was).</summary>
    public static NewEvent StepStarted(StepRef step, string worker, int delivery, DateTimeOffset now, string? takenOverFrom = null)
        => EventFactory.Step(EventTypes.StepStarted, step, new StepStartedPayload(worker, delivery) { TakenOverFrom = takenOverFrom }, now);
}

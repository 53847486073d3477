using System.Text.Json;
using Ordo.Expressions;

namespace Ordo.Workflows;

/// <summary>Where something was written: file, line, column and key path.</summary>
public sealed record SourceLocation(string? File, int Line, int Column, string Path)
{
    /// <summary>An unknown location (definitions built in code).</summary>
    public static SourceLocation None { get; } = new(null, 0, 0, "");

    /// <inheritdoc />
    public override string ToString() => File is null ? Path : $"{File}:{Line}:{Column} {Path}";
}

/// <summary>One route out of a step: taken when <see cref="When"/> holds (or always when it is null).</summary>
/// <param name="When">The condition, or null.</param>
/// <param name="Target">A step id, <c>end</c> or <c>fail</c>.</param>
public sealed record Route(CompiledExpression? When, string Target)
{
    /// <summary>The target that completes the job (or the branch).</summary>
    public const string End = "end";
    /// <summary>The target that fails the job.</summary>
    public const string Fail = "fail";
}

/// <summary>How a step is retried: bounded, with exponential backoff and full jitter.</summary>
public sealed record RetryPolicy
{
    /// <summary>No retry: one attempt.</summary>
    public static RetryPolicy None { get; } = new() { MaxAttempts = 1 };

    /// <summary>Attempts in all, the first included.</summary>
    public int MaxAttempts { get; init; } = 1;
    /// <summary>The base delay: attempt n waits up to <c>backoff × 2^(n-2)</c>.</summary>
    public TimeSpan Backoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>The cap on one delay.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Whether the delay is drawn uniformly from [0, delay] (full jitter). Default: true.</summary>
    public bool Jitter { get; init; } = true;
    /// <summary>What changes on the next attempt: <c>escalate_tier</c>, <c>require_citations</c>, <c>switch_tool</c>.</summary>
    public IReadOnlyList<string> Vary { get; init; } = [];

    /// <summary>The delay before attempt <paramref name="nextAttempt"/>, given a uniform random number in [0, 1).</summary>
    public TimeSpan DelayBefore(int nextAttempt, double random)
    {
        var exponent = Math.Clamp(nextAttempt - 2, 0, 30);
        var ceiling = Math.Min(MaxBackoff.TotalMilliseconds, Backoff.TotalMilliseconds * Math.Pow(2, exponent));
        return TimeSpan.FromMilliseconds(Jitter ? ceiling * random : ceiling);
    }
}

/// <summary>What happens when a step's last attempt fails.</summary>
public enum FailureAction
{
    /// <summary>The job fails.</summary>
    Fail,
    /// <summary>The job pauses for a human (Escalated event).</summary>
    Escalate,
}

/// <summary>A step of a workflow. Exactly one kind per step; the kinds are the sealed subclasses.</summary>
public abstract class StepDefinition
{
    /// <summary>The step id, unique in its workflow.</summary>
    public string Id { get; internal set; } = "";
    /// <summary>What it does.</summary>
    public string? Description { get; internal set; }
    /// <summary>Routes out, tried in order; empty ends the branch.</summary>
    public IReadOnlyList<Route> Next { get; internal set; } = [];
    /// <summary>Retry policy.</summary>
    public RetryPolicy Retry { get; internal set; } = RetryPolicy.None;
    /// <summary>What happens after the last failed attempt.</summary>
    public FailureAction OnFailure { get; internal set; } = FailureAction.Fail;
    /// <summary>Time one attempt may take.</summary>
    public TimeSpan? Timeout { get; internal set; }
    /// <summary>Whether the step may read quarantined artifacts.</summary>
    public bool AcceptsQuarantined { get; internal set; }
    /// <summary>How many times a route may visit the step (required when a route can reach it again).</summary>
    public int? MaxIterations { get; internal set; }
    /// <summary>Where it was written.</summary>
    public SourceLocation Location { get; internal set; } = SourceLocation.None;

    /// <summary>The kind name (<c>agent</c>, <c>tool</c>, …).</summary>
    public abstract string Kind { get; }

    internal StepDefinition With(string id, string? description, IReadOnlyList<Route> next, RetryPolicy retry, FailureAction onFailure, TimeSpan? timeout, bool acceptsQuarantined, int? maxIterations, SourceLocation location)
    {
        Id = id;
        Description = description;
        Next = next;
        Retry = retry;
        OnFailure = onFailure;
        Timeout = timeout;
        AcceptsQuarantined = acceptsQuarantined;
        MaxIterations = maxIterations;
        Location = location;
        return this;
    }
}

/// <summary>Runs an agent; its output becomes the agent's artifact.</summary>
public sealed class AgentStep : StepDefinition
{
    /// <summary>The agent name.</summary>
    public required string Agent { get; init; }
    /// <summary>The agent's input; the job input when absent.</summary>
    public ValueTemplate? Input { get; init; }
    /// <inheritdoc />
    public override string Kind => "agent";
}

/// <summary>Calls a tool through the gateway.</summary>
public sealed class ToolStep : StepDefinition
{
    /// <summary>The tool name.</summary>
    public required string Tool { get; init; }
    /// <summary>The arguments.</summary>
    public ValueTemplate? Args { get; init; }
    /// <summary>The artifact the result is stored as, under its contract.</summary>
    public string? Output { get; init; }
    /// <inheritdoc />
    public override string Kind => "tool";
}

/// <summary>Pure data mapping into named artifacts.</summary>
public sealed class TransformStep : StepDefinition
{
    /// <summary>Artifact name → value.</summary>
    public required IReadOnlyList<KeyValuePair<string, ValueTemplate>> Set { get; init; }
    /// <inheritdoc />
    public override string Kind => "transform";
}

/// <summary>Promotes a quarantined artifact to verified, or rejects it.</summary>
public sealed class GateStep : StepDefinition
{
    /// <summary>The artifact under check.</summary>
    public required string Artifact { get; init; }
    /// <summary>A check over <c>artifact</c>.</summary>
    public CompiledExpression? Check { get; init; }
    /// <summary>A code validator or verifier agent.</summary>
    public string? Validator { get; init; }
    /// <summary><c>fail</c> or a step id to route to on rejection.</summary>
    public string OnReject { get; init; } = Route.Fail;
    /// <inheritdoc />
    public override string Kind => "gate";
}

/// <summary>Waits for human approval.</summary>
public sealed class ApprovalStep : StepDefinition
{
    /// <summary>The role approvers must hold.</summary>
    public required string Role { get; init; }
    /// <summary>Distinct approvals needed (2 = two-person rule).</summary>
    public int Count { get; init; } = 1;
    /// <summary>When the request expires.</summary>
    public TimeSpan? Expires { get; init; }
    /// <summary><c>fail</c>, <c>approve</c> or a step id, taken on expiry.</summary>
    public string OnExpire { get; init; } = Route.Fail;
    /// <summary>What approvers are shown.</summary>
    public ValueTemplate? Show { get; init; }
    /// <inheritdoc />
    public override string Kind => "approval";
}

/// <summary>How a parallel step joins its branches.</summary>
/// <param name="Mode"><c>all</c>, <c>any</c> or <c>quorum</c>.</param>
/// <param name="Quorum">N for <c>quorum(N)</c>.</param>
public sealed record JoinPolicy(string Mode, int Quorum)
{
    /// <summary>Join when every branch succeeded; fail when one fails.</summary>
    public static JoinPolicy All { get; } = new("all", 0);
    /// <summary>Join on the first success; cancel the rest.</summary>
    public static JoinPolicy Any { get; } = new("any", 1);

    /// <inheritdoc />
    public override string ToString() => Mode == "quorum" ? $"quorum({Quorum})" : Mode;
}

/// <summary>Runs branches concurrently, then a join step once.</summary>
public sealed class ParallelStep : StepDefinition
{
    /// <summary>The first step of each branch.</summary>
    public required IReadOnlyList<string> Branches { get; init; }
    /// <summary>The step run once after the branches.</summary>
    public string? Join { get; init; }
    /// <summary>When to join.</summary>
    public JoinPolicy JoinPolicy { get; init; } = JoinPolicy.All;
    /// <inheritdoc />
    public override string Kind => "parallel";
}

/// <summary>Maps a step or sub-workflow over a list.</summary>
public sealed class ForeachStep : StepDefinition
{
    /// <summary>The list.</summary>
    public required ValueTemplate Items { get; init; }
    /// <summary>The step run per item, or null when <see cref="DoWorkflow"/> is set.</summary>
    public string? Do { get; init; }
    /// <summary>The sub-workflow run per item.</summary>
    public WorkflowReference? DoWorkflow { get; init; }
    /// <summary>Items in flight at once.</summary>
    public int MaxConcurrency { get; init; } = 8;
    /// <inheritdoc />
    public override string Kind => "foreach";
}

/// <summary><c>name@version</c> of another workflow.</summary>
public sealed record WorkflowReference(string Name, int Version)
{
    /// <inheritdoc />
    public override string ToString() => $"{Name}@{Version}";
}

/// <summary>Runs another workflow as a child job.</summary>
public sealed class SubWorkflowStep : StepDefinition
{
    /// <summary>The child workflow.</summary>
    public required WorkflowReference Workflow { get; init; }
    /// <summary>The child's input.</summary>
    public ValueTemplate? Input { get; init; }
    /// <inheritdoc />
    public override string Kind => "workflow";
}

/// <summary>A planner agent emits a plan, validated against a catalogue, then run in order.</summary>
public sealed class PlanStep : StepDefinition
{
    /// <summary>The planner agent.</summary>
    public required string Agent { get; init; }
    /// <summary>Agents a plan may use.</summary>
    public required IReadOnlyList<string> Catalog { get; init; }
    /// <summary>The longest plan accepted.</summary>
    public int MaxSteps { get; init; } = 12;
    /// <summary>The step run when planning fails or the plan is invalid.</summary>
    public string? Fallback { get; init; }
    /// <summary>The planner's input.</summary>
    public ValueTemplate? Input { get; init; }
    /// <inheritdoc />
    public override string Kind => "plan";
}

/// <summary>A supervisor agent picks a worker each round until done.</summary>
public sealed class SuperviseStep : StepDefinition
{
    /// <summary>The supervisor agent.</summary>
    public required string Agent { get; init; }
    /// <summary>Workers it may pick.</summary>
    public required IReadOnlyList<string> Workers { get; init; }
    /// <summary>The most rounds.</summary>
    public int MaxRounds { get; init; } = 8;
    /// <summary>The supervisor's task input.</summary>
    public ValueTemplate? Input { get; init; }
    /// <inheritdoc />
    public override string Kind => "supervise";
}

/// <summary>A blackboard rule: run an agent when artifacts match.</summary>
/// <param name="When">The condition over artifacts.</param>
/// <param name="Run">The agent.</param>
/// <param name="Id">A rule id (<c>rules[i]</c> unless named).</param>
public sealed record BoardRule(CompiledExpression When, string Run, string Id);

/// <summary>Fires agents as artifacts appear, until a condition holds.</summary>
public sealed class BoardStep : StepDefinition
{
    /// <summary>Rules, checked in order.</summary>
    public required IReadOnlyList<BoardRule> Rules { get; init; }
    /// <summary>The step ends when this holds.</summary>
    public required CompiledExpression Until { get; init; }
    /// <summary>The step fails after this many firings.</summary>
    public int MaxFirings { get; init; } = 50;
    /// <inheritdoc />
    public override string Kind => "board";
}

/// <summary>Contract-net: bidders bid, the best score wins and does the task.</summary>
public sealed class AuctionStep : StepDefinition
{
    /// <summary>Agents that bid.</summary>
    public required IReadOnlyList<string> Bidders { get; init; }
    /// <summary>The task description.</summary>
    public ValueTemplate? Task { get; init; }
    /// <summary>Score of a bid (lowest wins).</summary>
    public required CompiledExpression Score { get; init; }
    /// <inheritdoc />
    public override string Kind => "auction";
}

/// <summary>A step implemented by a C# delegate (C# builder only).</summary>
public sealed class CodeStep : StepDefinition
{
    /// <summary>The code.</summary>
    public required Func<CodeStepContext, CancellationToken, ValueTask<JsonElement>> Run { get; init; }
    /// <summary>The artifact the result is stored as.</summary>
    public string? Output { get; init; }
    /// <summary>
    /// The code computes its result from what it is given and does nothing else: it may then start before the commit of
    /// the step before it is written, and a run dropped because that commit was refused goes unseen
    /// (<see cref="Engine.OrdoRuntimeOptions.StartStepsEarly"/>). Default: false.
    /// </summary>
    public bool Pure { get; init; }
    /// <inheritdoc />
    public override string Kind => "code";
}

/// <summary>What a <see cref="CodeStep"/> sees.</summary>
/// <param name="Job">The job id.</param>
/// <param name="Step">The step, visit and attempt.</param>
/// <param name="State">The job state when the step started.</param>
public sealed record CodeStepContext(JobId Job, Events.StepRef Step, State.JobState State)
{
    /// <summary>The output of an earlier step, if it succeeded.</summary>
    public JsonElement? OutputOf(string stepId) => State.StepIn(Step.Scope, stepId)?.Output;

    /// <summary>The foreach element this step runs for, if it runs inside a foreach.</summary>
    public JsonElement? Item => State.ItemOf(Step.Scope)?.Item;

    /// <summary>The foreach index this step runs for, if it runs inside a foreach.</summary>
    public int? Index => State.ItemOf(Step.Scope)?.Index;
}

using System.Text.Json;
using Ordo.Expressions;

namespace Ordo.Workflows;

/// <summary>Configures one step of a <see cref="WorkflowBuilder"/>: exactly one kind, plus routes, retry, timeout and loop bound.</summary>
public sealed class StepBuilder
{
    private readonly List<(string? Condition, string Target)> _next = [];
    private readonly List<string> _errors = [];
    private Func<StepDefinition>? _kind;
    private string? _kindName;
    private RetryPolicy _retry = RetryPolicy.None;
    private FailureAction _onFailure = FailureAction.Fail;
    private TimeSpan? _timeout;
    private bool _acceptsQuarantined;
    private int? _maxIterations;
    private string? _description;

    internal StepBuilder(string id) => Id = id;

    /// <summary>The step id.</summary>
    public string Id { get; }

    /// <summary>Runs an agent of the workflow.</summary>
    public StepBuilder Agent(string agent, object? input = null) => Kind("agent", () => new AgentStep { Agent = agent, Input = TemplateOf(input) });

    /// <summary>Calls a tool through the gateway.</summary>
    public StepBuilder Tool(string tool, object? args = null, string? output = null) => Kind("tool", () => new ToolStep { Tool = tool, Args = TemplateOf(args), Output = output });

    /// <summary>Maps data into one named artifact.</summary>
    public StepBuilder Transform(string artifact, object? value) => Transform(new Dictionary<string, object?> { [artifact] = value });

    /// <summary>Maps data into named artifacts.</summary>
    public StepBuilder Transform(IReadOnlyDictionary<string, object?> set)
        => Kind("transform", () => new TransformStep { Set = set.Select(kv => new KeyValuePair<string, ValueTemplate>(kv.Key, TemplateOf(kv.Value) ?? ValueTemplate.Constant(JsonElementFactory.Null))).ToList() });

    /// <summary>
    /// Runs C# code; its result is the step output (and the artifact <paramref name="output"/> if given).
    /// <paramref name="pure"/>: the code only computes its result and does nothing else (<see cref="CodeStep.Pure"/>).
    /// </summary>
    public StepBuilder Code(Func<CodeStepContext, CancellationToken, ValueTask<JsonElement>> run, string? output = null, bool pure = false)
        => Kind("code", () => new CodeStep { Run = run, Output = output, Pure = pure });

    /// <summary>Runs synchronous C# code (see the other overload).</summary>
    public StepBuilder Code(Func<CodeStepContext, JsonElement> run, string? output = null, bool pure = false)
    {
        ArgumentNullException.ThrowIfNull(run);
        return Code((ctx, _) => ValueTask.FromResult(run(ctx)), output, pure);
    }

    /// <summary>Promotes or rejects an artifact.</summary>
    public StepBuilder Gate(string artifact, string? check = null, string? validator = null, string onReject = Route.Fail)
        => Kind("gate", () => new GateStep { Artifact = artifact, Check = check is null ? null : CompiledExpression.Compile(TemplateParser.Unwrap(check) ?? check), Validator = validator, OnReject = onReject });

    /// <summary>Waits for approval.</summary>
    public StepBuilder Approval(string role, int count = 1, TimeSpan? expires = null, string onExpire = Route.Fail, object? show = null)
        => Kind("approval", () => new ApprovalStep { Role = role, Count = count, Expires = expires, OnExpire = onExpire, Show = TemplateOf(show) });

    /// <summary>Runs branches concurrently, then a join step.</summary>
    public StepBuilder Parallel(IReadOnlyList<string> branches, string? join = null, string joinPolicy = "all")
        => Kind("parallel", () => new ParallelStep
        {
            Branches = branches, Join = join,
            JoinPolicy = Loading.StepKindLoader.ParseJoinPolicy(joinPolicy) ?? throw new InvalidOperationException($"'{joinPolicy}' is not a join policy (all, any, quorum(N))"),
        });

    /// <summary>Maps a step over a list.</summary>
    public StepBuilder Foreach(object items, string @do, int maxConcurrency = 8)
        => Kind("foreach", () => @do.Contains('@', StringComparison.Ordinal)
            ? new ForeachStep { Items = TemplateOf(items)!, DoWorkflow = ParseRef(@do), MaxConcurrency = maxConcurrency }
            : new ForeachStep { Items = TemplateOf(items)!, Do = @do, MaxConcurrency = maxConcurrency });

    /// <summary>Runs a sub-workflow.</summary>
    public StepBuilder Workflow(string reference, object? input = null)
        => Kind("workflow", () => new SubWorkflowStep { Workflow = ParseRef(reference), Input = TemplateOf(input) });

    /// <summary>Runs a planner, validates its plan against the catalogue, then runs it.</summary>
    public StepBuilder Plan(string agent, IReadOnlyList<string> catalog, int maxSteps = 12, string? fallback = null, object? input = null)
        => Kind("plan", () => new PlanStep { Agent = agent, Catalog = catalog, MaxSteps = maxSteps, Fallback = fallback, Input = TemplateOf(input) });

    /// <summary>Lets a supervisor pick workers round by round.</summary>
    public StepBuilder Supervise(string agent, IReadOnlyList<string> workers, int maxRounds = 8, object? input = null)
        => Kind("supervise", () => new SuperviseStep { Agent = agent, Workers = workers, MaxRounds = maxRounds, Input = TemplateOf(input) });

    /// <summary>Fires agents as artifacts appear.</summary>
    public StepBuilder Board(IReadOnlyList<(string When, string Run)> rules, string until, int maxFirings = 50)
        => Kind("board", () => new BoardStep
        {
            Rules = rules.Select((r, i) => new BoardRule(CompiledExpression.Compile(TemplateParser.Unwrap(r.When) ?? r.When), r.Run, $"{Id}.rules[{i}]")).ToList(),
            Until = CompiledExpression.Compile(TemplateParser.Unwrap(until) ?? until),
            MaxFirings = maxFirings,
        });

    /// <summary>Runs a contract-net auction.</summary>
    public StepBuilder Auction(IReadOnlyList<string> bidders, string score, object? task = null)
        => Kind("auction", () => new AuctionStep { Bidders = bidders, Score = CompiledExpression.Compile(TemplateParser.Unwrap(score) ?? score), Task = TemplateOf(task) });

    /// <summary>Routes to a step, <c>end</c> or <c>fail</c>.</summary>
    public StepBuilder Next(string target)
    {
        _next.Add((null, target));
        return this;
    }

    /// <summary>Routes to <paramref name="target"/> when <paramref name="condition"/> holds (routes are tried in the order added).</summary>
    /// <remarks>The condition is compiled by <see cref="WorkflowBuilder.Build"/>, which reports a syntax error with the others.</remarks>
    public StepBuilder When(string condition, string target)
    {
        _next.Add((condition, target));
        return this;
    }

    /// <summary>Retries failed attempts with exponential backoff and full jitter.</summary>
    public StepBuilder Retry(int maxAttempts, TimeSpan? backoff = null, TimeSpan? maxBackoff = null, params string[] vary)
    {
        _retry = new RetryPolicy { MaxAttempts = maxAttempts, Backoff = backoff ?? TimeSpan.FromSeconds(1), MaxBackoff = maxBackoff ?? TimeSpan.FromMinutes(5), Vary = vary ?? [] };
        return this;
    }

    /// <summary>Escalates to a human after the last attempt instead of failing.</summary>
    public StepBuilder EscalateOnFailure()
    {
        _onFailure = FailureAction.Escalate;
        return this;
    }

    /// <summary>Bounds one attempt.</summary>
    public StepBuilder Timeout(TimeSpan timeout)
    {
        _timeout = timeout;
        return this;
    }

    /// <summary>Lets the step read quarantined artifacts.</summary>
    public StepBuilder AcceptsQuarantined()
    {
        _acceptsQuarantined = true;
        return this;
    }

    /// <summary>Bounds how many times routes may visit the step.</summary>
    public StepBuilder Loop(int maxIterations)
    {
        _maxIterations = maxIterations;
        return this;
    }

    /// <summary>Describes the step.</summary>
    public StepBuilder Describe(string description)
    {
        _description = description;
        return this;
    }

    /// <summary>Builds the step; returns null and adds to <paramref name="errors"/> (one message per problem) when it is invalid.</summary>
    internal StepDefinition? Build(List<string> errors)
    {
        var count = errors.Count;
        errors.AddRange(_errors);
        if (_kind is null && _errors.Count == 0)
        {
            errors.Add("the step has no kind: call one of Agent, Tool, Transform, Code, Gate, Approval, Parallel, Foreach, Workflow, Plan, Supervise, Board, Auction");
        }

        if (_retry.MaxAttempts < 1) errors.Add($"retry: max attempts must be at least 1, found {_retry.MaxAttempts}");
        if (_retry.Backoff < TimeSpan.Zero) errors.Add("retry: backoff must not be negative");
        if (_retry.MaxBackoff < _retry.Backoff) errors.Add($"retry: max backoff ({Durations.Format(_retry.MaxBackoff)}) is shorter than backoff ({Durations.Format(_retry.Backoff)})");
        foreach (var v in _retry.Vary.Where(v => !Loading.WorkflowFileLoader.VaryOptions.Contains(v, StringComparer.Ordinal)))
        {
            errors.Add($"retry: '{v}' is not one of: {string.Join(", ", Loading.WorkflowFileLoader.VaryOptions)}");
        }

        if (_timeout is { } t && t <= TimeSpan.Zero) errors.Add($"timeout must be positive, found {t}");
        if (_maxIterations is < 1) errors.Add($"loop: max iterations must be at least 1, found {_maxIterations}");

        var routes = new List<Route>();
        foreach (var (condition, target) in _next)
        {
            try
            {
                routes.Add(new Route(condition is null ? null : CompiledExpression.Compile(TemplateParser.Unwrap(condition) ?? condition, $"steps[{Id}].next"), target));
            }
            catch (ExpressionSyntaxException e)
            {
                errors.Add("next: " + e.Message);
            }
        }

        StepDefinition? step = null;
        if (_kind is not null && _errors.Count == 0)
        {
            try
            {
                step = _kind();
            }
            catch (Exception e) when (e is InvalidOperationException or ExpressionSyntaxException or FormatException)
            {
                errors.Add(e.Message);
            }
        }

        if (step is not null)
        {
            errors.AddRange(KindProblems(step));
        }

        if (step is null || errors.Count > count)
        {
            return null;
        }

        return step.With(Id, _description, routes, _retry, _onFailure, _timeout, _acceptsQuarantined, _maxIterations, SourceLocation.None);
    }

    /// <summary>The limits the YAML loader checks for each kind, checked the same way here.</summary>
    private static IEnumerable<string> KindProblems(StepDefinition step)
    {
        switch (step)
        {
            case ApprovalStep { Count: < 1 or > 10 } a:
                yield return $"approval: count must be between 1 and 10, found {a.Count}";
                break;
            case ParallelStep { Branches.Count: 0 }:
                yield return "parallel needs at least one branch";
                break;
            case ParallelStep { JoinPolicy: { Mode: "quorum" } policy } p when policy.Quorum > p.Branches.Count:
                yield return $"join policy quorum({policy.Quorum}) needs at least {policy.Quorum} branches; there are {p.Branches.Count}";
                break;
            case ForeachStep { MaxConcurrency: < 1 } f:
                yield return $"foreach: max concurrency must be at least 1, found {f.MaxConcurrency}";
                break;
            case TransformStep { Set.Count: 0 }:
                yield return "transform needs at least one artifact to set";
                break;
            case PlanStep { MaxSteps: < 1 } pl:
                yield return $"plan: max steps must be at least 1, found {pl.MaxSteps}";
                break;
            case SuperviseStep { MaxRounds: < 1 } sv:
                yield return $"supervise: max rounds must be at least 1, found {sv.MaxRounds}";
                break;
            case BoardStep { Rules.Count: 0 }:
                yield return "board needs at least one rule";
                break;
            case BoardStep { MaxFirings: < 1 } bd:
                yield return $"board: max firings must be at least 1, found {bd.MaxFirings}";
                break;
            case AuctionStep { Bidders.Count: 0 }:
                yield return "auction needs at least one bidder";
                break;
            case GateStep { Check: null, Validator: null }:
                yield return "a gate needs a check, a validator or both";
                break;
        }
    }

    private StepBuilder Kind(string name, Func<StepDefinition> factory)
    {
        if (_kindName is not null)
        {
            // Reported by Build with every other problem, like a step with two kind keys in a file.
            _errors.Add($"a step has exactly one kind; '{Id}' is both a {_kindName} and a {name} step");
            return this;
        }

        _kindName = name;
        _kind = factory;
        return this;
    }

    private static WorkflowReference ParseRef(string text)
    {
        var at = text.LastIndexOf('@');
        if (at <= 0 || !Loading.WorkflowFileLoader.WorkflowName().IsMatch(text[..at])
            || !int.TryParse(text[(at + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 1)
        {
            throw new InvalidOperationException($"'{text}' is not a workflow reference (NAME@VERSION, like invoice-line@2)");
        }

        return new WorkflowReference(text[..at], v);
    }

    internal static ValueTemplate? TemplateOf(object? value) => value switch
    {
        null => null,
        ValueTemplate t => t,
        JsonElement e => ValueTemplate.FromJson(e),
        string s => ValueTemplate.FromString(s) ?? ValueTemplate.Constant(JsonSerializer.SerializeToElement(s, Json.Options)),
        _ => ValueTemplate.FromJson(JsonSerializer.SerializeToElement(value, value.GetType(), Json.Options)),
    };
}

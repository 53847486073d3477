using System.Globalization;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Budgets;

/// <summary>A budget that ran out.</summary>
/// <param name="Budget"><c>tokens</c>, <c>cost</c>, <c>tool_calls</c> or <c>deadline</c>.</param>
/// <param name="Limit">The limit, as text.</param>
/// <param name="Used">What was used, as text.</param>
internal sealed record BudgetViolation(string Budget, string Limit, string Used)
{
    /// <summary>Whether <see cref="Used"/> counts a call not made yet: the one the budget refuses.</summary>
    public bool Attempted { get; init; }

    /// <summary>A sentence for people.</summary>
    public string Describe() => Budget switch
    {
        "deadline" => $"the job's deadline ({Limit}) has passed ({Used})",
        "tool_calls" when Attempted => $"the job may make {Limit} tool calls and one more would make {Used}",
        "tool_calls" => $"the job may make {Limit} tool calls and has made {Used}",
        "cost" => $"the job may cost ${Limit} and has cost ${Used}",
        _ => $"the job may use {Limit} tokens and has used {Used}",
    };
}

/// <summary>Checks a job's usage against its constraints (<c>max_tokens</c>, <c>max_cost</c>, <c>max_tool_calls</c>, <c>deadline</c>).</summary>
internal static class BudgetCheck
{
    /// <summary>The first budget the job has exceeded, or null. A budget a human waived is not checked.</summary>
    /// <param name="state">The job.</param>
    /// <param name="constraints">Its constraints.</param>
    /// <param name="now">The current time.</param>
    /// <param name="usage">Usage to check (the state's, plus what the current step used).</param>
    /// <param name="nextToolCall">True before a tool call: the call itself must fit in <c>max_tool_calls</c>.</param>
    public static BudgetViolation? Exceeded(JobState state, JobConstraints constraints, DateTimeOffset now, JobUsage usage, bool nextToolCall = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(constraints);
        ArgumentNullException.ThrowIfNull(usage);
        var waived = state.WaivedBudgets;
        if (constraints.Deadline is { } deadline && !waived.Contains("deadline") && now > state.CreatedAt + deadline)
        {
            return new BudgetViolation("deadline", Durations.Format(deadline), $"{Durations.Format(TimeSpan.FromMilliseconds(Math.Round((now - state.CreatedAt).TotalMilliseconds)))} since submission");
        }

        if (constraints.MaxTokens is { } maxTokens && !waived.Contains("tokens") && usage.Tokens > maxTokens)
        {
            return new BudgetViolation("tokens", maxTokens.ToString(CultureInfo.InvariantCulture), usage.Tokens.ToString(CultureInfo.InvariantCulture));
        }

        if (constraints.MaxCost is { } maxCost && !waived.Contains("cost") && usage.Cost > maxCost)
        {
            return new BudgetViolation("cost", maxCost.ToString("0.####", CultureInfo.InvariantCulture), usage.Cost.ToString("0.######", CultureInfo.InvariantCulture));
        }

        if (constraints.MaxToolCalls is { } maxCalls && !waived.Contains("tool_calls") && (nextToolCall ? usage.ToolCalls + 1 > maxCalls : usage.ToolCalls > maxCalls))
        {
            return new BudgetViolation("tool_calls", maxCalls.ToString(CultureInfo.InvariantCulture), (nextToolCall ? usage.ToolCalls + 1 : usage.ToolCalls).ToString(CultureInfo.InvariantCulture))
            {
                Attempted = nextToolCall,
            };
        }

        return null;
    }
}

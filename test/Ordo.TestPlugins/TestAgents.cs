using System.Text.Json;
using Ordo.Agents;
using Ordo.Tools;

namespace Ordo.TestPlugins;

/// <summary>Doubles the number it is given: <c>{ "n": 2 }</c> → <c>{ "n": 4 }</c>.</summary>
public sealed class Doubler : ICodeAgent
{
    public ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
    {
        var n = context.Input.TryGetProperty("n", out var v) ? v.GetDouble() : 0;
        return ValueTask.FromResult(Json.Of(new { n = n * 2 }));
    }
}

/// <summary>Calls the tool named in its input through the gateway and returns the result.</summary>
public sealed class ToolCaller : ICodeAgent
{
    public async ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
    {
        var tool = context.Input.GetProperty("tool").GetString()!;
        var args = context.Input.TryGetProperty("args", out var a) ? a : JsonElementFactory.EmptyObject;
        var result = await context.Tools.CallAsync(tool, args, cancellationToken);
        return Json.Of(new { call_id = result.CallId, result = result.Value });
    }
}

/// <summary>Sleeps for <c>ms</c> milliseconds, honouring cancellation.</summary>
public sealed class Sleeper : ICodeAgent
{
    public async ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
    {
        var ms = context.Input.TryGetProperty("ms", out var v) ? v.GetInt32() : 10;
        await Task.Delay(ms, cancellationToken);
        return Json.Of(new { slept = ms });
    }
}

/// <summary>
/// A code agent that keeps a CPU busy for <c>ms</c> milliseconds (default: a minute) and never looks at its
/// cancellation token: a step that cannot be interrupted.
/// </summary>
public sealed class Spinner : ICodeAgent
{
    public ValueTask<JsonElement> InvokeAsync(AgentContext context, CancellationToken cancellationToken)
    {
        var ms = context.Input.TryGetProperty("ms", out var v) ? v.GetInt32() : 60_000;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var spins = 0L;
        while (watch.ElapsedMilliseconds < ms) spins++;
        return ValueTask.FromResult(Json.Of(new { spins }));
    }
}

/// <summary>A code tool that echoes its arguments with the idempotency key it was given.</summary>
public sealed class EchoTool : ICodeTool
{
    public ValueTask<JsonElement> InvokeAsync(ToolInvocation invocation, CancellationToken cancellationToken)
        => ValueTask.FromResult(Json.Of(new { args = invocation.Args, idempotency_key = invocation.IdempotencyKey }));
}

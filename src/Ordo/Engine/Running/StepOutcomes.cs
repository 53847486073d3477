namespace Ordo.Engine.Running;

/// <summary>What a step's outcome becomes before anything of it is planned or written.</summary>
internal static class StepOutcomes
{
    /// <summary>The outcome as it may be recorded: redacted, and failed instead when its output or an artifact is too large.</summary>
    public static StepOutcome Recordable(EngineContext ctx, StepOutcome outcome) => Bounded(ctx, Redacted(ctx, outcome));

    /// <summary>No secret leaves a step: its message and output (an agent's answer, an exception's text) are redacted at every depth.</summary>
    private static StepOutcome Redacted(EngineContext ctx, StepOutcome outcome)
    {
        var redactor = ctx.Gateway.Redactor;
        return outcome with
        {
            Message = outcome.Message is null ? null : redactor.Redact(outcome.Message),
            Output = outcome.Output is { } output ? redactor.Redact(output) : null,
            Artifacts = outcome.Artifacts.Count == 0 ? outcome.Artifacts : [.. outcome.Artifacts.Select(a => a with { Value = redactor.Redact(a.Value) })],
        };
    }

    /// <summary>An outcome whose output or an artifact is larger than <see cref="OrdoRuntimeOptions.MaxOutputBytes"/> fails the step instead: no event is unbounded.</summary>
    private static StepOutcome Bounded(EngineContext ctx, StepOutcome outcome)
    {
        var max = ctx.Options.MaxOutputBytes;
        string? what = null;
        long size = 0;
        if (outcome.Output is { } output && (size = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(output).Length) > max)
        {
            what = "its output";
        }
        else if (outcome.Artifacts.FirstOrDefault(a => System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(a.Value).Length > max) is { } big)
        {
            what = $"artifact '{big.Name}'";
            size = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(big.Value).Length;
        }

        return what is null ? outcome : StepOutcome.Failure("output_too_large",
            $"{what} is {size} bytes as JSON, more than the {max} a step may record (OrdoRuntimeOptions.MaxOutputBytes)", retryable: false)
            with { Agent = outcome.Agent, PromptHash = outcome.PromptHash, Model = outcome.Model, Interrupt = outcome.Interrupt };
    }
}

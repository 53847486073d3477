namespace Ordo.Gateway.Pipeline;

/// <summary>
/// Redacts secret values from the arguments (everything after this sees, and records, the redacted ones) and checks
/// them against the tool's <c>args</c> schema (<c>invalid_args</c>).
/// </summary>
internal sealed class ArgumentValidationHandler(SecretRedactor redactor) : IToolCallHandler
{
    /// <inheritdoc />
    public ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var tool = context.Tool ?? throw new InvalidOperationException("the arguments are checked after the tool is found");
        var args = redactor.Redact(context.Args);
        context.Args = args;
        if (tool.Args is { } schema && schema.Validate(args) is { Count: > 0 } errors)
        {
            throw context.Refuse("invalid_args", "arguments do not match the tool's schema: " + string.Join("; ", errors));
        }

        return next(context, cancellationToken);
    }
}

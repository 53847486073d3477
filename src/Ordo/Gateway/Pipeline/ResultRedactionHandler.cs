namespace Ordo.Gateway.Pipeline;

/// <summary>Replaces secret values in a result (a dependency that echoes a token back) before anything else sees it.</summary>
internal sealed class ResultRedactionHandler(SecretRedactor redactor) : IToolCallHandler
{
    /// <inheritdoc />
    public async ValueTask<ToolCallResult> HandleAsync(ToolCallContext context, ToolCallDelegate next, CancellationToken cancellationToken)
    {
        var result = await next(context, cancellationToken).ConfigureAwait(false);
        return result with { Value = redactor.Redact(result.Value) };
    }
}

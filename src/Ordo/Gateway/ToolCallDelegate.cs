namespace Ordo.Gateway;

/// <summary>The rest of the gateway's pipeline after a handler: runs the call and returns its result.</summary>
/// <param name="context">The call.</param>
/// <param name="cancellationToken">Cancels the call.</param>
/// <exception cref="ToolCallException">The call was refused or failed (recorded as <c>ToolCallFailed</c>).</exception>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Named as ASP.NET Core's RequestDelegate: the next step of a middleware pipeline.")]
public delegate ValueTask<ToolCallResult> ToolCallDelegate(ToolCallContext context, CancellationToken cancellationToken);

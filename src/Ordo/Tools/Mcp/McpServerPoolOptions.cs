namespace Ordo.Tools.Mcp;

/// <summary>Limits of the sessions an <see cref="McpServerPool"/> keeps with MCP servers.</summary>
public sealed class McpServerPoolOptions
{
    /// <summary>
    /// How long starting a session may take: the process starting (stdio) or the connection (http), and the MCP
    /// <c>initialize</c> handshake. A call waits for it within its own timeout as well. Default: 30 seconds.
    /// </summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a stdio server gets to exit by itself once its input is closed, before its process tree is killed. Default: 2 seconds.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many of the last lines a stdio server wrote on stderr are kept, to quote in errors. Default: 40.</summary>
    public int StderrLines { get; set; } = 40;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(StartTimeout, TimeSpan.Zero, nameof(StartTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(ShutdownTimeout, TimeSpan.Zero, nameof(ShutdownTimeout));
        ArgumentOutOfRangeException.ThrowIfNegative(StderrLines, nameof(StderrLines));
    }
}

namespace Ordo.Tools.Mcp;

/// <summary>The last lines a server wrote on stderr, each cut to a bounded length.</summary>
/// <remarks>Thread-safe: lines arrive on the process's reader thread while calls read the tail.</remarks>
internal sealed class StderrTail(int maxLines)
{
    private const int MaxLineLength = 500;
    private readonly Queue<string> _lines = new();
    private readonly Lock _gate = new();

    public void Add(string? line)
    {
        if (line is null || maxLines == 0) return;
        if (line.Length > MaxLineLength) line = line[..MaxLineLength] + "…";
        lock (_gate)
        {
            _lines.Enqueue(line);
            while (_lines.Count > maxLines) _lines.Dequeue();
        }
    }

    /// <summary>The kept lines joined by <c> | </c>, or null when there are none.</summary>
    public string? Text()
    {
        lock (_gate)
        {
            return _lines.Count == 0 ? null : string.Join(" | ", _lines);
        }
    }
}

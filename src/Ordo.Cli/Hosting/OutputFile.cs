namespace Ordo.Cli.Hosting;

/// <summary>Tells whether the first bytes of an existing file are those of a document of the kind a command writes.</summary>
/// <param name="head">Up to 4 KiB from the start of the file.</param>
internal delegate bool DocumentTest(ReadOnlySpan<byte> head);

/// <summary>
/// Where a command's <c>--out</c> may write (<c>ordo export</c>, <c>ordo audit checkpoint</c>, <c>ordo graph</c>): never
/// the store's database or its WAL, shared-memory or journal file (after links), nor an existing file that is something
/// else than a document of the same kind (a database, a configuration, a workflow): only a new file, an empty one or an
/// earlier document of that kind is replaced.
/// </summary>
internal static class OutputFile
{
    /// <summary>The file <paramref name="target"/> names, after its links, once it is known that it may be written.</summary>
    /// <param name="target">The path as given.</param>
    /// <param name="database">The SQLite database of the store, when there is one (whether or not it was opened).</param>
    /// <param name="document">What the command writes, for messages: "an export", "a checkpoint", "a drawing".</param>
    /// <param name="isDocument">Whether an existing file is an earlier document of that kind.</param>
    /// <exception cref="CliInputException">It may not be written; nothing was.</exception>
    public static string Check(string target, string? database, string document, DocumentTest isDocument)
    {
        ArgumentNullException.ThrowIfNull(isDocument);
        var full = FileKinds.RealPath(target);
        if (database is not null)
        {
            var db = FileKinds.RealPath(database);
            foreach (var (suffix, what) in new[] { ("", "database"), ("-wal", "database's write-ahead log"), ("-shm", "database's shared memory file"), ("-journal", "database's journal") })
            {
                if (FileKinds.Same(full, db + suffix))
                {
                    throw new CliInputException($"--out: {target} is the store's {what} ({database + suffix}); writing {document} there would replace it and every job in it would be lost. Name another file; nothing was written");
                }
            }
        }

        var kind = FileKinds.Of(full);
        if (kind == FileKind.Missing) return full;
        if (kind != FileKind.Regular)
        {
            throw new CliInputException($"--out: {target}: {FileKinds.Describe(kind)}; {document} is written to a regular file. Nothing was written");
        }

        var head = new byte[4096];
        int n;
        using (var existing = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            n = existing.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }

        if (n == 0 || isDocument(head.AsSpan(0, n))) return full;
        var found = head.AsSpan(0, n).StartsWith("SQLite format 3\0"u8) ? "it is an SQLite database" : $"it is not {document} ordo wrote";
        throw new CliInputException($"--out: {target} already exists and {found}; it is not overwritten: name another file, or remove it first. Nothing was written");
    }

    /// <summary>Whether <paramref name="head"/> starts as a JSON object whose first member is <paramref name="firstMember"/>.</summary>
    public static bool IsJsonObjectStartingWith(ReadOnlySpan<byte> head, ReadOnlySpan<byte> firstMember)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) head = head[3..];
        var reader = new System.Text.Json.Utf8JsonReader(head, isFinalBlock: false, state: default);
        try
        {
            return reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.StartObject
                && reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.PropertyName && reader.ValueTextEquals(firstMember);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }
}

using Npgsql;

namespace Ordo.Postgres;

/// <summary>
/// Tells Ordo's <c>schema_version</c> table from another program's of the same name (a migration tool's, with a text
/// <c>version</c>), by its columns, before anything reads or writes it.
/// </summary>
internal static class PostgresVersionTable
{
    /// <summary>The columns Ordo's table has (and any later Ordo keeps), with their types as <c>information_schema</c> names them.</summary>
    private static readonly (string Name, string Type)[] Expected =
    [
        ("version", "integer"),
        ("description", "text"),
        ("applied_at", "timestamp with time zone"),
    ];

    /// <summary>Null when the schema's <c>schema_version</c> table is Ordo's; else its columns, for a message (<c>version text, …</c>).</summary>
    public static async Task<string?> ForeignColumnsAsync(NpgsqlConnection c, string schema, CancellationToken cancellationToken)
    {
        var columns = new List<(string Name, string Type)>();
        await using (var cmd = Sql.Command(c, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'schema_version' ORDER BY ordinal_position", Sql.Text(schema)))
        await using (var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) columns.Add((r.GetString(0), r.GetString(1)));
        }

        if (Expected.All(columns.Contains)) return null;
        var shown = columns.Take(6).Select(x => $"{x.Name} {x.Type}");
        return columns.Count == 0 ? "no columns" : string.Join(", ", shown) + (columns.Count > 6 ? ", …" : "");
    }
}

using System.Text;
using Microsoft.Data.Sqlite;

namespace Ordo.Sqlite;

/// <summary>Reads a column the store writes as a BLOB, whatever another program rewrote it as.</summary>
internal static class SqliteContent
{
    /// <summary>
    /// The bytes of a BLOB column: a TEXT value (an UPDATE with <c>replace()</c> or a CAST makes one) gives its UTF-8
    /// bytes, NULL or a number none. What they hold is checked by whoever reads them (a definition against the hash its
    /// job recorded), instead of the read failing with a cast.
    /// </summary>
    public static byte[] Bytes(SqliteDataReader reader, int ordinal) => reader.GetValue(ordinal) switch
    {
        byte[] bytes => bytes,
        string text => Encoding.UTF8.GetBytes(text),
        _ => [],
    };
}

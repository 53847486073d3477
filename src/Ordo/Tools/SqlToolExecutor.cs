using System.Buffers;
using System.Data.Common;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ordo.Configuration;

namespace Ordo.Tools;

/// <summary>Opens database connections for <c>sql</c> tools, for one provider (<c>sqlite</c>, <c>postgres</c>).</summary>
public interface ISqlConnectionFactory
{
    /// <summary>The provider name used in <c>connections:</c>.</summary>
    string Provider { get; }

    /// <summary>
    /// Opens a connection (creating and initializing a SQLite file on first use when the connection has <c>init:</c>).
    /// A <paramref name="readOnly"/> connection (for <c>effect: read</c> tools) cannot write, and never creates a
    /// database that does not exist (other than by its <c>init:</c> script).
    /// </summary>
    ValueTask<DbConnection> OpenAsync(ConnectionDefinition connection, bool readOnly, CancellationToken cancellationToken);

    /// <summary>Whether an exception is worth retrying (busy, deadlock, connection loss).</summary>
    bool IsTransient(Exception exception);
}

/// <summary>
/// Runs <c>sql</c> tools: binds every top-level argument that the statement names as <c>@name</c>, plus
/// <c>@idempotency_key</c>, <c>@job_id</c> and <c>@tenant</c>, and returns <c>{ "rows": [...], "rows_affected": N }</c>.
/// Arrays and objects are bound as JSON text.
/// </summary>
public sealed partial class SqlToolExecutor : IToolExecutor
{
    private readonly Dictionary<string, ISqlConnectionFactory> _factories;

    /// <summary>Creates the executor over connection factories.</summary>
    public SqlToolExecutor(IEnumerable<ISqlConnectionFactory> factories)
    {
        ArgumentNullException.ThrowIfNull(factories);
        _factories = factories.ToDictionary(f => f.Provider, StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public string Kind => "sql";

    /// <inheritdoc />
    public async ValueTask<JsonElement> ExecuteAsync(ToolInvocation invocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var tool = invocation.Tool;
        if (tool.Connection is null || !invocation.Project.Connections.TryGetValue(tool.Connection, out var connection))
        {
            throw new ToolExecutionException("config_error", $"connection '{tool.Connection}' is not defined", retryable: false);
        }

        if (!_factories.TryGetValue(connection.Provider, out var factory))
        {
            throw new ToolExecutionException("config_error", $"no {connection.Provider} connection provider is registered in this process", retryable: false);
        }

        try
        {
            await using var db = await factory.OpenAsync(connection, tool.Effect == ToolEffect.Read, cancellationToken).ConfigureAwait(false);
            await using var command = db.CreateCommand();
            command.CommandText = tool.Query;
            foreach (var name in ParameterNames(tool.Query!))
            {
                var p = command.CreateParameter();
                p.ParameterName = "@" + name;
                p.Value = name switch
                {
                    "idempotency_key" => invocation.IdempotencyKey,
                    "job_id" => invocation.JobId.Value,
                    "tenant" => invocation.Tenant,
                    _ => invocation.Args.ValueKind == JsonValueKind.Object && invocation.Args.TryGetProperty(name, out var v) ? ToDbValue(v) : DBNull.Value,
                };
                command.Parameters.Add(p);
            }

            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new ArrayBufferWriter<byte>(512);
            await using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteStartArray("rows");
                do
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        w.WriteStartObject();
                        for (var i = 0; i < reader.FieldCount; i++)
                        {
                            w.WritePropertyName(reader.GetName(i));
                            WriteValue(w, reader.IsDBNull(i) ? null : reader.GetValue(i));
                        }

                        w.WriteEndObject();
                    }
                }
                while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

                w.WriteEndArray();
                await reader.CloseAsync().ConfigureAwait(false);
                w.WriteNumber("rows_affected", Math.Max(0, reader.RecordsAffected));
                w.WriteEndObject();
            }

            return JsonElementFactory.Parse(buffer.WrittenSpan);
        }
        catch (DbException e)
        {
            throw new ToolExecutionException("sql_error", $"{connection.Name}: {e.Message}", factory.IsTransient(e), e);
        }
    }

    /// <summary>The distinct <c>@name</c> parameters a statement uses.</summary>
    public static IReadOnlyList<string> ParameterNames(string query)
        => Parameter().Matches(StringLiteral().Replace(query, "''")).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal).ToList();

    private static object ToDbValue(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Number => v.TryGetInt64(out var l) ? l : v.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => DBNull.Value,
        _ => v.GetRawText(),
    };

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case long l: w.WriteNumberValue(l); break;
            case int i: w.WriteNumberValue(i); break;
            case short sh: w.WriteNumberValue(sh); break;
            case double d: w.WriteNumberValue(d); break;
            case float f: w.WriteNumberValue(f); break;
            case decimal m: w.WriteNumberValue(m); break;
            case bool b: w.WriteBooleanValue(b); break;
            case byte[] bytes: w.WriteBase64StringValue(bytes); break;
            case DateTime dt: w.WriteStringValue(dt.ToString("O", System.Globalization.CultureInfo.InvariantCulture)); break;
            case DateTimeOffset dto: w.WriteStringValue(dto.ToString("O", System.Globalization.CultureInfo.InvariantCulture)); break;
            case Guid g: w.WriteStringValue(g.ToString()); break;
            default: w.WriteStringValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
        }
    }

    [GeneratedRegex(@"(?<![@:\w])[@:$]([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Parameter();

    [GeneratedRegex("'(?:[^']|'')*'")]
    private static partial Regex StringLiteral();
}

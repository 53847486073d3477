using System.Buffers;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ordo.Tools;

/// <summary>
/// Runs <c>sql</c> tools: binds every top-level argument that the statement names as <c>@name</c>, plus
/// <c>@idempotency_key</c>, <c>@job_id</c> and <c>@tenant</c>, and returns <c>{ "rows": [...], "rows_affected": N }</c>.
/// Arrays and objects are bound as JSON text.
/// </summary>
public sealed partial class SqlToolExecutor : IToolExecutor
{
    private readonly Dictionary<string, ISqlConnectionFactory> _factories;
    private readonly TimeProvider _time;

    /// <summary>Creates the executor over connection factories; <paramref name="timeProvider"/> times each call's <c>timeout</c>.</summary>
    public SqlToolExecutor(IEnumerable<ISqlConnectionFactory> factories, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(factories);
        _factories = factories.ToDictionary(f => f.Provider, StringComparer.Ordinal);
        _time = timeProvider ?? TimeProvider.System;
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

        // The statement runs inside the database, where only the connection can stop it: the call's token carries
        // both the caller's cancellation and the tool's own deadline there.
        using var deadline = new CancellationTokenSource(tool.Timeout <= MaxTimer ? tool.Timeout : Timeout.InfiniteTimeSpan, _time);
        using var call = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var lease = await factory.OpenAsync(connection, tool, call.Token).ConfigureAwait(false);
            await using (lease.ConfigureAwait(false))
            {
                try
                {
                    return await RunAsync(lease, invocation, call.Token).ConfigureAwait(false);
                }
                catch (DbException e) when (lease.Refused is { } refused)
                {
                    throw new ToolExecutionException("not_allowed", $"sql tool '{tool.Name}': {refused}", retryable: false, e);
                }
            }
        }
        catch (Exception e) when (call.IsCancellationRequested && e is DbException or OperationCanceledException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException($"sql tool '{tool.Name}' was cancelled; its statement was interrupted", e, cancellationToken);
            }

            throw new ToolExecutionException("timeout", $"sql tool '{tool.Name}' did not finish within its timeout of {Durations.Format(tool.Timeout)}; its statement was interrupted", retryable: true, e);
        }
        catch (DbException e)
        {
            throw new ToolExecutionException("sql_error", $"{connection.Name}: {e.Message}", factory.IsTransient(e), e);
        }
    }

    private static async Task<JsonElement> RunAsync(SqlToolConnection lease, ToolInvocation invocation, CancellationToken cancellationToken)
    {
        var tool = invocation.Tool;
        await using var command = lease.Connection.CreateCommand();
        command.CommandText = tool.Query;
        // Where the provider waits on its own (a locked database), it waits no longer than the tool may take.
        command.CommandTimeout = (int)Math.Clamp(Math.Ceiling(tool.Timeout.TotalSeconds), 1, int.MaxValue);
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
        try
        {
            return await ReadAsync(lease, reader, tool, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Closing the reader would run the statements of the command that have not run yet: not after a failure.
            lease.Abort();
            throw;
        }
    }

    private static async Task<JsonElement> ReadAsync(SqlToolConnection lease, DbDataReader reader, ToolDefinition tool, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        var rows = 0;
        await using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("rows");
            do
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    // Checked as the rows come, so that a huge result is refused after at most the limit of work.
                    if (++rows > tool.MaxRows)
                    {
                        throw new ToolExecutionException("result_too_large",
                            $"sql tool '{tool.Name}' returned more rows than its limit, max_rows: {tool.MaxRows.ToString(CultureInfo.InvariantCulture)} (raise max_rows on the tool, or narrow the query)", retryable: false);
                    }

                    w.WriteStartObject();
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        w.WritePropertyName(reader.GetName(i));
                        if (reader.IsDBNull(i))
                        {
                            w.WriteNullValue();
                            continue;
                        }

                        // A single huge value is refused before it is copied out of the database.
                        if (lease.ValueSize(reader, i) is { } size && w.BytesCommitted + w.BytesPending + size > tool.MaxResultBytes)
                        {
                            throw TooLarge(tool);
                        }

                        WriteValue(w, reader.GetValue(i));
                        if (w.BytesCommitted + w.BytesPending > tool.MaxResultBytes)
                        {
                            throw TooLarge(tool);
                        }
                    }

                    w.WriteEndObject();
                }
            }
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

            w.WriteEndArray();
            await reader.CloseAsync().ConfigureAwait(false);
            if (lease.LeftTransactionOpen)
            {
                throw new ToolExecutionException("sql_error",
                    $"sql tool '{tool.Name}' left a transaction open (BEGIN without COMMIT); it was rolled back, so the call changed nothing", retryable: false);
            }

            w.WriteNumber("rows_affected", Math.Max(0, reader.RecordsAffected));
            w.WriteEndObject();
        }

        return JsonElementFactory.Parse(buffer.WrittenSpan);
    }

    /// <summary>The longest delay a timer takes (about 49 days); a longer timeout is no timeout in practice.</summary>
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private static ToolExecutionException TooLarge(ToolDefinition tool) => new("result_too_large",
        $"sql tool '{tool.Name}' returned a result larger than its limit, max_result_bytes: {tool.MaxResultBytes.ToString(CultureInfo.InvariantCulture)} ({FormatBytes(tool.MaxResultBytes)} of JSON; raise max_result_bytes on the tool, or narrow the query)", retryable: false);

    private static string FormatBytes(long bytes) => bytes switch
    {
        >= 1024 * 1024 when bytes % (1024 * 1024) == 0 => $"{(bytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture)} MiB",
        >= 1024 when bytes % 1024 == 0 => $"{(bytes / 1024).ToString(CultureInfo.InvariantCulture)} KiB",
        _ => $"{bytes.ToString(CultureInfo.InvariantCulture)} bytes",
    };

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

using Npgsql;

namespace Ordo.Postgres;

/// <summary>
/// The wake-up channel of a store's idle workers: one connection per process runs <c>LISTEN</c> on the schema's channel
/// and calls every watcher on each notification. It waits on the socket, not in a loop of queries; every
/// <c>checkInterval</c> it also checks the workers' lock connection. A lost connection is opened again (after a pause
/// that grows to the check interval) and the watchers are woken, in case work was added meanwhile.
/// </summary>
internal sealed class WorkListener(string connectionString, string channel, TimeSpan checkInterval, TimeProvider time, Func<CancellationToken, Task> check) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly List<Action<string>> _watchers = [];
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public IDisposable Watch(Action wake)
    {
        ArgumentNullException.ThrowIfNull(wake);
        return Watch(_ => wake());
    }

    /// <summary>Calls <paramref name="notified"/> with each notification's payload (empty after a reconnect: anything may have happened).</summary>
    public IDisposable Watch(Action<string> notified)
    {
        lock (_gate)
        {
            _watchers.Add(notified);
            _loop ??= Task.Run(() => RunAsync(_stop.Token));
        }

        return new Registration(this, notified);
    }

    private void Wake(string payload = "")
    {
        Action<string>[] watchers;
        lock (_gate) watchers = [.. _watchers];
        foreach (var w in watchers) w(payload);
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var pause = TimeSpan.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 10 };
                await using var c = new NpgsqlConnection(builder.ConnectionString);
                await c.OpenAsync(stop).ConfigureAwait(false);
                c.Notification += (_, e) => Wake(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Sql.Quote(channel)}", c))
                {
                    await listen.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
                }

                // Anything added while this connection was not listening is found by the workers' next look.
                Wake();
                pause = TimeSpan.FromMilliseconds(100);
                while (!stop.IsCancellationRequested)
                {
                    await c.WaitAsync(checkInterval, stop).ConfigureAwait(false);
                    await check(stop).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
            {
                try
                {
                    await Task.Delay(pause, time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                pause = TimeSpan.FromTicks(Math.Min(checkInterval.Ticks, pause.Ticks * 2));
                try
                {
                    await check(stop).ConfigureAwait(false);
                }
                catch (Exception e2) when (e2 is NpgsqlException or IOException or InvalidOperationException or TimeoutException)
                {
                    // Tried again on the next round.
                }

                Wake();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_gate) loop = _loop;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stop.Dispose();
    }

    private sealed class Registration(WorkListener listener, Action<string> wake) : IDisposable
    {
        public void Dispose()
        {
            lock (listener._gate) listener._watchers.Remove(wake);
        }
    }
}

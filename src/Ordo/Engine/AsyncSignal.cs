namespace Ordo.Engine;

/// <summary>
/// Wakes every waiter when set. Waiters take <see cref="Current"/> BEFORE checking their condition and then wait
/// on it, so that a set between the check and the wait is never lost. Waits time out on the injected clock.
/// </summary>
internal sealed class AsyncSignal(TimeProvider time)
{
    private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The task that completes at the next <see cref="Set"/>.</summary>
    public Task Current => Volatile.Read(ref _tcs).Task;

    public void Set() => Interlocked.Exchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Waits for <paramref name="signal"/> (taken from <see cref="Current"/> earlier) or the timeout.</summary>
    public async Task WaitAsync(Task signal, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (signal.IsCompleted || timeout <= TimeSpan.Zero)
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(timeout, time, cts.Token);
        await Task.WhenAny(signal, delay).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }
}

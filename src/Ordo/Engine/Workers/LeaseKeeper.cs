namespace Ordo.Engine.Workers;

/// <summary>
/// Keeps the leases of a run: renews them every third of the lease duration. A lease the store did not renew was lost
/// (it expired and another worker took it): its step is stopped at once, and it never commits. When renewals fail (the
/// store is busy or unreachable), they are tried again sooner, and a lease that would run out before the next try is
/// given up the same way: a worker never goes on with a step it cannot prove it still owns.
/// </summary>
internal sealed class LeaseKeeper(EngineContext ctx, WorkerRun run)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var interval = ctx.Options.LeaseDuration / 3;
        var wait = interval;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(wait, ctx.Time, cancellationToken).ConfigureAwait(false);
                await RenewAsync(cancellationToken).ConfigureAwait(false);
                wait = interval;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                RuntimeLog.RenewFailed(ctx.Logger, e);
                wait = interval / 4;
                GiveUpExpiring(ctx.Time.GetUtcNow() + wait);
            }
        }
    }

    /// <summary>Renews every lease held; stops the steps whose lease was lost.</summary>
    public async Task RenewAsync(CancellationToken cancellationToken)
    {
        var held = run.InFlight.Values.Where(h => !h.IsLost).ToList();
        if (held.Count == 0) return;
        var expiresAt = ctx.Time.GetUtcNow() + ctx.Options.LeaseDuration;
        var renewed = (await ctx.Store.RenewLeasesAsync([.. held.Select(h => h.Lease)], expiresAt, cancellationToken).ConfigureAwait(false)).ToHashSet();
        foreach (var h in held)
        {
            if (renewed.Contains(h.Lease.ItemId))
            {
                h.Renewed(expiresAt);
            }
            else if (run.InFlight.TryGetValue(h.Lease.ItemId, out var now) && ReferenceEquals(now, h) && !h.Committing)
            {
                // Let go of meanwhile (committed, released, or its row taken by the successor this worker continues
                // with, under a new token) is not a loss, nor is a lease whose commit is being written (the commit
                // itself finds out if the lease was lost); the same lease still held, idle and not renewed is.
                RuntimeLog.LeaseLost(ctx.Logger, h.Lease.ItemId, ctx.Worker);
                h.Lose();
            }
        }
    }

    private void GiveUpExpiring(DateTimeOffset before)
    {
        foreach (var h in run.InFlight.Values.Where(h => !h.IsLost && h.ExpiresAt <= before))
        {
            RuntimeLog.LeaseLost(ctx.Logger, h.Lease.ItemId, ctx.Worker);
            h.Lose();
        }
    }
}

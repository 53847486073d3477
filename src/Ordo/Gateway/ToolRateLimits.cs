using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Ordo.Gateway;

/// <summary>
/// <c>rate_limit.per_tenant_per_minute</c>: a sliding-window limiter per (tool, tenant) in this process. A call over
/// the limit waits in line for a permit (at most one window's worth of calls wait); beyond that it is refused as
/// <c>rate_limited</c>, which the step may retry later.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class ToolRateLimits : IDisposable
{
    private readonly ConcurrentDictionary<(string Tool, string Tenant, int Limit), RateLimiter> _limiters = new();

    /// <summary>Waits for a permit; false when the call is refused.</summary>
    public async ValueTask<bool> AcquireAsync(string tool, string tenant, int perMinute, CancellationToken cancellationToken)
    {
        var limiter = _limiters.GetOrAdd((tool, tenant, perMinute), k => new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
        {
            PermitLimit = k.Limit,
            Window = TimeSpan.FromMinutes(1),
            SegmentsPerWindow = 6,
            QueueLimit = k.Limit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        }));
        using var lease = await limiter.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        return lease.IsAcquired;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var l in _limiters.Values) l.Dispose();
        _limiters.Clear();
    }
}

/// <summary>
/// The response cache of <c>effect: read</c> tools with <c>cache:</c>, in this process: keyed by tool, tenant and the
/// arguments, each entry kept for the tool's cache duration. Tenants never share entries.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class ToolResultCache(TimeProvider time, int capacity = 10_000)
{
    private readonly ConcurrentDictionary<(string Tool, string Tenant, string Args), (System.Text.Json.JsonElement Result, DateTimeOffset Expires)> _entries = new();

    /// <summary>A cached result, if fresh.</summary>
    public bool TryGet(string tool, string tenant, System.Text.Json.JsonElement args, out System.Text.Json.JsonElement result)
    {
        result = default;
        if (!_entries.TryGetValue((tool, tenant, args.GetRawText()), out var entry)) return false;
        if (entry.Expires <= time.GetUtcNow())
        {
            _entries.TryRemove((tool, tenant, args.GetRawText()), out _);
            return false;
        }

        result = entry.Result;
        return true;
    }

    /// <summary>Stores a result for <paramref name="ttl"/>.</summary>
    public void Put(string tool, string tenant, System.Text.Json.JsonElement args, System.Text.Json.JsonElement result, TimeSpan ttl)
    {
        var now = time.GetUtcNow();
        if (_entries.Count >= capacity)
        {
            foreach (var stale in _entries.Where(e => e.Value.Expires <= now).Select(e => e.Key).ToList()) _entries.TryRemove(stale, out _);
            if (_entries.Count >= capacity) _entries.Clear();
        }

        _entries[(tool, tenant, args.GetRawText())] = (result, now + ttl);
    }
}

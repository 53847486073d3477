namespace Ordo.Queue;

/// <summary>
/// How a claim shares the queue between tenants: round-robin, starting with the tenant after the one served last, so
/// that a tenant with thousands of queued items cannot hold back one with a few. Inside a tenant, items keep their own
/// order (higher priority first, then earliest available). Stores use it to merge each tenant's next items.
/// </summary>
public static class TenantRotation
{
    /// <summary>
    /// Merges per-tenant lists, given in the order the tenants are served: the first item of each tenant, then the
    /// second of each, and so on, at most <paramref name="max"/> items.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="groups">Each tenant's items, in that tenant's order; the tenants in rotation order.</param>
    /// <param name="max">The most items to return.</param>
    public static List<T> Interleave<T>(IReadOnlyList<IReadOnlyList<T>> groups, int max)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var result = new List<T>(Math.Max(0, Math.Min(max, groups.Sum(g => g.Count))));
        for (var round = 0; result.Count < max; round++)
        {
            var added = false;
            foreach (var group in groups)
            {
                if (round >= group.Count) continue;
                result.Add(group[round]);
                added = true;
                if (result.Count == max) break;
            }

            if (!added) break;
        }

        return result;
    }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Ordo.Stats;
using Ordo.Storage;

namespace Ordo.Releases;

/// <summary>
/// Chooses the version of a job submitted by name from its workflow's release, and judges the release's canary: once
/// <c>min_jobs</c> canary jobs have ended, a failure rate, gate-rejection rate or cost per job (a ratio to the stable
/// version's) past its bound rolls the canary back by itself — a durable <see cref="ReleaseRecordKinds.RolledBack"/>
/// record with the figures, after which every job by name gets the stable version. The canary is judged at every
/// submission by name and by <c>ordo releases</c>.
/// </summary>
public static class ReleaseRouter
{
    /// <summary>Where a job falls in [0, 1) for a purpose (<c>canary</c>, <c>shadow</c>): a stable hash of its id, the same in every process.</summary>
    public static double Position(JobId jobId, string purpose)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(purpose + ":" + jobId.Value));
        return (BitConverter.ToUInt64(hash, 0) >> 11) / (double)(1UL << 53);
    }

    /// <summary>The stable version of a release: <c>stable</c>, else the highest version found.</summary>
    public static int StableVersion(ReleaseDefinition release, IReadOnlyCollection<int> versions)
    {
        ArgumentNullException.ThrowIfNull(release);
        ArgumentNullException.ThrowIfNull(versions);
        return release.Stable ?? versions.Where(v => v != release.Canary?.Version && v != release.Shadow?.Version).DefaultIfEmpty(versions.Max()).Max();
    }

    /// <summary>Chooses the version of a job submitted by name (judging the canary first).</summary>
    public static async Task<ReleaseChoice> ChooseAsync(IOrdoStore store, ReleaseDefinition release, IReadOnlyCollection<int> versions, JobId jobId, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(release);
        var stable = StableVersion(release, versions);
        var version = stable;
        var canary = false;
        if (release.Canary is { } c && versions.Contains(c.Version)
            && await JudgeCanaryAsync(store, release, stable, time, cancellationToken).ConfigureAwait(false) is { } state
            && Position(jobId, "canary") < state.EffectiveShare)
        {
            version = c.Version;
            canary = true;
        }

        int? shadow = release.Shadow is { } s && versions.Contains(s.Version) && s.Version != version && Position(jobId, "shadow") < s.Share ? s.Version : null;
        return new ReleaseChoice(version, canary, shadow);
    }

    /// <summary>Judges a release's canary: its figures, and a rollback when a bound is passed after <c>min_jobs</c>; null without a canary.</summary>
    public static async Task<CanaryState?> JudgeCanaryAsync(IOrdoStore store, ReleaseDefinition release, int stableVersion, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(release);
        ArgumentNullException.ThrowIfNull(time);
        if (release.Canary is not { } canary) return null;

        // Every figure is of ended jobs, the canary's and the stable version's alike: a job still queued or running has
        // no outcome yet, and only part of its cost and rejections, so counting it would move the rates and the cost
        // ratio with the queue instead of with what the version does. Only the count of jobs includes the others.
        var all = await store.ReadStatsAsync(new StatsQuery { Since = DateTimeOffset.UnixEpoch, Workflow = release.Workflow, Version = canary.Version }, cancellationToken).ConfigureAwait(false);
        var ended = StatsReport.From(DateTimeOffset.UnixEpoch,
            await store.ReadStatsAsync(new StatsQuery { Since = DateTimeOffset.UnixEpoch, Workflow = release.Workflow, EndedOnly = true }, cancellationToken).ConfigureAwait(false));
        var mine = ended.Workflows.FirstOrDefault(v => v.Version == canary.Version);
        var stable = ended.Workflows.FirstOrDefault(v => v.Version == stableVersion);
        var jobs = all.Versions.Where(v => v.Version == canary.Version).Sum(v => v.Jobs);
        var finished = mine?.Jobs ?? 0;
        double? failureRate = finished == 0 ? null : mine!.FailureRate;
        double? rejectionRate = finished == 0 ? null : mine!.GateRejectionRate;
        double? costRatio = mine is { Jobs: > 0 } && stable is { Jobs: > 0 } && stable.Cost > 0
            ? (double)(mine.Cost / mine.Jobs) / (double)(stable.Cost / stable.Jobs)
            : null;

        var records = await store.ListReleaseRecordsAsync(release.Workflow, cancellationToken).ConfigureAwait(false);
        var rolled = records.FirstOrDefault(r => r.Kind == ReleaseRecordKinds.RolledBack && r.Version == canary.Version);
        if (rolled is null && finished >= canary.MinJobs && Passed(canary, failureRate, rejectionRate, costRatio) is { } reason)
        {
            var figures = JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["jobs"] = jobs, ["finished"] = finished, ["failure_rate"] = failureRate, ["gate_rejection_rate"] = rejectionRate,
                ["cost_per_job_ratio"] = costRatio, ["stable"] = stableVersion,
            });
            await store.AddReleaseRecordAsync(new ReleaseRecord(release.Workflow, ReleaseRecordKinds.RolledBack, canary.Version, time.GetUtcNow(), reason, figures), cancellationToken).ConfigureAwait(false);
            // Another process may have judged at the same moment: the first record is the one kept.
            rolled = (await store.ListReleaseRecordsAsync(release.Workflow, cancellationToken).ConfigureAwait(false))
                .First(r => r.Kind == ReleaseRecordKinds.RolledBack && r.Version == canary.Version);
        }

        return new CanaryState(canary.Version, canary.Share, jobs, finished, failureRate, rejectionRate, costRatio, rolled is not null, rolled?.At, rolled?.Reason);
    }

    /// <summary>The first bound passed, as a sentence; null when none is.</summary>
    private static string? Passed(CanaryDefinition canary, double? failureRate, double? rejectionRate, double? costRatio)
    {
        if (canary.MaxFailureRate is { } f && failureRate > f) return $"failure_rate {Format(failureRate!.Value)} is over its bound {Format(f)}";
        if (canary.MaxGateRejectionRate is { } g && rejectionRate > g) return $"gate_rejection_rate {Format(rejectionRate!.Value)} is over its bound {Format(g)}";
        if (canary.MaxCostPerJobRatio is { } c && costRatio > c) return $"cost_per_job {Format(costRatio!.Value)} times the stable version's is over its bound {Format(c)}";
        return null;
    }

    private static string Format(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);
}

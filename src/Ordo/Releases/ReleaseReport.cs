using System.Text.Json;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Releases;

/// <summary>The state of a workflow's release, as <c>ordo releases</c> shows it: stable version, canary, shadow comparison.</summary>
/// <param name="Workflow">The workflow name.</param>
/// <param name="Stable">The stable version.</param>
/// <param name="Canary">The canary as judged; null without one.</param>
/// <param name="Shadow">The shadow comparison; null without a shadow.</param>
public sealed record ReleaseReport(string Workflow, int Stable, CanaryState? Canary, ShadowComparison? Shadow)
{
    /// <summary>Judges the canary (recording a rollback when a bound is passed) and compares each shadow job with its production job.</summary>
    /// <param name="store">The store.</param>
    /// <param name="release">The release.</param>
    /// <param name="versions">The versions of the workflow found.</param>
    /// <param name="stateOf">Reads a job's state.</param>
    /// <param name="time">The clock.</param>
    /// <param name="cancellationToken">Cancels it.</param>
    public static async Task<ReleaseReport> BuildAsync(IOrdoStore store, ReleaseDefinition release, IReadOnlyCollection<int> versions,
        Func<JobId, Task<JobState?>> stateOf, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(release);
        ArgumentNullException.ThrowIfNull(stateOf);
        var stable = ReleaseRouter.StableVersion(release, versions);
        var canary = await ReleaseRouter.JudgeCanaryAsync(store, release, stable, time, cancellationToken).ConfigureAwait(false);
        ShadowComparison? shadow = null;
        if (release.Shadow is { } s)
        {
            var jobs = await store.ListJobsAsync(new JobQuery { Workflow = release.Workflow, WorkflowVersion = s.Version, Limit = 10_000 }, cancellationToken).ConfigureAwait(false);
            var differences = new List<ShadowDifference>();
            var compared = 0;
            var sameOutcome = 0;
            var sameArtifacts = 0;
            var identical = 0;
            foreach (var job in jobs.Where(j => j.ParentJobId is null).OrderBy(j => j.CreatedAt))
            {
                var shadowState = await stateOf(job.JobId).ConfigureAwait(false);
                if (shadowState?.ShadowOf is not { } of || !shadowState.Status.IsTerminal()) continue;
                var production = await stateOf(new JobId(of)).ConfigureAwait(false);
                if (production is null || !(production.Status.IsTerminal() || production.Status == JobStatus.WaitingApproval)) continue;
                compared++;
                var artifacts = production.Artifacts.Keys.Union(shadowState.Artifacts.Keys, StringComparer.Ordinal)
                    .Where(name => !SameArtifact(production.Artifacts.GetValueOrDefault(name), shadowState.Artifacts.GetValueOrDefault(name)))
                    .Order(StringComparer.Ordinal).ToList();
                var outcome = (production.Status.ToWire(), shadowState.Status.ToWire());
                if (outcome.Item1 == outcome.Item2) sameOutcome++;
                if (artifacts.Count == 0) sameArtifacts++;
                if (outcome.Item1 == outcome.Item2 && artifacts.Count == 0)
                {
                    identical++;
                    continue;
                }

                differences.Add(new ShadowDifference(production.JobId.Value, shadowState.JobId.Value, outcome.Item1, outcome.Item2, artifacts));
            }

            shadow = new ShadowComparison(s.Version, s.Share, compared, sameOutcome, sameArtifacts, identical, differences);
        }

        return new ReleaseReport(release.Workflow, stable, canary, shadow);
    }

    /// <summary>Whether two jobs ended with the same artifact: both absent, or the same status and value of the latest version.</summary>
    private static bool SameArtifact(ArtifactState? a, ArtifactState? b)
        => a is null || b is null
            ? a is null && b is null
            : a.Latest.Status == b.Latest.Status && JsonElement.DeepEquals(a.Latest.Value, b.Latest.Value);

    /// <summary>Writes the report in the shape of <c>ordo releases --json</c>.</summary>
    public void Write(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("workflow", Workflow);
        w.WriteNumber("stable", Stable);
        w.WritePropertyName("canary");
        if (Canary is { } c)
        {
            w.WriteStartObject();
            w.WriteNumber("version", c.Version);
            w.WriteNumber("share", c.EffectiveShare);
            w.WriteNumber("configured_share", c.Share);
            w.WriteNumber("jobs", c.Jobs);
            w.WriteNumber("finished", c.Finished);
            Number(w, "failure_rate", c.FailureRate);
            Number(w, "gate_rejection_rate", c.GateRejectionRate);
            Number(w, "cost_per_job_ratio", c.CostPerJobRatio);
            w.WriteString("status", c.Status);
            if (c.RolledBackAt is { } at) w.WriteString("rolled_back_at", at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            else w.WriteNull("rolled_back_at");
            if (c.Reason is { } reason) w.WriteString("reason", reason); else w.WriteNull("reason");
            w.WriteEndObject();
        }
        else
        {
            w.WriteNullValue();
        }

        w.WritePropertyName("shadow");
        if (Shadow is { } s)
        {
            w.WriteStartObject();
            w.WriteNumber("version", s.Version);
            w.WriteNumber("share", s.Share);
            w.WriteNumber("compared", s.Compared);
            w.WriteNumber("same_outcome", s.SameOutcome);
            w.WriteNumber("same_artifacts", s.SameArtifacts);
            w.WriteNumber("identical", s.Identical);
            w.WriteStartArray("differences");
            foreach (var d in s.Differences)
            {
                w.WriteStartObject();
                w.WriteString("job_id", d.JobId);
                w.WriteString("shadow_job_id", d.ShadowJobId);
                w.WriteStartArray("outcome");
                w.WriteStringValue(d.Outcome);
                w.WriteStringValue(d.ShadowOutcome);
                w.WriteEndArray();
                w.WriteStartArray("artifacts");
                foreach (var a in d.Artifacts) w.WriteStringValue(a);
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNullValue();
        }

        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v) w.WriteNumber(name, Math.Round(v, 4));
        else w.WriteNull(name);
    }
}

/// <summary>Shadow jobs compared with their production jobs.</summary>
/// <param name="Version">The shadow version.</param>
/// <param name="Share">Its share.</param>
/// <param name="Compared">Pairs whose shadow job ended (and whose production job ended or waits for an approval).</param>
/// <param name="SameOutcome">Of those, pairs whose two jobs ended with the same status (outcome), whatever their artifacts.</param>
/// <param name="SameArtifacts">Of those, pairs whose two jobs ended with the same artifacts (each the same status and value), whatever their outcome.</param>
/// <param name="Identical">Of those, pairs with both the same outcome and the same artifacts.</param>
/// <param name="Differences">The other pairs: every pair that is not identical, with what differs.</param>
public sealed record ShadowComparison(int Version, double Share, int Compared, int SameOutcome, int SameArtifacts, int Identical, IReadOnlyList<ShadowDifference> Differences);

/// <summary>A production job and its shadow that ended differently.</summary>
/// <param name="JobId">The production job.</param>
/// <param name="ShadowJobId">The shadow job.</param>
/// <param name="Outcome">The production job's status.</param>
/// <param name="ShadowOutcome">The shadow job's status.</param>
/// <param name="Artifacts">The artifacts whose latest value or status differ (or that only one of them has).</param>
public sealed record ShadowDifference(string JobId, string ShadowJobId, string Outcome, string ShadowOutcome, IReadOnlyList<string> Artifacts);

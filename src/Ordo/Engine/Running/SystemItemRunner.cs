using System.Text.Json.Nodes;
using Ordo.Engine.Commits;
using Ordo.Engine.Jobs;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine.Running;

/// <summary>
/// Runs the queue's system items: an approval's expiry, a child job's end (its parent records the branch's end and
/// applies its join), and a parent's request that a child stop. A job whose definition this process cannot load is
/// failed with the reason instead of having its item handed back to fail again at once.
/// </summary>
internal sealed class SystemItemRunner(EngineContext ctx, JobCommits commits, JobClient jobs, Approvals approvals)
{
    public async Task RunAsync(WorkItem item)
    {
        try
        {
            switch (item.Step.StepId)
            {
                case SystemItems.ChildEnded:
                    await ChildEndedAsync(item).ConfigureAwait(false);
                    return;
                case SystemItems.CancelRequested:
                    await CancelRequestedAsync(item).ConfigureAwait(false);
                    return;
                case SystemItems.ApprovalExpiry:
                    await approvals.ExpireAsync(item).ConfigureAwait(false);
                    return;
                default:
                    if (await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) is { } state)
                    {
                        await commits.DiscardAsync(item, state).ConfigureAwait(false);
                    }

                    return;
            }
        }
        catch (Exception e) when (e is DefinitionUnavailableException or Audit.DefinitionChangedException)
        {
            if (await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) is { } current && !current.Status.IsTerminal())
            {
                var code = e is Audit.DefinitionChangedException ? "definition_changed" : "definition_unavailable";
                await commits.FailAsync(item, current, StepOutcome.Failure(code, e.Message, retryable: false)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A child job ended: its parent records the branch's end (the child's verified artifacts are its result) and applies its join.</summary>
    private Task ChildEndedAsync(WorkItem item)
        => commits.RetryAsync($"ending a branch of job {item.JobId}", async _ =>
        {
            var state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
            if (state is null) return (true, 0);
            var scope = item.Step.Scope ?? "";
            var (ownerKey, label) = Events.WorkKeys.SplitScope(scope);
            if (state.Status.IsTerminal() || !state.Patterns.TryGetValue(ownerKey, out var pattern) || pattern.Ended
                || !pattern.Branches.TryGetValue(label, out var branch) || branch.Status != "running" || branch.ChildJobId is null)
            {
                await commits.DiscardAsync(item, state).ConfigureAwait(false);
                return (true, 0);
            }

            var child = await ctx.States.LoadAsync(new JobId(branch.ChildJobId), CancellationToken.None).ConfigureAwait(false);
            if (child is null || !child.Status.IsTerminal())
            {
                await commits.DiscardAsync(item, state).ConfigureAwait(false);
                return (true, 0);
            }

            var workflow = await ctx.DefinitionAsync(state, CancellationToken.None).ConfigureAwait(false);
            var output = new JsonObject();
            foreach (var artifact in child.Artifacts.Values.Where(a => a.Verified is not null).OrderBy(a => a.Name, StringComparer.Ordinal))
            {
                output[artifact.Name] = JsonNode.Parse(artifact.Verified!.Value.GetRawText());
            }

            var status = child.Status == JobStatus.Completed ? "succeeded" : "failed";
            var reason = status == "failed" ? $"child job {child.JobId} ({child.Workflow}@{child.Version}) {child.Status.ToWire()}: {child.Reason}" : null;
            var plan = new PlannedCommit();
            await ctx.Planner.EndBranchAsync(plan, state, workflow, scope, status, status == "succeeded" ? JsonElementFactory.FromNode(output) : null, reason, item.Priority, ctx.Time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            var (result, _, _) = await commits.CommitAsync(state, plan, item.Lease, CancellationToken.None).ConfigureAwait(false);
            return (result.Outcome != CommitOutcome.Conflict, 0);
        }, CancellationToken.None);

    /// <summary>The parent no longer needs this child (its branch was cancelled, or the parent was): the child is cancelled.</summary>
    private async Task CancelRequestedAsync(WorkItem item)
    {
        var state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
        if (state is null) return;
        if (!state.Status.IsTerminal())
        {
            await jobs.CancelAsync(item.JobId, $"parent job {item.Step.Scope} no longer needs it", "system", CancellationToken.None).ConfigureAwait(false);
            state = await ctx.States.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
        }

        await commits.DiscardAsync(item, state).ConfigureAwait(false);
    }
}

using System.Text.Json.Nodes;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Engine;

public sealed partial class OrdoRuntime
{
    /// <summary>
    /// When a child job ends, the commit that ends it also puts a <c>$child-ended</c> item on its parent's queue (in the
    /// same transaction): the parent can never miss its child's end, even if a process dies in between.
    /// </summary>
    private static IReadOnlyList<OtherJobWork> WithParentNotice(IReadOnlyList<OtherJobWork> others, JobState post)
    {
        if (!post.Status.IsTerminal() || post.ParentJobId is null || post.ParentBranch is null)
        {
            return others;
        }

        var notice = new OtherJobWork(new JobId(post.ParentJobId), new NewWorkItem
        {
            Step = new StepRef(SystemItems.ChildEnded, 1, 1, post.ParentBranch),
            AvailableAt = post.UpdatedAt,
        });
        return [.. others, notice];
    }

    /// <summary>Stop requests for the running child jobs of a job that is being cancelled.</summary>
    private static List<OtherJobWork> ChildStops(JobState state)
        => [.. state.Patterns.Values
            .SelectMany(p => p.Branches.Values)
            .Where(b => b.Status == "running" && b.ChildJobId is not null)
            .Select(b => CommitPlanner.CancelRequest(b.ChildJobId!, state.JobId, state.UpdatedAt))];

    /// <summary>A child job ended: its parent records the branch's end (the child's verified artifacts are its result) and applies its join.</summary>
    private async Task RunChildEndedAsync(WorkItem item)
    {
        for (var i = 0; i < MaxCommitRetries; i++)
        {
            var state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
            if (state is null) return;
            var scope = item.Step.Scope ?? "";
            var (ownerKey, label) = WorkKeys.SplitScope(scope);
            if (state.Status.IsTerminal() || !state.Patterns.TryGetValue(ownerKey, out var pattern) || pattern.Ended
                || !pattern.Branches.TryGetValue(label, out var branch) || branch.Status != "running" || branch.ChildJobId is null)
            {
                await DiscardAsync(item, state).ConfigureAwait(false);
                return;
            }

            var child = await _states.LoadAsync(new JobId(branch.ChildJobId), CancellationToken.None).ConfigureAwait(false);
            if (child is null || !child.Status.IsTerminal())
            {
                await DiscardAsync(item, state).ConfigureAwait(false);
                return;
            }

            var workflow = await _components.Workflows.GetAsync(_store, state.DefinitionHash, LoadOptions, CancellationToken.None).ConfigureAwait(false);
            var output = new JsonObject();
            foreach (var artifact in child.Artifacts.Values.Where(a => a.Verified is not null).OrderBy(a => a.Name, StringComparer.Ordinal))
            {
                output[artifact.Name] = JsonNode.Parse(artifact.Verified!.Value.GetRawText());
            }

            var status = child.Status == JobStatus.Completed ? "succeeded" : "failed";
            var reason = status == "failed" ? $"child job {child.JobId} ({child.Workflow}@{child.Version}) {child.Status.ToWire()}: {child.Reason}" : null;
            var plan = new PlannedCommit();
            await Planner.EndBranchAsync(plan, state, workflow, scope, status, status == "succeeded" ? JsonElementFactory.FromNode(output) : null, reason, item.Priority, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            var events = EventChain.Seal(state.JobId, state.Seq, state.HeadHash, plan.Events);
            var post = JobStateReducer.Apply(state, events);
            var result = await _store.CommitAsync(new JobCommit
            {
                JobId = state.JobId, ExpectedSeq = state.Seq, ExpectedHeadHash = state.HeadHash, Events = events, Ack = item.Lease,
                Enqueue = plan.Enqueue, DropPendingWork = plan.DropPendingWork, DropScopes = plan.DropScopes, StartJobs = plan.StartJobs,
                NotifyJobs = WithParentNotice(plan.NotifyJobs, post), Status = post.Status, Reason = post.Reason,
            }, CancellationToken.None).ConfigureAwait(false);
            if (result.Outcome == CommitOutcome.Committed)
            {
                _states.Remember(post);
                Notify(post, events);
                _workAvailable.Set();
                return;
            }

            if (result.Outcome != CommitOutcome.Conflict) return;
        }
    }

    /// <summary>The parent no longer needs this child (its branch was cancelled, or the parent was): the child is cancelled.</summary>
    private async Task RunCancelRequestedAsync(WorkItem item)
    {
        var state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false);
        if (state is null) return;
        if (!state.Status.IsTerminal())
        {
            await CancelAsync(item.JobId, $"parent job {item.Step.Scope} no longer needs it", "system", CancellationToken.None).ConfigureAwait(false);
            state = await _states.LoadAsync(item.JobId, CancellationToken.None).ConfigureAwait(false) ?? state;
        }

        await DiscardAsync(item, state).ConfigureAwait(false);
    }
}

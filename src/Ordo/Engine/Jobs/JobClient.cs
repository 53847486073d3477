using System.Text.Json;
using Ordo.Engine.Commits;
using Ordo.Events;
using Ordo.Queue;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Engine.Jobs;

/// <summary>
/// What callers do to jobs: submit one (its first events, its entry work item, its policies' initial kill switches and
/// its tenant's quota check in one transaction), cancel one, wait for one to settle, read its state. Decisions on
/// approvals are in <see cref="Approvals"/>.
/// </summary>
internal sealed class JobClient(EngineContext ctx, JobCommits commits, KillSwitches.KillSwitchCache killSwitches)
{
    /// <summary>Validates the input and creates a job.</summary>
    public async Task<JobRecord> SubmitAsync(WorkflowDefinition workflow, JsonElement? input, SubmitOptions options, CancellationToken cancellationToken)
    {
        var value = input ?? JsonElementFactory.EmptyObject;
        if (workflow.InputSchema is { } schema && schema.Validate(value) is { Count: > 0 } errors)
        {
            throw new OrdoValidationException(errors.Select(e => new ValidationProblem(options.InputName, 0, 0, e.Split(':')[0], $"does not match the input schema of {workflow.Ref}: {e[(e.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()}")).ToList());
        }

        if (OrdoRuntime.UnsupportedSteps(workflow, ctx.Handlers.Kinds) is { Count: > 0 } unsupported)
        {
            throw new OrdoValidationException(unsupported);
        }

        if (string.IsNullOrEmpty(workflow.Hash) || workflow.Bundle is null)
        {
            throw new ArgumentException("The definition has no stored form: build it with WorkflowBuilder or load it with WorkflowLoader.", nameof(workflow));
        }

        Register(workflow);
        var submitter = Identities.Normalize(options.Submitter);
        var now = ctx.Time.GetUtcNow();
        var jobId = options.JobId ?? JobId.New(now);
        // The job span is the root of the job's spans; it is a child of the caller's span (a request to a server),
        // whose trace the job then joins. The trace id and that span's id are stored with the job: its steps' spans,
        // in whichever process runs them and however much later, name it as their parent.
        using var span = Telemetry.OrdoSpans.StartJob(jobId, workflow.Name, workflow.Version, options.Tenant);
        var traceId = span?.TraceId.ToHexString()
            ?? (System.Diagnostics.Activity.Current is { } caller ? caller.TraceId.ToHexString() : Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()));
        var entry = new StepRef(workflow.Entry.Id, 1, 1);

        // When this process runs workers and one is free, the entry step is created leased to it and handed over
        // directly: no claim transaction, no dispatcher round trip. Otherwise it waits in the queue like any item.
        var local = Volatile.Read(ref ctx.LocalRun);
        var leaseHere = local is not null && local.TryPromiseWorker();
        try
        {
            List<NewEvent> first =
            [
                EventFactory.Job(EventTypes.JobSubmitted, new JobSubmittedPayload(workflow.Name, workflow.Version, workflow.Hash, options.Tenant, submitter, value, workflow.ConstraintsJson, null, null, traceId, options.Priority)
                {
                    DryRun = options.DryRun || options.ShadowOf is not null ? true : null,
                    ShadowOf = options.ShadowOf?.Value,
                    SpanId = span?.SpanId.ToHexString(),
                }, now),
                EventFactory.Step(EventTypes.StepScheduled, entry, new StepScheduledPayload(workflow.Entry.Kind, "entry", null, null), now),
            ];
            if (leaseHere)
            {
                first.Add(StoreEvents.StepStarted(entry, ctx.Worker, 1, now));
            }

            foreach (var e in first) Telemetry.OrdoSpans.Stamp(e, span);
            var events = EventChain.Seal(jobId, 0, EventChain.GenesisHash, first);
            var initial = JobStateReducer.Apply(JobStateReducer.Start(events[0]), events.Skip(1));
            var seeds = workflow.Project.Policies.Where(p => p.KillSwitches.Count > 0)
                .Select(p => new KillSwitchSeed(p.Ref, [.. p.KillSwitches.Select(t => new KillSwitches.KillSwitch(t, $"initial switch of policy {p.Ref}", p.Ref, now))]))
                .ToList();
            var record = await ctx.Store.SubmitAsync(new NewJob
            {
                JobId = jobId,
                Workflow = workflow.Name,
                Version = workflow.Version,
                Tenant = options.Tenant,
                Submitter = submitter,
                Definition = workflow.StoredDefinition,
                TraceId = traceId,
                Priority = options.Priority,
                CreatedAt = now,
                Events = events,
                Status = initial.Status,
                WorkItems = [leaseHere
                    ? new NewWorkItem { Step = entry, AvailableAt = now, Priority = options.Priority, LeaseOwner = ctx.Worker, LeaseExpiresAt = now + ctx.Options.LeaseDuration }
                    : new NewWorkItem { Step = entry, AvailableAt = now, Priority = options.Priority }],
                // A shadow job is no production work of the tenant: its quotas do not count it, now or while it is queued or running.
                Shadow = options.ShadowOf is not null,
                Quota = options.ShadowOf is null && workflow.Project.Tenants.TryGetValue(options.Tenant, out var tenant) && (tenant.ConcurrentJobs is not null || tenant.JobsPerMinute is not null)
                    ? new TenantQuota(tenant.ConcurrentJobs, tenant.JobsPerMinute)
                    : null,
                KillSwitchSeeds = seeds,
            }, cancellationToken).ConfigureAwait(false);
            if (seeds.Count > 0)
            {
                killSwitches.Invalidate();
            }

            Telemetry.OrdoMetrics.Committed(initial, events);
            ctx.Published(initial, events, wake: false);
            if (local is not null && record.LeasedItems.Count > 0)
            {
                await local.HandOverAsync(record.LeasedItems[0], initial).ConfigureAwait(false);
            }
            else
            {
                ctx.WorkAvailable.Set();
            }

            return record;
        }
        finally
        {
            // Handed over by now, or never leased here: from now on the channel counts it, not the promise.
            if (leaseHere) local!.Fulfilled(1);
        }
    }

    /// <summary>Makes a definition and the sub-workflows pinned with it known to this process's workers.</summary>
    private void Register(WorkflowDefinition workflow)
    {
        ctx.Components.Workflows.Register(workflow);
        foreach (var child in workflow.SubWorkflows.Values)
        {
            Register(child);
        }
    }

    /// <summary>
    /// Cancels a job; false when it had already ended. The cancel is planned on the job as it is and written only if the
    /// job has not moved meanwhile. When the job moved on before the first attempt could be written (a chain of steps
    /// committing faster than a cancel is planned, in this or another process), its work items are fenced first
    /// (<see cref="IQueueStore.FenceJobAsync"/>): no step of it commits from then on, and the next attempt finds it still.
    /// </summary>
    public async Task<bool> CancelAsync(JobId jobId, string reason, string by, CancellationToken cancellationToken)
    {
        IReadOnlyList<OtherJobWork> children = [];
        var cancelled = await commits.RetryAsync($"cancelling job {jobId}", async attempt =>
        {
            if (attempt == 1)
            {
                // Held back for a lease's time: if this process stops before the cancel is written, the job goes on then.
                await ctx.Store.FenceJobAsync(jobId, ctx.Time.GetUtcNow() + ctx.Options.LeaseDuration, cancellationToken).ConfigureAwait(false);
            }

            var state = await ctx.States.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
            if (state.Status.IsTerminal())
            {
                return (true, false);
            }

            var plan = new PlannedCommit { DropPendingWork = true };
            plan.Events.Add(EventFactory.Job(EventTypes.JobCancelled, new JobCancelledPayload(reason, by), ctx.Time.GetUtcNow()));
            children = JobCommits.ChildStops(state);
            plan.NotifyJobs.AddRange(children);
            var (result, _, _) = await commits.CommitAsync(state, plan, null, cancellationToken).ConfigureAwait(false);
            return (result.Outcome == CommitOutcome.Committed, true);
        }, cancellationToken).ConfigureAwait(false);

        if (!cancelled) return false;

        // The running children are cancelled now too, not only when a worker is free to take the requests the commit
        // queued for them (each such request then finds its child ended, and is dropped).
        foreach (var child in children)
        {
            try
            {
                await CancelAsync(child.JobId, $"parent job {jobId} no longer needs it", "system", cancellationToken).ConfigureAwait(false);
            }
            catch (OrdoException e)
            {
                RuntimeLog.ChildCancelDeferred(ctx.Logger, e, child.JobId, jobId);
            }
        }

        return true;
    }

    /// <summary>Waits until a job ends or pauses for a human. Work done by other processes is noticed by polling.</summary>
    public async Task<JobState> WaitAsync(JobId jobId, CancellationToken cancellationToken)
    {
        var (settled, unregister) = ctx.Watch(jobId);
        try
        {
            // A job this process is running is known without a read; the store is read when it is not, and on every
            // poll after that (other processes may be running it).
            var cached = ctx.States.Cached(jobId);
            while (true)
            {
                var state = cached ?? await ctx.States.LoadAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw new OrdoException($"job {jobId} does not exist");
                cached = null;
                if (EngineContext.IsSettled(state))
                {
                    return state;
                }

                await ctx.WorkAvailable.WaitAsync(settled, ctx.Options.PollInterval * 4, cancellationToken).ConfigureAwait(false);
                if (settled.IsCompletedSuccessfully)
                {
                    return await settled.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            unregister();
        }
    }
}

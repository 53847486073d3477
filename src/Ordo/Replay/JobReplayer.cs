using Ordo.Engine;
using Ordo.Events;
using Ordo.State;
using Ordo.Workflows;

namespace Ordo.Replay;

/// <summary>
/// Re-runs a recorded job on the same engine that ran it, with every model and tool answer taken from the recording
/// (decorators in place of the providers and the tool executors: nothing is called), against the definition it was
/// recorded with or a new one, and reports the first divergence. Approvals decided in the recording are decided again,
/// by the same people, when the replay reaches them. The replay runs one step at a time, in a store of its own.
/// </summary>
public static class JobReplayer
{
    /// <summary>Replays a recorded job.</summary>
    /// <exception cref="DefinitionUnavailableException">The recorded definition needs something this process lacks (a code agent, a plugin).</exception>
    /// <exception cref="OrdoRefusedException">
    /// The recorded definition no longer has the hash its job recorded (<c>definition_changed</c>): it was changed after the
    /// job ran; or <see cref="ReplayOptions.Workflow"/> is another workflow than the job's (another name).
    /// </exception>
    public static async Task<ReplayReport> ReplayAsync(JobRecording recording, ReplayOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recording);
        ArgumentNullException.ThrowIfNull(options);
        var root = recording.Root;
        if (options.Workflow is { } other && other.Name != root.Job.Workflow)
        {
            throw new OrdoRefusedException($"job {root.Job.JobId} is a job of workflow '{root.Job.Workflow}' and cannot be replayed against workflow '{other.Name}' ({other.Ref}): a job is replayed against a version of its own workflow");
        }

        var submitted = root.Submitted;
        var source = new ReplaySource(recording);
        var store = options.Store;
        await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        source.Attach(store);
        var time = options.TimeProvider;
        var components = new OrdoComponents
        {
            Code = options.Code,
            Models = evaluator => new RecordedModelClientFactory(evaluator, source, time),
            ToolExecutors = { new RecordedToolExecutor("sql", source), new RecordedToolExecutor("http", source), new RecordedToolExecutor("mcp", source), new RecordedToolExecutor("code", source) },
#pragma warning disable RS0030 // The replay's http agents talk to the recording, never to the network.
            Http = new HttpClient(new RecordedHttpAgentHandler(source), disposeHandler: true),
#pragma warning restore RS0030
        };
        var runtimeOptions = new OrdoRuntimeOptions { Workers = 1, TimeProvider = time, Random = new Random(0) };
        var runtime = new OrdoRuntime(store, runtimeOptions, components);
        try
        {
            var workflow = options.Workflow ?? await RecordedDefinitionAsync(recording, root, runtime, cancellationToken).ConfigureAwait(false);
            try
            {
                await runtime.SubmitAsync(workflow, submitted.Input, new SubmitOptions
                {
                    Tenant = submitted.Tenant, Submitter = submitted.Submitter, Priority = submitted.Priority,
                    JobId = root.Job.JobId, DryRun = submitted.DryRun == true, InputName = "the recorded input",
                    // A shadow job runs as one again: its JobSubmitted names the production job, and it ends where it would ask for approval.
                    ShadowOf = submitted.ShadowOf is { } production ? new JobId(production) : null,
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (OrdoValidationException e)
            {
                // The new definition refuses the recorded input: the replay diverges at the job's start.
                return new ReplayReport(root.Job.JobId.Value, workflow.Ref, 0,
                    new ReplayDivergence("(job)", 0, "status", $"{EventTypes.JobSubmitted} {root.Job.WorkflowRef}", $"input refused by {workflow.Ref}: {e.Message}"))
                {
                    RecordingEnded = ReplayComparer.Ended(root), RecordedStatus = root.Job.Status.ToWire(), RecordedEvents = root.Tree().Sum(j => j.Events.Count),
                };
            }

            var decided = new HashSet<(JobId, long)>();
            while (true)
            {
                await runtime.RunAsync(new RunRequest { RootJobId = root.Job.JobId, UntilIdle = true, Workers = 1 }, cancellationToken).ConfigureAwait(false);
                if (!await DecideAsRecordedAsync(runtime, source, decided, cancellationToken).ConfigureAwait(false)) break;
            }

            var replayed = await JobRecording.ReadAsync(store, root.Job.JobId, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"the replayed job {root.Job.JobId} is not in the replay's store");
            var ended = ReplayComparer.Ended(root);
            var cancelled = ReplayComparer.Cancellation(root) is not null;
            var steps = ReplayComparer.EndedAttempts(replayed.Root);
            return new ReplayReport(root.Job.JobId.Value, workflow.Ref, ended && !cancelled ? steps : Math.Min(steps, ReplayComparer.EndedAttempts(root)), ReplayComparer.FirstDivergence(root, replayed.Root))
            {
                UpToCancellation = cancelled,
                AnswersServed = source.Served,
                Misses = [.. source.Misses],
                RecordingEnded = ended,
                RecordedStatus = root.Job.Status.ToWire(),
                RecordedEvents = root.Tree().Sum(j => j.Events.Count),
            };
        }
        finally
        {
            await runtime.DisposeAsync().ConfigureAwait(false);
            components.Http.Dispose();
        }
    }

    private static async Task<WorkflowDefinition> RecordedDefinitionAsync(JobRecording recording, RecordedJob root, OrdoRuntime runtime, CancellationToken cancellationToken)
    {
        var record = recording.Definitions.TryGetValue(root.Job.DefinitionHash, out var d)
            ? d
            : throw new OrdoException($"the definition {root.Job.DefinitionHash} of job {root.Job.JobId} is not in the recording");
        // The hash the job recorded is what its chain covers: a definition changed since (in the database, in an export
        // file) is not the one the job ran on, and a replay against it would report its changes as the job's divergence.
        if (Audit.DefinitionIntegrity.Problem(record, root.Job.DefinitionHash, recording.File is { } file ? $"in the export file {file}" : "in the database") is { } changed)
        {
            throw new OrdoRefusedException($"job {root.Job.JobId} cannot be replayed against its recorded definition: definition_changed: {changed} (replay it against a workflow file instead: ordo replay --workflow FILE, ReplayOptions.Workflow)");
        }

        var bundle = DefinitionBundle.FromBytes(record.Content);
        if (bundle.CodeDefined is not null)
        {
            throw new OrdoException($"workflow {record.Workflow}@{record.Version} is built in code; replay it with its definition (ReplayOptions.Workflow)");
        }

        try
        {
            return await WorkflowLoader.LoadBundleAsync(bundle, runtime.LoadOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (OrdoException e) when (e is not DefinitionUnavailableException)
        {
            throw new DefinitionUnavailableException(record.Workflow, record.Version, e);
        }
    }

    /// <summary>
    /// Decides the replay's pending approvals as the recording decided them (same approver, decision and reason, in the
    /// same order); true when a decision was recorded, so the replay goes on.
    /// </summary>
    private static async Task<bool> DecideAsRecordedAsync(OrdoRuntime runtime, ReplaySource source, HashSet<(JobId, long)> decided, CancellationToken cancellationToken)
    {
        var any = false;
        var jobs = await runtime.Store.ListJobsAsync(new Storage.JobQuery { Limit = 100_000 }, cancellationToken).ConfigureAwait(false);
        foreach (var job in jobs)
        {
            var state = await runtime.GetStateAsync(job.JobId, cancellationToken).ConfigureAwait(false);
            if (state is null || state.Status.IsTerminal()) continue;
            if (await source.RecordedJobAsync(job.JobId, cancellationToken).ConfigureAwait(false) is not { } recordedId) continue;
            var recorded = source.Recording.Root.Tree().First(j => j.Job.JobId == recordedId);
            foreach (var approval in state.Approvals.Values.Where(a => a.IsPending))
            {
                foreach (var e in recorded.Events.Where(e => e.Type == EventTypes.ApprovalDecided))
                {
                    var decision = e.GetPayload<ApprovalDecidedPayload>();
                    if (decision.ApprovalId != approval.Id || decision.Decision is not ("approve" or "deny") || !decided.Add((recordedId, e.Seq))) continue;
                    try
                    {
                        await runtime.DecideAsync(job.JobId, approval.Id, decision.By, decision.Decision == "approve", decision.Reason, cancellationToken).ConfigureAwait(false);
                        any = true;
                    }
                    catch (ApprovalException)
                    {
                        // Refused now where it was accepted then (another role set, a changed rule): the events show where.
                    }
                }
            }
        }

        return any;
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using Ordo.Events;
using Ordo.Storage;

namespace Ordo.Replay;

/// <summary>
/// The recorded answers of a job tree, found by the job and the call id a replay asks with: each model call's answer or
/// failure, each tool call's result or failure. A replayed child job (a sub-workflow) has a new id; it is matched to
/// the recorded child started by the same branch of the matched parent.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class ReplaySource
{
    private readonly Dictionary<JobId, RecordedCalls> _recorded = [];
    private readonly ConcurrentDictionary<JobId, JobId?> _map = new();
    private readonly ConcurrentQueue<string> _misses = new();
    private IJobJournal? _replayStore;
    private int _served;

    public ReplaySource(JobRecording recording)
    {
        Recording = recording;
        foreach (var job in recording.Root.Tree())
        {
            _recorded[job.Job.JobId] = new RecordedCalls(job);
        }

        _map[recording.Root.Job.JobId] = recording.Root.Job.JobId;
    }

    public JobRecording Recording { get; }

    /// <summary>Requests the recording did not hold, in the order they were asked (a replay that matches has none).</summary>
    public IReadOnlyCollection<string> Misses => _misses;

    /// <summary>Answers served from the recording.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>The store the replay writes to, where a replayed child job's parent and branch are read.</summary>
    public void Attach(IJobJournal replayStore) => _replayStore = replayStore;

    public void Miss(string what) => _misses.Enqueue(what);

    public void CountServed() => Interlocked.Increment(ref _served);

    /// <summary>The recorded calls of the recorded job a replayed job stands for; null when it stands for none.</summary>
    public async ValueTask<RecordedCalls?> CallsOfAsync(JobId replayed, CancellationToken cancellationToken)
    {
        var recorded = await RecordedJobAsync(replayed, cancellationToken).ConfigureAwait(false);
        return recorded is { } id && _recorded.TryGetValue(id, out var calls) ? calls : null;
    }

    /// <summary>The recorded job a replayed job stands for.</summary>
    public async ValueTask<JobId?> RecordedJobAsync(JobId replayed, CancellationToken cancellationToken)
    {
        if (_map.TryGetValue(replayed, out var known)) return known;
        JobId? found = null;
        if (_replayStore is { } store && await store.GetJobAsync(replayed, cancellationToken).ConfigureAwait(false) is { ParentJobId: { } parent }
            && await RecordedJobAsync(parent, cancellationToken).ConfigureAwait(false) is { } recordedParent)
        {
            string? scope = null;
            await foreach (var e in store.ReadEventsAsync(parent, 0, cancellationToken).ConfigureAwait(false))
            {
                if (e.Type == EventTypes.BranchStarted && e.GetPayload<BranchStartedPayload>() is { ChildJobId: { } child } started && child == replayed.Value)
                {
                    scope = started.Scope;
                }
            }

            if (scope is not null && _recorded.TryGetValue(recordedParent, out var parentCalls) && parentCalls.ChildOf(scope) is { } recordedChild)
            {
                found = recordedChild;
            }
        }

        _map[replayed] = found;
        return found;
    }

    /// <summary>The recorded model and tool calls of one job, by call id.</summary>
    internal sealed class RecordedCalls
    {
        private readonly Dictionary<string, ModelCallRequestedPayload> _modelRequests = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ModelCallSucceededPayload> _modelAnswers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ModelCallFailedPayload> _modelFailures = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ToolCallRequestedPayload> _toolRequests = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ToolCallSucceededPayload> _toolResults = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ToolCallFailedPayload> _toolFailures = new(StringComparer.Ordinal);
        private readonly Dictionary<string, JobId> _children = new(StringComparer.Ordinal);
        private readonly Dictionary<string, bool> _attemptRetryable = new(StringComparer.Ordinal);

        public RecordedCalls(RecordedJob job)
        {
            JobId = job.Job.JobId;
            foreach (var e in job.Events)
            {
                switch (e.Type)
                {
                    case EventTypes.ModelCallRequested:
                        var request = e.GetPayload<ModelCallRequestedPayload>();
                        _modelRequests[request.CallId] = request;
                        break;
                    case EventTypes.ModelCallSucceeded:
                        var answer = e.GetPayload<ModelCallSucceededPayload>();
                        _modelAnswers[answer.CallId] = answer;
                        break;
                    case EventTypes.ModelCallFailed:
                        var failed = e.GetPayload<ModelCallFailedPayload>();
                        _modelFailures[failed.CallId] = failed;
                        break;
                    case EventTypes.ToolCallRequested:
                        var call = e.GetPayload<ToolCallRequestedPayload>();
                        _toolRequests[call.CallId] = call;
                        break;
                    case EventTypes.ToolCallSucceeded:
                        var ok = e.GetPayload<ToolCallSucceededPayload>();
                        _toolResults[ok.CallId] = ok;
                        break;
                    case EventTypes.ToolCallFailed:
                        var toolFailed = e.GetPayload<ToolCallFailedPayload>();
                        _toolFailures[toolFailed.CallId] = toolFailed;
                        break;
                    case EventTypes.StepFailed when e.StepId is not null:
                        _attemptRetryable[$"{WorkKeys.For(e.Scope, e.StepId, e.Visit ?? 1)}.{e.Attempt ?? 1}"] = e.GetPayload<StepFailedPayload>().Retryable;
                        break;
                    case EventTypes.BranchStarted:
                        var branch = e.GetPayload<BranchStartedPayload>();
                        if (branch.ChildJobId is { } child) _children[branch.Scope] = new JobId(child);
                        break;
                }
            }
        }

        public JobId JobId { get; }

        public JobId? ChildOf(string scope) => _children.TryGetValue(scope, out var child) ? child : null;

        /// <summary>
        /// Whether a recorded model failure was retryable: as the step attempt it failed recorded it, else as its kind says.
        /// </summary>
        public bool Retryable(string callId, string error)
        {
            var cut = callId.LastIndexOf(".m", StringComparison.Ordinal);
            if (cut > 0 && _attemptRetryable.TryGetValue(callId[..cut], out var retryable)) return retryable;
            return Agents.Models.ModelErrors.CountsAgainstProvider(error) || error == Agents.Models.ModelErrors.CircuitOpen;
        }

        public ModelCallRequestedPayload? ModelRequest(string callId) => _modelRequests.GetValueOrDefault(callId);

        public ModelCallSucceededPayload? ModelAnswer(string callId) => _modelAnswers.GetValueOrDefault(callId);

        public ModelCallFailedPayload? ModelFailure(string callId) => _modelFailures.GetValueOrDefault(callId);

        public ToolCallRequestedPayload? ToolRequest(string callId) => _toolRequests.GetValueOrDefault(callId);

        public ToolCallSucceededPayload? ToolResult(string callId) => _toolResults.GetValueOrDefault(callId);

        public ToolCallFailedPayload? ToolFailure(string callId) => _toolFailures.GetValueOrDefault(callId);
    }

    /// <summary>Whether two JSON values are the same value (objects compared by their members, in any order).</summary>
    public static bool SameJson(JsonElement? a, JsonElement? b)
    {
        if (a is null || b is null) return a is null == b is null || (a ?? b)!.Value.ValueKind == JsonValueKind.Null;
        return JsonElement.DeepEquals(a.Value, b.Value);
    }
}

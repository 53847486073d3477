using System.Security.Cryptography;
using Ordo.Events;
using Ordo.State;
using Ordo.Storage;

namespace Ordo.Audit;

/// <summary>
/// Checks a store against its audit log and, when given, a signed checkpoint: recomputes every leaf and the tree over
/// them, proves that the log extends the checkpoint, recomputes each job's hash chain, and compares it, and each stored
/// definition, with what the log and the checkpoint recorded. Every job the log or the checkpoint knows and the store
/// lost, altered or re-sealed is named; jobs added since the checkpoint are accepted when their own log is intact.
/// </summary>
/// <remarks>
/// The checkpoint's signature is not checked here (<see cref="AuditKey.Verifies"/> does): give only a checkpoint that
/// was verified. Memory grows with the number of jobs and of their leaves (a sequence number and a digest each), not of events.
/// </remarks>
public static class AuditChecker
{
    /// <summary>Checks every job of the store.</summary>
    public static async Task<AuditReport> CheckAllAsync(IOrdoStore store, AuditCheckpointFile? checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var logProblems = new List<string>();
        var cpSize = checkpoint?.Checkpoint.TreeSize;
        // A size the store cannot vouch for (its head was altered) is reported, and the leaves are read to the end.
        var recordedSize = await SizeAsync(store, logProblems, cancellationToken).ConfigureAwait(false);
        var size = recordedSize ?? long.MaxValue;

        // Every leaf, hashed again from what it records, and the tree over them: what the stored subtrees and the
        // checkpoint must agree with.
        var logged = new Dictionary<string, LoggedJob>(StringComparer.Ordinal);
        var definitions = new Dictionary<string, (byte[] Digest, long Index)>(StringComparer.Ordinal);
        var frontier = new MerkleFrontier();
        var scratch = new List<MerkleNode>(8);
        byte[]? rootAtCheckpoint = cpSize == 0 ? MerkleHash.Empty() : null;
        var altered = 0;
        var alteredNodes = 0;
        var broken = false;
        long read = 0;
        // The kept subtrees, in the order the pass below completes them: each is compared with the subtree hashed again
        // from the leaves (a proof reads the kept one, so one altered where no root passes would go unseen otherwise).
        await using var kept = store.ReadStoredAuditNodesAsync(size, cancellationToken).GetAsyncEnumerator(cancellationToken);
        var haveKept = await kept.MoveNextAsync().ConfigureAwait(false);
        await foreach (var stored in store.ReadAuditLeavesAsync(0, size, cancellationToken).ConfigureAwait(false))
        {
            if (!broken && stored.Index != frontier.Size)
            {
                // The tree cannot be hashed past a missing leaf; the leaves after it are still read, so that every job
                // they record is compared with them and only the job whose leaf is missing is blamed.
                logProblems.Add($"leaf {frontier.Size} of the audit log is missing (the next stored leaf is {stored.Index}): it was deleted");
                broken = true;
            }

            var hash = stored.Leaf.Hash();
            if (!hash.AsSpan().SequenceEqual(stored.Hash) && altered++ < 10)
            {
                logProblems.Add($"leaf {stored.Index} of the audit log ({Describe(stored.Leaf)}) does not match its stored hash: it was altered");
            }

            if (!broken)
            {
                scratch.Clear();
                frontier.Append(hash, scratch);
                if (frontier.Size == cpSize) rootAtCheckpoint = frontier.Root();
                for (var i = 1; i < scratch.Count; i++)
                {
                    var node = scratch[i];
                    while (haveKept && CompletionOrder(kept.Current.Id, node.Id) < 0) haveKept = await kept.MoveNextAsync().ConfigureAwait(false);
                    if (!haveKept || kept.Current.Id != node.Id) continue;
                    if (!kept.Current.Hash.AsSpan().SequenceEqual(node.Hash) && alteredNodes++ < 10)
                    {
                        logProblems.Add($"the kept subtree of leaves {node.Id.FirstLeaf}..{node.Id.FirstLeaf + node.Id.Leaves - 1} (level {node.Id.Level}) is {Hex(kept.Current.Hash)}, but its leaves hash to {Hex(node.Hash)}: audit_nodes was altered, and proofs that read it fail");
                    }

                    haveKept = await kept.MoveNextAsync().ConfigureAwait(false);
                }
            }

            read = stored.Index + 1;
            var inCheckpoint = stored.Index < cpSize;
            if (stored.Leaf.Kind == AuditLeafKind.Events)
            {
                if (!logged.TryGetValue(stored.Leaf.Subject, out var job)) logged[stored.Leaf.Subject] = job = new LoggedJob();
                job.Add(stored.Leaf, inCheckpoint);
            }
            else
            {
                definitions[stored.Leaf.Subject] = (stored.Leaf.Digest, stored.Index);
            }
        }

        if (recordedSize is null) size = read;
        if (frontier.Size < size && !broken)
        {
            logProblems.Add($"the audit log holds {frontier.Size} leaves where its size is {size}: its newest leaves were deleted (or the recorded size raised)");
            broken = true;
        }

        var head = await CheckTreeAsync(store, checkpoint?.Checkpoint, size, broken ? null : frontier.Root(), rootAtCheckpoint, logProblems, cancellationToken).ConfigureAwait(false);

        var cpJobs = checkpoint?.Jobs.ToDictionary(j => j.JobId.Value, StringComparer.Ordinal) ?? [];
        var definitionCheck = new DefinitionCheck(store, definitions);
        var jobs = (await store.ListJobsAsync(new JobQuery { Limit = int.MaxValue }, cancellationToken).ConfigureAwait(false))
            .OrderBy(j => j.CreatedAt).ThenBy(j => j.JobId.Value, StringComparer.Ordinal).ToList();
        var seen = jobs.Select(j => j.JobId.Value).ToHashSet(StringComparer.Ordinal);

        var tail = new LogTail(store, size);

        // Jobs are independent: checked a few at a time (each reads its own events), reported in order.
        var checkedJobs = new JobAudit[jobs.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, jobs.Count), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(4, Environment.ProcessorCount * 4), CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var job = jobs[i];
            checkedJobs[i] = await CheckSettledAsync(store, job, logged.GetValueOrDefault(job.JobId.Value), cpJobs.GetValueOrDefault(job.JobId.Value), cpSize, tail, definitionCheck, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var reports = new List<JobAudit>(checkedJobs);
        reports.AddRange(Deleted(logged, cpJobs, seen));
        var definitionProblems = await definitionCheck.LoggedDefinitionsAsync(cancellationToken).ConfigureAwait(false);
        return new AuditReport(head, checkpoint?.Checkpoint, logProblems, definitionProblems, reports);
    }

    /// <summary>
    /// Checks one job: its leaves are proved in the checkpoint's tree and in the stored tree with inclusion proofs, and
    /// the log is proved to extend the checkpoint, without reading the other jobs.
    /// </summary>
    public static async Task<AuditReport> CheckJobAsync(IOrdoStore store, JobId jobId, AuditCheckpointFile? checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var logProblems = new List<string>();
        var cp = checkpoint?.Checkpoint;
        var recordedSize = await SizeAsync(store, logProblems, cancellationToken).ConfigureAwait(false);
        var size = recordedSize ?? long.MaxValue;
        AuditTreeHead head;
        try
        {
            // No tree to prove anything in when the store cannot say how large it is.
            head = recordedSize is null
                ? new AuditTreeHead(0, MerkleHash.Empty())
                : await CheckTreeAsync(store, cp, size, null, null, logProblems, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            logProblems.Add(e.Message);
            head = new AuditTreeHead(size, MerkleHash.Empty());
        }

        var job = new LoggedJob();
        var leaves = new List<StoredAuditLeaf>();
        await foreach (var leaf in store.ReadAuditLeavesOfAsync(jobId.Value, cancellationToken).ConfigureAwait(false))
        {
            if (leaf.Leaf.Kind != AuditLeafKind.Events || leaf.Index >= size) continue;
            leaves.Add(leaf);
            job.Add(leaf.Leaf, cp is not null && leaf.Index < cp.TreeSize);
        }

        // The newest leaf before the checkpoint proved in the checkpoint's tree, the newest of all in the stored tree:
        // what the job is compared with below is then what the checkpoint (or the log) committed to.
        if (recordedSize is not null)
        {
            await ProveAsync(store, leaves.LastOrDefault(l => cp is not null && l.Index < cp.TreeSize), cp?.TreeSize ?? 0, cp?.Root, "the checkpoint", logProblems, cancellationToken).ConfigureAwait(false);
            await ProveAsync(store, leaves.LastOrDefault(), head.Size, head.Root, "the stored audit log", logProblems, cancellationToken).ConfigureAwait(false);
        }

        var cpJob = checkpoint?.Jobs.FirstOrDefault(j => j.JobId == jobId);
        var record = await store.GetJobAsync(jobId, cancellationToken).ConfigureAwait(false);
        var definitionCheck = new DefinitionCheck(store, null);
        var report = record is null
            ? Deleted(jobId, leaves.Count > 0 ? job : null, cpJob)
            : await CheckSettledAsync(store, record, leaves.Count > 0 ? job : null, cpJob, cp?.TreeSize, new LogTail(store, size), definitionCheck, cancellationToken).ConfigureAwait(false);
        return new AuditReport(head, cp, logProblems, [], report is null ? [] : [report]);
    }

    /// <summary>The log's size, or null (and the store's reason among <paramref name="problems"/>) when its record of it was altered.</summary>
    private static async Task<long?> SizeAsync(IOrdoStore store, List<string> problems, CancellationToken cancellationToken)
    {
        try
        {
            return await store.GetAuditLogSizeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            problems.Add(e.Message);
            return null;
        }
    }

    /// <summary>Orders subtrees as appending completes them: by the last leaf each covers, then by level.</summary>
    private static int CompletionOrder(MerkleNodeId a, MerkleNodeId b)
    {
        var byEnd = (a.FirstLeaf + a.Leaves).CompareTo(b.FirstLeaf + b.Leaves);
        return byEnd != 0 ? byEnd : a.Level.CompareTo(b.Level);
    }

    /// <summary>Compares the stored subtrees with the recomputed root, and proves that the stored log extends the checkpoint.</summary>
    private static async Task<AuditTreeHead> CheckTreeAsync(
        IOrdoStore store, AuditCheckpoint? cp, long size, byte[]? recomputedRoot, byte[]? recomputedAtCheckpoint, List<string> problems, CancellationToken cancellationToken)
    {
        AuditTreeHead head;
        try
        {
            head = new AuditTreeHead(size, await AuditLog.RootAtAsync(store, size, cancellationToken).ConfigureAwait(false));
        }
        catch (InvalidDataException e)
        {
            problems.Add(e.Message);
            return new AuditTreeHead(size, recomputedRoot ?? MerkleHash.Empty());
        }

        if (recomputedRoot is not null && !recomputedRoot.AsSpan().SequenceEqual(head.Root))
        {
            problems.Add($"the audit log's stored subtrees give root {Hex(head.Root)}, but its leaves hash to {Hex(recomputedRoot)}: its tables were altered");
        }

        if (cp is null) return head;
        if (cp.TreeSize > size)
        {
            problems.Add($"the audit log holds {size} leaves, fewer than the {cp.TreeSize} the checkpoint of {cp.Time:u} covered: it was cut short");
            return head;
        }

        if (recomputedAtCheckpoint is not null && !recomputedAtCheckpoint.AsSpan().SequenceEqual(cp.Root))
        {
            problems.Add($"the first {cp.TreeSize} leaves of the audit log hash to {Hex(recomputedAtCheckpoint)}, not to the checkpoint's root {Hex(cp.Root)}: the log was rewritten since the checkpoint");
        }

        try
        {
            var proof = await AuditLog.ProveConsistencyAsync(store, cp.TreeSize, size, cancellationToken).ConfigureAwait(false);
            if (!MerkleProofs.VerifyConsistency(cp.TreeSize, size, proof, cp.Root, head.Root))
            {
                problems.Add($"the audit log of {size} leaves does not extend the checkpoint's {cp.TreeSize} (root {Hex(cp.Root)}): the consistency proof fails");
            }
        }
        catch (InvalidDataException e)
        {
            problems.Add(e.Message);
        }

        return head;
    }

    private static async Task ProveAsync(IOrdoStore store, StoredAuditLeaf? leaf, long size, byte[]? root, string tree, List<string> problems, CancellationToken cancellationToken)
    {
        if (leaf is null || root is null) return;
        try
        {
            var path = await AuditLog.ProveInclusionAsync(store, leaf.Index, size, cancellationToken).ConfigureAwait(false);
            if (!MerkleProofs.VerifyInclusion(leaf.Index, size, leaf.Leaf.Hash(), path, root))
            {
                problems.Add($"leaf {leaf.Index} ({Describe(leaf.Leaf)}) is not in {tree} of {size} leaves: the inclusion proof fails");
            }
        }
        catch (InvalidDataException e)
        {
            problems.Add(e.Message);
        }
    }

    /// <summary>
    /// Checks a job; when it does not come out intact, looks again (twice at most) at its record and its leaves as they
    /// are now, if either moved on: a job that processes are still running moves between the reads of one look (its
    /// record read before its newest events, its newest leaves written after the log's size was read) and must not be
    /// reported for that. What was tampered with stays so at every look; a job that did not move is not read again.
    /// </summary>
    private static async Task<JobAudit> CheckSettledAsync(
        IOrdoStore store, JobRecord job, LoggedJob? logged, CheckpointJob? cpJob, long? cpSize, LogTail tail, DefinitionCheck definitions, CancellationToken cancellationToken)
    {
        var audit = await CheckJobAsync(store, job, logged, cpJob, definitions, cancellationToken).ConfigureAwait(false);
        for (var look = 0; look < 2 && !audit.Intact; look++)
        {
            if (await store.GetJobAsync(job.JobId, cancellationToken).ConfigureAwait(false) is not { } now) break;
            // The leaves read for this look are read after the record: they reach at least as far as it does.
            var newer = await tail.OfAsync(job.JobId.Value, tail.Started, cancellationToken).ConfigureAwait(false);
            var moved = now.LastSeq != job.LastSeq || !now.HeadHash.AsSpan().SequenceEqual(job.HeadHash) || now.Status != job.Status;
            if (!moved && newer.Count == 0) break;
            var fresh = logged?.Copy() ?? new LoggedJob();
            foreach (var leaf in newer) fresh.Add(leaf.Leaf, leaf.Index < cpSize);
            (job, logged) = (now, logged is null && newer.Count == 0 ? null : fresh);
            audit = await CheckJobAsync(store, job, logged, cpJob, definitions, cancellationToken).ConfigureAwait(false);
        }

        return audit;
    }

    /// <summary>
    /// The leaves appended after the size a check read: what a job that moved on meanwhile is checked against again.
    /// Each read goes on from where the one before ended; a job that asks for leaves read after its record takes the
    /// newest read if it started after that, or starts one.
    /// </summary>
    private sealed class LogTail(IOrdoStore store, long from)
    {
        private readonly Lock _gate = new();
        private Task<(Dictionary<string, List<StoredAuditLeaf>> BySubject, long End)>? _latest;
        private int _started;

        /// <summary>How many reads have started: a read numbered higher starts after this was read.</summary>
        public int Started
        {
            get
            {
                lock (_gate) return _started;
            }
        }

        public async Task<IReadOnlyList<StoredAuditLeaf>> OfAsync(string subject, int after, CancellationToken cancellationToken)
        {
            Task<(Dictionary<string, List<StoredAuditLeaf>> BySubject, long End)> read;
            lock (_gate)
            {
                if (_latest is null || _started <= after)
                {
                    _started++;
                    _latest = ReadAsync(_latest, cancellationToken);
                }

                read = _latest;
            }

            var (bySubject, _) = await read.ConfigureAwait(false);
            return bySubject.TryGetValue(subject, out var leaves) ? leaves : [];
        }

        private async Task<(Dictionary<string, List<StoredAuditLeaf>>, long)> ReadAsync(Task<(Dictionary<string, List<StoredAuditLeaf>> BySubject, long End)>? previous, CancellationToken cancellationToken)
        {
            // Each read goes on from where the one before ended, and carries its leaves along.
            var (earlier, start) = previous is null ? ([], from) : await previous.ConfigureAwait(false);
            var bySubject = earlier.ToDictionary(kv => kv.Key, kv => new List<StoredAuditLeaf>(kv.Value), StringComparer.Ordinal);
            long size;
            try
            {
                size = await store.GetAuditLogSizeAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException)
            {
                // Reported by the check that read the size first; no newer leaf is read past a head that was altered.
                size = start;
            }

            await foreach (var leaf in store.ReadAuditLeavesAsync(start, size, cancellationToken).ConfigureAwait(false))
            {
                if (leaf.Leaf.Kind != AuditLeafKind.Events) continue;
                if (!bySubject.TryGetValue(leaf.Leaf.Subject, out var list)) bySubject[leaf.Leaf.Subject] = list = [];
                list.Add(leaf);
            }

            return (bySubject, Math.Max(size, start));
        }
    }

    private static async Task<JobAudit> CheckJobAsync(IOrdoStore store, JobRecord job, LoggedJob? logged, CheckpointJob? cpJob, DefinitionCheck definitions, CancellationToken cancellationToken)
    {
        var problems = new List<Problem>();
        long? brokenAt = null;
        var interest = new HashSet<long> { job.LastSeq };
        if (logged is not null)
        {
            interest.Add(logged.LastSeq);
            if (logged.CheckpointSeq > 0) interest.Add(logged.CheckpointSeq);
            foreach (var (seq, _) in logged.Earlier) interest.Add(seq);
        }

        if (cpJob is not null) interest.Add(cpJob.Seq);
        var chain = await WalkAsync(store, job.JobId, interest, cancellationToken).ConfigureAwait(false);

        // More events than the record said: when the record, read again, has caught up with them, a process appended
        // them while they were read (the job is running), and the chain is checked up to the record read first.
        // Events appended behind the store's back never move the record: they stay reported.
        var moving = chain.Break is null && chain.Count > job.LastSeq
            && await store.GetJobAsync(job.JobId, cancellationToken).ConfigureAwait(false) is { } again && again.LastSeq >= chain.Count;
        if (chain.Break is { } broken)
        {
            brokenAt = chain.BreakSeq;
            problems.Add(new(JobAuditStatus.Rewritten, broken));
        }
        else if (chain.Count < job.LastSeq)
        {
            brokenAt = chain.Count + 1;
            problems.Add(new(JobAuditStatus.Truncated, $"the log ends at event {chain.Count} but the job records {job.LastSeq} events: events {chain.Count + 1}..{job.LastSeq} were deleted"));
        }
        else if (moving && chain.Count > job.LastSeq && chain.HashAt.TryGetValue(job.LastSeq, out var atRecord) && atRecord.AsSpan().SequenceEqual(job.HeadHash))
        {
            // Appended after the record was read: the chain is checked up to it.
        }
        else if (chain.Count > job.LastSeq || !chain.Head.AsSpan().SequenceEqual(job.HeadHash))
        {
            brokenAt = Math.Min(chain.Count, job.LastSeq);
            problems.Add(new(JobAuditStatus.Rewritten, $"the log has {chain.Count} events ending in {Hex(chain.Head)} but the job records {job.LastSeq} ending in {Hex(job.HeadHash)}"));
        }

        if (logged is not null)
        {
            Compare(chain, logged.LastSeq, logged.LastDigest, "the audit log", problems);
            // Earlier leaves past the chain's end are already named by the newest one's comparison (truncated).
            // Only the first that differs is named: every leaf after a rewritten event differs too.
            var before = problems.Count;
            foreach (var (seq, digest) in logged.Earlier.OrderBy(e => e.Seq))
            {
                if (seq > chain.Count || problems.Count > before) break;
                Compare(chain, seq, digest, "the audit log", problems);
            }
            if (logged.CheckpointSeq > 0 && logged.CheckpointSeq != logged.LastSeq) Compare(chain, logged.CheckpointSeq, logged.CheckpointDigest!, "the audit log at the checkpoint", problems);
            if (logged.Gap is { } gap) problems.Add(new(JobAuditStatus.NotLogged, $"events {gap.From}..{gap.To} are not in the audit log"));
            var upTo = moving ? Math.Min(chain.Count, job.LastSeq) : chain.Count;
            if (chain.Break is null && upTo > logged.LastSeq)
            {
                problems.Add(new(JobAuditStatus.NotLogged, $"events {logged.LastSeq + 1}..{upTo} are not in the audit log: they were written behind the store's back, or with the log turned off (or, on a store that could not be written to seal them, by a process that stopped before sealing)"));
            }
        }
        else if (chain.Count > 0)
        {
            problems.Add(new(JobAuditStatus.NotLogged, "no leaf of the audit log records this job: it was written behind the store's back, or with the log turned off"));
        }

        if (cpJob is not null) Compare(chain, cpJob.Seq, cpJob.Head, "the checkpoint", problems);
        // Last, and only when nothing else is wrong: a chain cut short or rewritten no longer agrees with its record either.
        // A record read before the chain's newest events describes an earlier point of it: not compared.
        if (chain.Break is null && problems.Count == 0 && !(moving && chain.Count > job.LastSeq)) CompareRecord(job, chain, problems);

        if (chain.SubmittedDefinition is { } recorded)
        {
            if (!string.Equals(recorded, job.DefinitionHash, StringComparison.Ordinal))
            {
                problems.Add(new(JobAuditStatus.DefinitionChanged, $"the job's record names definition {job.DefinitionHash} but its JobSubmitted event recorded {recorded}"));
            }

            if (await definitions.ProblemAsync(recorded, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                problems.Add(new(JobAuditStatus.DefinitionChanged, problem));
            }
        }

        var status = problems.Count == 0 ? JobAuditStatus.Intact : problems.OrderBy(p => Rank(p.Status)).First().Status;
        var inCheckpoint = cpJob is not null || logged?.CheckpointSeq > 0;
        return new JobAudit(job.JobId, status, chain.Count, inCheckpoint, [.. problems.Select(p => p.Text).Distinct(StringComparer.Ordinal)]) { BrokenAtSeq = brokenAt };
    }

    /// <summary>
    /// Compares the job's record (what listings, tenancy and authorization read) with what its chain recorded: the
    /// JobSubmitted event's workflow, version, tenant, submitter, parent and root, and its end.
    /// </summary>
    private static void CompareRecord(JobRecord job, Chain chain, List<Problem> problems)
    {
        if (chain.Submitted is not { } submitted) return;
        void Differs(string field, string? stored, string? recorded)
        {
            if (string.Equals(stored ?? "", recorded ?? "", StringComparison.Ordinal)) return;
            problems.Add(new(JobAuditStatus.Rewritten, $"the job's record has {field} '{stored}' but its JobSubmitted event recorded '{recorded}': the record was changed in the database"));
        }

        Differs("workflow", job.Workflow, submitted.Workflow);
        Differs("version", job.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), submitted.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Differs("tenant", job.Tenant, submitted.Tenant);
        Differs("submitter", job.Submitter, submitted.Submitter);
        Differs("parent job", job.ParentJobId?.Value, submitted.ParentJobId);
        Differs("root job", job.RootJobId.Value, submitted.RootJobId ?? (submitted.ParentJobId is null ? job.JobId.Value : job.RootJobId.Value));

        // Only the end is compared: the statuses before it follow from more than one event.
        var ended = chain.Ended;
        if (ended is not null ? job.Status != ended : job.Status.IsTerminal())
        {
            problems.Add(new(JobAuditStatus.Rewritten, ended is not null
                ? $"the job's record has status {job.Status.ToWire()} but its log ends it as {ended.Value.ToWire()}: the record was changed in the database"
                : $"the job's record has status {job.Status.ToWire()} but its log never ended it: the record was changed in the database"));
        }
    }

    /// <summary>Compares the chain at <paramref name="seq"/> with what <paramref name="source"/> recorded there.</summary>
    private static void Compare(Chain chain, long seq, byte[] recorded, string source, List<Problem> problems)
    {
        if (chain.Break is not null) return;
        if (chain.Count < seq)
        {
            problems.Add(new(JobAuditStatus.Truncated, $"{source} records events up to {seq} but the store has only {chain.Count}: events {chain.Count + 1}..{seq} were deleted"));
        }
        else if (chain.HashAt.TryGetValue(seq, out var hash) && !hash.AsSpan().SequenceEqual(recorded))
        {
            problems.Add(new(JobAuditStatus.Resealed, $"events up to {seq} differ from those {source} recorded (its hash there is {Hex(hash)}, recorded {Hex(recorded)}): they were rewritten and the chain recomputed"));
        }
    }

    private static IEnumerable<JobAudit> Deleted(Dictionary<string, LoggedJob> logged, Dictionary<string, CheckpointJob> cpJobs, HashSet<string> seen)
    {
        foreach (var id in logged.Keys.Concat(cpJobs.Keys).Distinct(StringComparer.Ordinal).Where(id => !seen.Contains(id)).Order(StringComparer.Ordinal))
        {
            yield return Deleted(new JobId(id), logged.GetValueOrDefault(id), cpJobs.GetValueOrDefault(id))!;
        }
    }

    private static JobAudit? Deleted(JobId jobId, LoggedJob? logged, CheckpointJob? cpJob)
    {
        if (logged is null && cpJob is null) return null;
        var problems = new List<string>();
        if (logged is not null) problems.Add($"the audit log records events 1..{logged.LastSeq} of this job, but the job is gone from the store");
        if (cpJob is not null) problems.Add($"the checkpoint records events 1..{cpJob.Seq} of this job, but the job is gone from the store");
        return new JobAudit(jobId, JobAuditStatus.Deleted, 0, cpJob is not null || logged?.CheckpointSeq > 0, problems);
    }

    /// <summary>Walks a job's chain from its first event; stops at the first break.</summary>
    private static async Task<Chain> WalkAsync(IOrdoStore store, JobId jobId, HashSet<long> interest, CancellationToken cancellationToken)
    {
        var chain = new Chain();
        var prev = EventChain.GenesisHash.ToArray();
        long expected = 1;
        await foreach (var e in store.ReadEventsAsync(jobId, 0, cancellationToken).ConfigureAwait(false))
        {
            if (e.Seq != expected)
            {
                chain.Break = e.Seq > expected ? $"event {expected} is missing (the next stored event is {e.Seq})" : $"event {e.Seq} appears out of order after {expected - 1}";
                chain.BreakSeq = e.Seq > expected ? expected : e.Seq;
                break;
            }

            if (expected == 1)
            {
                if (e.Type != EventTypes.JobSubmitted)
                {
                    chain.Break = $"the log starts with {e.Type}, not JobSubmitted";
                    chain.BreakSeq = 1;
                    break;
                }
            }

            var hash = EventChain.ComputeHash(prev, e);
            if (!hash.AsSpan().SequenceEqual(e.Hash))
            {
                chain.Break = $"event {e.Seq} ({e.Type}) does not match its hash: it was altered, or events before it were changed";
                chain.BreakSeq = e.Seq;
                break;
            }

            if (expected == 1)
            {
                try
                {
                    chain.Submitted = e.GetPayload<JobSubmittedPayload>();
                    chain.SubmittedDefinition = chain.Submitted.DefinitionHash;
                }
                catch (System.Text.Json.JsonException)
                {
                    chain.Break = "the JobSubmitted event's payload is not readable";
                    chain.BreakSeq = 1;
                    break;
                }
            }

            if (e.Type == EventTypes.JobCompleted) chain.Ended = JobStatus.Completed;
            else if (e.Type == EventTypes.JobFailed) chain.Ended = JobStatus.Failed;
            else if (e.Type == EventTypes.JobCancelled) chain.Ended = JobStatus.Cancelled;
            if (interest.Contains(e.Seq)) chain.HashAt[e.Seq] = hash;
            prev = hash;
            expected++;
        }

        chain.Count = expected - 1;
        chain.Head = prev;
        return chain;
    }

    private static int Rank(JobAuditStatus status) => status switch
    {
        JobAuditStatus.Deleted => 0,
        JobAuditStatus.Rewritten => 1,
        JobAuditStatus.Resealed => 2,
        JobAuditStatus.Truncated => 3,
        JobAuditStatus.DefinitionChanged => 4,
        JobAuditStatus.NotLogged => 5,
        _ => 6,
    };

    private static string Describe(AuditLeaf leaf) => leaf.Kind == AuditLeafKind.Events
        ? $"events {leaf.FirstSeq}..{leaf.LastSeq} of job {leaf.Subject}"
        : $"definition {leaf.Subject}";

    private static string Hex(byte[] hash) => Convert.ToHexStringLower(hash.AsSpan(0, Math.Min(8, hash.Length))) + "…";

    private sealed record Problem(JobAuditStatus Status, string Text);

    private sealed class Chain
    {
        public long Count { get; set; }
        public byte[] Head { get; set; } = [];
        public string? Break { get; set; }
        public long? BreakSeq { get; set; }
        public string? SubmittedDefinition { get; set; }
        public JobSubmittedPayload? Submitted { get; set; }
        public JobStatus? Ended { get; set; }
        public Dictionary<long, byte[]> HashAt { get; } = [];
    }

    /// <summary>What the audit log records of one job: where its leaves end, overall and at the checkpoint, and the first gap between them.</summary>
    private sealed class LoggedJob
    {
        public long LastSeq { get; private set; }
        public byte[] LastDigest { get; private set; } = [];
        public long CheckpointSeq { get; private set; }
        public byte[]? CheckpointDigest { get; private set; }
        public (long From, long To)? Gap { get; private set; }

        /// <summary>
        /// Every leaf's last event and digest but the newest one's: each is compared with the chain too, so that events
        /// rewritten (and the chain recomputed) under a leaf are named even when a later leaf, appended on the rewritten
        /// chain, agrees with it; and a leaf that comes after one reaching as far (a process that committed events
        /// another process had already sealed records what it wrote there) is compared as well.
        /// </summary>
        public List<(long Seq, byte[] Digest)> Earlier { get; private set; } = [];

        public LoggedJob Copy()
        {
            var copy = (LoggedJob)MemberwiseClone();
            copy.Earlier = [.. Earlier];
            return copy;
        }

        public void Add(AuditLeaf leaf, bool inCheckpoint)
        {
            if (leaf.FirstSeq > LastSeq + 1) Gap ??= (LastSeq + 1, leaf.FirstSeq - 1);
            if (leaf.LastSeq <= LastSeq)
            {
                Earlier.Add((leaf.LastSeq, leaf.Digest));
                return;
            }

            if (LastSeq > 0) Earlier.Add((LastSeq, LastDigest));

            LastSeq = leaf.LastSeq;
            LastDigest = leaf.Digest;
            if (inCheckpoint)
            {
                CheckpointSeq = leaf.LastSeq;
                CheckpointDigest = leaf.Digest;
            }
        }
    }

    /// <summary>Each definition checked once: its content against its hash, and against the digest the audit log recorded.</summary>
    private sealed class DefinitionCheck(IOrdoStore store, Dictionary<string, (byte[] Digest, long Index)>? logged)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task<string?>>> _checked = new(StringComparer.Ordinal);

        public Task<string?> ProblemAsync(string hash, CancellationToken cancellationToken)
            => _checked.GetOrAdd(hash, h => new Lazy<Task<string?>>(() => CheckAsync(h, cancellationToken))).Value;

        private async Task<string?> CheckAsync(string hash, CancellationToken cancellationToken)
        {
            var record = await store.GetDefinitionAsync(hash, cancellationToken).ConfigureAwait(false);
            string? problem;
            if (record is null)
            {
                problem = $"its definition {hash} is gone from the store";
            }
            else
            {
                problem = DefinitionIntegrity.Problem(record, hash);
                if (problem is null && logged is not null && logged.TryGetValue(hash, out var leaf) && !SHA256.HashData(record.Content).AsSpan().SequenceEqual(leaf.Digest))
                {
                    problem = $"its definition {hash} differs from the one the audit log recorded (leaf {leaf.Index}): it was changed in the database";
                }
            }

            return problem;
        }

        /// <summary>Every definition the audit log records, checked (those no job uses too).</summary>
        public async Task<IReadOnlyList<string>> LoggedDefinitionsAsync(CancellationToken cancellationToken)
        {
            var problems = new List<string>();
            if (logged is null) return problems;
            foreach (var (hash, leaf) in logged.OrderBy(d => d.Value.Index))
            {
                var record = await store.GetDefinitionAsync(hash, cancellationToken).ConfigureAwait(false);
                if (record is null)
                {
                    problems.Add($"definition {hash} (audit log leaf {leaf.Index}) is gone from the store");
                }
                else if (!SHA256.HashData(record.Content).AsSpan().SequenceEqual(leaf.Digest))
                {
                    problems.Add($"definition {hash} of {record.Workflow}@{record.Version} differs from the one the audit log recorded (leaf {leaf.Index}): it was changed in the database");
                }
            }

            return problems;
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using Ordo.Cli.Hosting;
using Ordo.Engine;
using Ordo.Postgres;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Cli.Bench;

/// <summary>
/// The workloads on PostgreSQL (<c>ordo bench --postgres CONNSTR</c>), each in a fresh schema of the given database,
/// dropped afterwards. Two ways: in-process (the bench process runs the workers, as for SQLite: W1–W5 with the same
/// code-step graphs, and the bytes of one 1,000-step job), and with 1, 2 and 3 <c>ordo worker --postgres</c> processes
/// doing the work while the bench process only submits and watches (W1, W2, W3 with transform steps, which any worker
/// process can run).
/// </summary>
internal sealed partial class OrdoBench
{
    /// <summary>How often the bench process looks at the jobs worker processes run when no job-end notification came (a safety net).</summary>
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The most one 1,000-step job may take in PostgreSQL (heap, indexes and TOAST of every table).</summary>
    public const long PostgresStorageBudgetBytes = 2_000_000;

    /// <summary>Runs the PostgreSQL part; its figures go under <c>postgres</c>.</summary>
    public async Task<JsonObject> PostgresAsync(string connectionString, CancellationToken stop)
    {
        var started = Stopwatch.GetTimestamp();
        var pg = new JsonObject();
        var errors = new JsonObject();
        await using (var c = new NpgsqlConnection(connectionString))
        {
            try
            {
                await c.OpenAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or ArgumentException)
            {
                throw new CliInputException($"--postgres: PostgreSQL cannot be reached: {e.Message}");
            }

            await using var cmd = new NpgsqlCommand("SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync'), current_setting('shared_buffers')", c);
            await using var r = await cmd.ExecuteReaderAsync(stop).ConfigureAwait(false);
            await r.ReadAsync(stop).ConfigureAwait(false);
            pg["server_version"] = r.GetString(0);
            pg["synchronous_commit"] = r.GetString(1);
            pg["fsync"] = r.GetString(2);
            pg["shared_buffers"] = r.GetString(3);
        }

        pg["store"] = $"PostgresOrdoStore (Npgsql {typeof(NpgsqlConnection).Assembly.GetName().Version?.ToString(3)})";
        var inProcess = new JsonObject();
        pg["in_process"] = inProcess;
        var shared = settings.Workloads.Where(w => w is "w1" or "w2" or "w3" or "w4" or "w5").ToList();
        foreach (var w in shared)
        {
            try
            {
                switch (w)
                {
                    case "w1": await PgW1Async(connectionString, inProcess, stop).ConfigureAwait(false); break;
                    case "w2": await PgW2Async(connectionString, inProcess, stop).ConfigureAwait(false); break;
                    case "w3": await PgW3Async(connectionString, inProcess, stop).ConfigureAwait(false); break;
                    case "w4": await PgW4Async(connectionString, inProcess, stop).ConfigureAwait(false); break;
                    case "w5": await PgW5Async(connectionString, inProcess, stop).ConfigureAwait(false); break;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                errors[w] = e is BenchFailedException ? e.Message : e.ToString();
                Log($"postgres {w} FAILED: {e.Message}");
            }
        }

        if (settings.Workloads.Contains("stats"))
        {
            try
            {
                await PgStatsAsync(connectionString, inProcess, stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                errors["stats"] = e is BenchFailedException ? e.Message : e.ToString();
                Log($"postgres stats FAILED: {e.Message}");
            }
        }

        var processes = new JsonObject();
        pg["worker_processes"] = processes;
        if (shared.Any(w => w is "w1" or "w2" or "w3"))
        {
            foreach (var n in new[] { 1, 2, 3 })
            {
                try
                {
                    processes[n.ToString(CultureInfo.InvariantCulture)] = await PgProcessesAsync(connectionString, n, shared, stop).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
                {
                    errors[$"processes_{n}"] = e is BenchFailedException ? e.Message : e.ToString();
                    Log($"postgres with {n} worker processes FAILED: {e.Message}");
                }
            }
        }

        pg["total_wall_s"] = BenchStats.Round(Stopwatch.GetElapsedTime(started).TotalSeconds, 1);
        if (errors.Count > 0) pg["errors"] = errors;
        return pg;
    }

    private async Task PgW1Async(string cs, JsonObject o, CancellationToken stop)
    {
        await using var schema = await BenchSchema.CreateAsync(cs, "w1", stop).ConfigureAwait(false);
        await using (var host = await BenchHost.StartAsync(schema.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false))
        {
            var (samples, _) = await ChainSeriesAsync(host, "postgres w1", _p.W1DurN, _p.W1Reps).ConfigureAwait(false);
            o["w1_durable_steps_per_sec"] = BenchStats.Round(BenchStats.Median(samples), 1);
            o["w1_samples_steps_per_sec"] = Array(samples, 1);
        }

        // The same with a commit of its own for every step, as if no step were pure (OrdoRuntimeOptions.PureStepsPerCommit 1).
        await using var single = await BenchHost.StartAsync(schema.OpenStore(), DefaultWorkers, stop, OneCommitPerStep()).ConfigureAwait(false);
        var (each, _) = await ChainSeriesAsync(single, "postgres w1, a commit per step", _p.W1DurN, _p.W1Reps).ConfigureAwait(false);
        o["w1_one_commit_per_step_steps_per_sec"] = BenchStats.Round(BenchStats.Median(each), 1);
    }

    /// <summary>Runtime options that give every step a commit of its own: pure steps are not written together.</summary>
    private static OrdoRuntimeOptions OneCommitPerStep() => new() { PureStepsPerCommit = 1 };

    private async Task PgW2Async(string cs, JsonObject o, CancellationToken stop)
    {
        await using var schema = await BenchSchema.CreateAsync(cs, "w2", stop).ConfigureAwait(false);
        await using var host = await BenchHost.StartAsync(schema.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
        var probe = new StepProbe();
        var workflow = BenchWorkflows.FanOut("bench-w2", probe);
        for (var k = 0; k < _p.W2Warm; k++) BenchWorkflows.ExpectFanOut(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), "postgres w2");
        var ms = new List<double>();
        for (var k = 0; k < _p.W2N; k++)
        {
            var t0 = Stopwatch.GetTimestamp();
            var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
            ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            BenchWorkflows.ExpectFanOut(state, "postgres w2");
        }

        o["w2_fanout8_join_ms"] = BenchStats.Round(BenchStats.Median(ms), 3);
        o["w2_samples_ms"] = Array(ms, 3);
        Log($"postgres w2: median {F2(BenchStats.Median(ms))} ms");
    }

    private async Task PgW3Async(string cs, JsonObject o, CancellationToken stop)
    {
        await using var schema = await BenchSchema.CreateAsync(cs, "w3", stop).ConfigureAwait(false);
        var probe = new StepProbe();
        var ids = BenchWorkflows.ChainIds(BenchSizes.Chain);
        var workflow = BenchWorkflows.Chain("bench-w3", ids, probe);
        await using (var host = await BenchHost.StartAsync(schema.OpenStore(), W3Workers, stop).ConfigureAwait(false))
        {
            await BatchAsync(host, workflow, ids, _p.W3Jobs, "postgres w3").ConfigureAwait(false);
            var seconds = await BatchAsync(host, workflow, ids, _p.W3Jobs, "postgres w3").ConfigureAwait(false);
            o["w3_jobs_per_sec"] = BenchStats.Round(_p.W3Jobs / seconds, 1);
            o["w3_steps_per_sec"] = BenchStats.Round(_p.W3Jobs * ids.Count / seconds, 1);
            o["w3_workers"] = host.Workers;
            Log($"postgres w3: {_p.W3Jobs} concurrent in {F2(seconds)} s, {F0(_p.W3Jobs * ids.Count / seconds)} steps/s");
        }

        await using var single = await BenchHost.StartAsync(schema.OpenStore(), W3Workers, stop, OneCommitPerStep()).ConfigureAwait(false);
        await BatchAsync(single, workflow, ids, _p.W3Jobs, "postgres w3, a commit per step").ConfigureAwait(false);
        var each = await BatchAsync(single, workflow, ids, _p.W3Jobs, "postgres w3, a commit per step").ConfigureAwait(false);
        o["w3_one_commit_per_step_steps_per_sec"] = BenchStats.Round(_p.W3Jobs * ids.Count / each, 1);
        Log($"postgres w3, a commit per step: {F0(_p.W3Jobs * ids.Count / each)} steps/s");
    }

    private async Task PgW4Async(string cs, JsonObject o, CancellationToken stop)
    {
        await using var schema = await BenchSchema.CreateAsync(cs, "w4", stop).ConfigureAwait(false);
        await W4ScenarioAsync(schema.OpenStore, stop).ConfigureAwait(false);
        var result = await W4ScenarioAsync(schema.OpenStore, stop).ConfigureAwait(false);
        o["w4_reexecuted_steps"] = result["reexecuted"]!.GetValue<long>();
        o["w4_resume_ms"] = result["resume_ms"]!.GetValue<double>();
        Log($"postgres w4: resume re-ran {result["reexecuted"]} steps in {F2(result["resume_ms"]!.GetValue<double>())} ms");
    }

    private async Task PgW5Async(string cs, JsonObject o, CancellationToken stop)
    {
        var perStep = new JsonObject();
        o["w5_per_step_us"] = perStep;
        foreach (var n in _p.W5Lengths)
        {
            var key = n.ToString(CultureInfo.InvariantCulture);
            await using var schema = await BenchSchema.CreateAsync(cs, $"w5_{key}", stop).ConfigureAwait(false);
            await using var host = await BenchHost.StartAsync(schema.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
            var ids = BenchWorkflows.ChainIds(n);
            var workflow = BenchWorkflows.Chain($"bench-w5-{key}", ids, new StepProbe());
            BenchWorkflows.Expect(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), ids, $"postgres w5-{n}");
            var samples = new List<double>();
            for (var r = 0; r < _p.W5Reps; r++)
            {
                var t0 = Stopwatch.GetTimestamp();
                BenchWorkflows.Expect(await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false), ids, $"postgres w5-{n}");
                samples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds * 1000 / n);
            }

            perStep[key] = BenchStats.Round(BenchStats.Median(samples), 1);
            Log($"postgres w5 n={n}: median {F0(BenchStats.Median(samples))} us/step");
        }

        if (perStep["10"] is { } ten && perStep["1000"] is { } thousand)
        {
            o["w5_ratio_1000_vs_10"] = BenchStats.Round(thousand.GetValue<double>() / ten.GetValue<double>(), 2);
        }

        o["storage"] = await PgStorageAsync(cs, stop).ConfigureAwait(false);
    }

    /// <summary>
    /// What one 1,000-step job adds to PostgreSQL: a fresh schema, the size of every table of it (heap, free space and
    /// visibility maps, indexes, TOAST) before and after the job, after VACUUM so that the work items' dead versions are
    /// not counted as data.
    /// </summary>
    private async Task<JsonObject> PgStorageAsync(string cs, CancellationToken stop)
    {
        var n = _p.StorageChain;
        await using var schema = await BenchSchema.CreateAsync(cs, "storage", stop).ConfigureAwait(false);
        await using var host = await BenchHost.StartAsync(schema.OpenStore(), DefaultWorkers, stop).ConfigureAwait(false);
        var ids = BenchWorkflows.ChainIds(n);
        var workflow = BenchWorkflows.Chain("bench-storage", ids, new StepProbe());
        var before = await schema.BytesAsync(stop).ConfigureAwait(false);
        var state = await host.InvokeAsync(workflow, BenchWorkflows.Input).ConfigureAwait(false);
        BenchWorkflows.Expect(state, ids, "postgres storage");
        var after = await schema.BytesAsync(stop).ConfigureAwait(false);
        var events = await schema.ScalarAsync($"SELECT count(*) FROM events WHERE job_id = '{state.JobId.Value}'", stop).ConfigureAwait(false);
        var grew = after - before;
        Log($"postgres storage: one {n}-step job added {grew:N0} bytes ({(double)grew / n:0} bytes/step, {events} events)");
        return new JsonObject
        {
            ["steps"] = n,
            ["events"] = events,
            ["bytes_before"] = before,
            ["bytes_after"] = after,
            ["grew_bytes"] = grew,
            ["bytes_per_step"] = BenchStats.Round((double)grew / n, 1),
            ["budget_bytes"] = PostgresStorageBudgetBytes,
            ["under_budget"] = grew < PostgresStorageBudgetBytes,
            ["method"] = "fresh schema; VACUUM, then the sum of pg_total_relation_size of its tables, before and after one job",
        };
    }

    /// <summary>
    /// W1, W2 and W3 done by <paramref name="processes"/> <c>ordo worker --postgres</c> processes: this process submits
    /// each job and waits for its end (<see cref="PostgresOrdoStore.WatchJobEnds"/>); the workers claim it (woken by
    /// NOTIFY), run its steps and commit; the job's last commit notifies its end. The graphs are the same shapes built of transform steps.
    /// </summary>
    private async Task<JsonObject> PgProcessesAsync(string cs, int processes, IReadOnlyList<string> workloads, CancellationToken stop)
    {
        var result = new JsonObject();
        await using var schema = await BenchSchema.CreateAsync(cs, $"p{processes}", stop).ConfigureAwait(false);
        var store = schema.OpenStore();
        await store.InitializeAsync(stop).ConfigureAwait(false);
        var concurrency = Math.Clamp(W3Workers / processes, 1, 32);
        var workers = new List<Process>();
        try
        {
            for (var i = 0; i < processes; i++) workers.Add(await StartWorkerAsync(schema.ConnectionString, concurrency, stop).ConfigureAwait(false));
            result["processes"] = processes;
            result["concurrency_per_process"] = concurrency;
            await using var client = new OrdoRuntime(store, new OrdoRuntimeOptions { Workers = 1 });
            using var ended = new SemaphoreSlim(0);
            using var endings = store.WatchJobEnds(_ => ended.Release());
            var chainIds = BenchWorkflows.ChainIds(BenchSizes.Chain);
            using var files = BenchDatabase.Create("pg-workflows");
            var chain = await TransformChainAsync(files.Directory, chainIds, stop).ConfigureAwait(false);
            if (workloads.Contains("w1"))
            {
                await SequentialByWorkersAsync(client, store, chain, chainIds, _p.W1DurN, ended, stop).ConfigureAwait(false);
                var samples = new List<double>();
                for (var r = 0; r < _p.W1Reps; r++)
                {
                    var seconds = await SequentialByWorkersAsync(client, store, chain, chainIds, _p.W1DurN, ended, stop).ConfigureAwait(false);
                    samples.Add(_p.W1DurN * chainIds.Count / seconds);
                }

                result["w1_durable_steps_per_sec"] = BenchStats.Round(BenchStats.Median(samples), 1);
                Log($"postgres, {processes} worker process(es): w1 median {F0(BenchStats.Median(samples))} steps/s");
            }

            if (workloads.Contains("w2"))
            {
                var fan = await TransformFanOutAsync(files.Directory, stop).ConfigureAwait(false);
                for (var k = 0; k < _p.W2Warm; k++) await InvokeByWorkersAsync(client, store, fan, ended, stop).ConfigureAwait(false);
                var ms = new List<double>();
                for (var k = 0; k < _p.W2N; k++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var id = await InvokeByWorkersAsync(client, store, fan, ended, stop).ConfigureAwait(false);
                    ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    var state = await client.GetStateAsync(id, stop).ConfigureAwait(false) ?? throw new BenchFailedException($"postgres w2: job {id} is gone");
                    BenchWorkflows.ExpectFanOut(state, "postgres w2 (worker processes)");
                }

                result["w2_fanout8_join_ms"] = BenchStats.Round(BenchStats.Median(ms), 3);
                Log($"postgres, {processes} worker process(es): w2 median {F2(BenchStats.Median(ms))} ms");
            }

            if (workloads.Contains("w3"))
            {
                await BatchByWorkersAsync(client, store, chain, chainIds, _p.W3Jobs, ended, stop).ConfigureAwait(false);
                var seconds = await BatchByWorkersAsync(client, store, chain, chainIds, _p.W3Jobs, ended, stop).ConfigureAwait(false);
                result["w3_jobs_per_sec"] = BenchStats.Round(_p.W3Jobs / seconds, 1);
                result["w3_steps_per_sec"] = BenchStats.Round(_p.W3Jobs * chainIds.Count / seconds, 1);
                Log($"postgres, {processes} worker process(es): w3 {_p.W3Jobs} concurrent in {F2(seconds)} s, {F0(_p.W3Jobs * chainIds.Count / seconds)} steps/s");
            }
        }
        finally
        {
            foreach (var w in workers) await StopWorkerAsync(w).ConfigureAwait(false);
            await store.DisposeAsync().ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>
    /// A chain of transform steps <c>n1..nN</c>, each adding one to <c>i</c>, loaded from YAML (a workflow built in C# runs
    /// only in the process that built it; a loaded one is stored whole with each job, so any worker process runs it).
    /// </summary>
    private static Task<WorkflowDefinition> TransformChainAsync(string directory, IReadOnlyList<string> ids, CancellationToken stop)
    {
        var yaml = new System.Text.StringBuilder("ordo: 1\nworkflow: bench-p-chain\nversion: 1\nsteps:\n");
        for (var k = 0; k < ids.Count; k++)
        {
            var from = k == 0 ? "input.i" : $"steps.{ids[k - 1]}.output.i";
            yaml.Append(CultureInfo.InvariantCulture, $"  - id: {ids[k]}\n    transform: {{ set: {{ i: \"${{ {from} + 1 }}\" }} }}\n");
            if (k + 1 < ids.Count) yaml.Append(CultureInfo.InvariantCulture, $"    next: {ids[k + 1]}\n");
        }

        return LoadAsync(directory, "chain.yaml", yaml.ToString(), stop);
    }

    /// <summary>W2's shape in transform steps: fan, p1..p8 in parallel (each one), join (the sum plus one: 10).</summary>
    private static Task<WorkflowDefinition> TransformFanOutAsync(string directory, CancellationToken stop)
    {
        var branches = Enumerable.Range(1, BenchSizes.Fan).Select(k => $"p{k}").ToList();
        var yaml = new System.Text.StringBuilder("ordo: 1\nworkflow: bench-p-fan\nversion: 1\nsteps:\n");
        yaml.Append("  - id: fan\n    transform: { set: { i: \"${ input.i + 1 }\" } }\n    next: fanout\n");
        yaml.Append(CultureInfo.InvariantCulture, $"  - id: fanout\n    parallel: [{string.Join(", ", branches)}]\n    join: join\n");
        foreach (var id in branches) yaml.Append(CultureInfo.InvariantCulture, $"  - id: {id}\n    transform: {{ set: {{ i: \"${{ 1 }}\" }} }}\n");
        var sum = "steps.fan.output.i + " + string.Join(" + ", branches.Select(p => $"steps.{p}.output.i")) + " + 1";
        yaml.Append(CultureInfo.InvariantCulture, $"  - id: join\n    transform: {{ set: {{ i: \"${{ {sum} }}\" }} }}\n");
        return LoadAsync(directory, "fan.yaml", yaml.ToString(), stop);
    }

    private static async Task<WorkflowDefinition> LoadAsync(string directory, string file, string yaml, CancellationToken stop)
    {
        var path = Path.Combine(directory, file);
        await File.WriteAllTextAsync(path, yaml, stop).ConfigureAwait(false);
        return await WorkflowLoader.LoadFileAsync(path, null, null, stop).ConfigureAwait(false);
    }

    private static async Task<JobId> InvokeByWorkersAsync(OrdoRuntime client, PostgresOrdoStore store, WorkflowDefinition workflow, SemaphoreSlim ended, CancellationToken stop)
    {
        var job = await client.SubmitAsync(workflow, BenchWorkflows.Input, null, stop).ConfigureAwait(false);
        await WaitEndedAsync(store, [job.JobId.Value], ended, stop).ConfigureAwait(false);
        return job.JobId;
    }

    private static async Task<double> SequentialByWorkersAsync(OrdoRuntime client, PostgresOrdoStore store, WorkflowDefinition workflow, IReadOnlyList<string> ids, int count, SemaphoreSlim ended, CancellationToken stop)
    {
        var jobs = new List<JobId>(count);
        var t0 = Stopwatch.GetTimestamp();
        for (var k = 0; k < count; k++) jobs.Add(await InvokeByWorkersAsync(client, store, workflow, ended, stop).ConfigureAwait(false));
        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        await ExpectAllAsync(client, jobs, ids, stop).ConfigureAwait(false);
        return seconds;
    }

    private static async Task<double> BatchByWorkersAsync(OrdoRuntime client, PostgresOrdoStore store, WorkflowDefinition workflow, IReadOnlyList<string> ids, int count, SemaphoreSlim ended, CancellationToken stop)
    {
        var t0 = Stopwatch.GetTimestamp();
        var submitted = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => client.SubmitAsync(workflow, BenchWorkflows.Input, null, stop))).ConfigureAwait(false);
        await WaitEndedAsync(store, [.. submitted.Select(j => j.JobId.Value)], ended, stop).ConfigureAwait(false);
        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        await ExpectAllAsync(client, [.. submitted.Select(j => j.JobId)], ids, stop).ConfigureAwait(false);
        return seconds;
    }

    private static async Task ExpectAllAsync(OrdoRuntime client, IReadOnlyList<JobId> jobs, IReadOnlyList<string> ids, CancellationToken stop)
    {
        foreach (var id in jobs)
        {
            var state = await client.GetStateAsync(id, stop).ConfigureAwait(false) ?? throw new BenchFailedException($"postgres: job {id} is gone");
            BenchWorkflows.Expect(state, ids, "postgres (worker processes)");
        }
    }

    /// <summary>
    /// Waits until every job has ended: woken by the store's job-end notifications (<see cref="PostgresOrdoStore.WatchJobEnds"/>),
    /// and looking at their status once after each wake-up, and every <see cref="WatchInterval"/> in case one was missed.
    /// </summary>
    private static async Task WaitEndedAsync(PostgresOrdoStore store, string[] jobs, SemaphoreSlim ended, CancellationToken stop)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(TimeSpan.FromMinutes(5).TotalSeconds * Stopwatch.Frequency);
        await using var c = await store.DataSource.OpenConnectionAsync(stop).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM jobs WHERE job_id = ANY($1) AND status IN ('completed', 'failed', 'cancelled')", c);
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text, Value = jobs });
        while ((long)(await cmd.ExecuteScalarAsync(stop).ConfigureAwait(false))! < jobs.Length)
        {
            if (Stopwatch.GetTimestamp() > deadline) throw new BenchFailedException($"postgres: {jobs.Length} job(s) did not end within 5 minutes on the worker processes");
            await ended.WaitAsync(WatchInterval, stop).ConfigureAwait(false);
        }
    }

    /// <summary>Starts <c>ordo worker</c> (this executable) on the store <c>ORDO_POSTGRES</c> names and waits until it says it is waiting for work.</summary>
    private static async Task<Process> StartWorkerAsync(string connectionString, int concurrency, CancellationToken stop)
    {
        var self = Environment.ProcessPath ?? throw new BenchFailedException("cannot find the ordo executable to start workers");
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(OrdoBench).Assembly.Location);
        foreach (var a in new[] { "worker", "--concurrency", concurrency.ToString(CultureInfo.InvariantCulture) }) info.ArgumentList.Add(a);
        // In the environment, not on the command line, where any user of the machine could read its password.
        info.Environment["ORDO_POSTGRES"] = connectionString;
        info.Environment.Remove("ORDO_DB");
        // Stopped when this process is gone, however it ended: a bench killed with SIGKILL leaves no worker running.
        info.Environment[ParentWatch.Variable] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var p = Process.Start(info) ?? throw new BenchFailedException("could not start an ordo worker");
        var line = await p.StandardOutput.ReadLineAsync(stop).AsTask().WaitAsync(TimeSpan.FromSeconds(60), stop).ConfigureAwait(false);
        if (line is null || !line.StartsWith("ordo: worker", StringComparison.Ordinal))
        {
            var err = await p.StandardError.ReadToEndAsync(stop).ConfigureAwait(false);
            throw new BenchFailedException($"an ordo worker did not start: {line} {err}");
        }

        // Keep reading its output so that it never blocks on a full pipe.
        _ = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        _ = p.StandardError.ReadToEndAsync(CancellationToken.None);
        return p;
    }

    private static async Task StopWorkerAsync(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", p.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false }))
                {
                    if (kill is not null) await kill.WaitForExitAsync().ConfigureAwait(false);
                }

                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await p.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    p.Kill(entireProcessTree: true);
                }
            }
        }
        finally
        {
            p.Dispose();
        }
    }
}

/// <summary>A fresh schema for one PostgreSQL workload, dropped when disposed.</summary>
internal sealed class BenchSchema : IAsyncDisposable
{
    private readonly string _server;

    private BenchSchema(string server, string name)
    {
        _server = server;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { SearchPath = name }.ConnectionString;
    }

    public string Name { get; }

    /// <summary>The connection string with the schema as its search path (what worker processes are given).</summary>
    public string ConnectionString { get; }

    public static async Task<BenchSchema> CreateAsync(string server, string tag, CancellationToken stop)
    {
        var schema = new BenchSchema(server, $"ob_{tag}_{Guid.NewGuid():N}");
        await schema.ExecAsync($"DROP SCHEMA IF EXISTS \"{schema.Name}\" CASCADE", stop).ConfigureAwait(false);
        return schema;
    }

    public PostgresOrdoStore OpenStore() => new(new PostgresStoreOptions { ConnectionString = _server, Schema = Name });

    /// <summary>VACUUM every table of the schema, then the sum of their total sizes.</summary>
    public async Task<long> BytesAsync(CancellationToken stop)
    {
        await using var c = new NpgsqlConnection(_server);
        await c.OpenAsync(stop).ConfigureAwait(false);
        var tables = new List<string>();
        await using (var cmd = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = $1", c) { Parameters = { new() { Value = Name } } })
        await using (var r = await cmd.ExecuteReaderAsync(stop).ConfigureAwait(false))
        {
            while (await r.ReadAsync(stop).ConfigureAwait(false)) tables.Add(r.GetString(0));
        }

        foreach (var t in tables)
        {
            await using var vacuum = new NpgsqlCommand($"VACUUM \"{Name}\".\"{t}\"", c);
            await vacuum.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
        }

        await using var size = new NpgsqlCommand("SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)), 0)::bigint FROM pg_tables WHERE schemaname = $1", c) { Parameters = { new() { Value = Name } } };
        return (long)(await size.ExecuteScalarAsync(stop).ConfigureAwait(false))!;
    }

    public async Task<long> ScalarAsync(string sql, CancellationToken stop)
    {
        await using var c = new NpgsqlConnection(ConnectionString);
        await c.OpenAsync(stop).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(stop).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private async Task ExecAsync(string sql, CancellationToken stop)
    {
        await using var c = new NpgsqlConnection(_server);
        await c.OpenAsync(stop).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ExecAsync($"DROP SCHEMA IF EXISTS \"{Name}\" CASCADE", CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // Best effort: a schema left behind holds only benchmark jobs.
        }
    }
}

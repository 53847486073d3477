using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Ordo.Cli.Output;
using Ordo.Engine;
using Ordo.KillSwitches;
using Ordo.Server.Auth;
using Ordo.State;
using Ordo.Storage;
using Ordo.Workflows;

namespace Ordo.Server.Api;

/// <summary>The handlers of the v1 API (API.md). Every read and write is scoped to the caller's tenant.</summary>
internal static class OrdoApiEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok")).ExcludeFromDescription();
        app.MapGet("/readyz", ReadyAsync).ExcludeFromDescription();

        var v1 = app.MapGroup("/v1").AddEndpointFilter(AuthenticateAsync).WithTags("v1");
        v1.MapPost("/jobs", SubmitAsync).Answers([201, 200], [400, 401, 403, 413, 422, 429]).AddEndpointFilter(Role(ApiRoles.Submitter)).WithSummary("Submit a job");
        v1.MapGet("/jobs", ListJobsAsync).Answers([200], [400, 401, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("List the tenant's jobs, newest first");
        v1.MapGet("/jobs/{id}", GetJobAsync).Answers([200], [401, 404, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("Get a job");
        JobGraphEndpoint.Map(v1);
        v1.MapGet("/jobs/{id}/events", EventsAsync).Answers([200], [400, 401, 404, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("A job's events; live with Accept: text/event-stream");
        // An approval names the role that decides it (approver, or operator for an escalation): checked per approval.
        v1.MapPost("/jobs/{id}/approvals/{approvalId}", DecideAsync).Answers([200], [400, 401, 403, 404, 409, 413, 429]).AddEndpointFilter(Role(ApiRoles.Approver, ApiRoles.Operator)).WithSummary("Approve or deny");
        v1.MapPost("/jobs/{id}/cancel", CancelAsync).Answers([200], [400, 401, 403, 404, 409, 413, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("Cancel a job");
        v1.MapGet("/approvals", ApprovalsAsync).Answers([200], [400, 401, 403, 429]).AddEndpointFilter(Role(ApiRoles.Approver, ApiRoles.Operator)).WithSummary("The tenant's approvals the caller may decide");
        v1.MapGet("/kill-switches", ListKillSwitchesAsync).Answers([200], [401, 403, 429]).AddEndpointFilter(Role(ApiRoles.Operator)).WithSummary("The kill switches that are set");
        v1.MapPut("/kill-switches/{target}", SetKillSwitchAsync).Answers([200], [400, 401, 403, 413, 429]).AddEndpointFilter(Role(ApiRoles.Operator)).WithSummary("Set a kill switch");
        v1.MapDelete("/kill-switches/{target}", ClearKillSwitchAsync).Answers([204], [400, 401, 403, 404, 409, 429]).AddEndpointFilter(Role(ApiRoles.Operator)).WithSummary("Clear a kill switch");
        v1.MapGet("/audit/checkpoint", AuditCheckpointAsync).Answers([200], [401, 404, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("The latest signed checkpoint of the store's audit log");
        // Any other path under /v1 needs a key like the rest, then is a 404 problem (never an empty answer).
        v1.Map("/{**rest}", (string rest) => Problems.NotFound($"there is no endpoint /v1/{rest} (GET /openapi/v1.json lists them)")).ExcludeFromDescription();
        v1.MapGet("/workflows", ListWorkflows).Answers([200], [401, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("The workflows that can be submitted");
        v1.MapGet("/releases", ReleasesAsync).Answers([200], [401, 403, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("The release of each workflow: stable version, canary (judged now), shadow comparison of the tenant's jobs (ordo releases)");
        v1.MapGet("/stats", StatsAsync).Answers([200], [400, 401, 403, 429]).AddEndpointFilter(Role(ApiRoles.Viewer)).WithSummary("The tenant's figures per workflow version, agent and prompt hash (ordo stats)");
    }

    private static async Task<IResult> ReleasesAsync(HttpContext http, OrdoRuntime runtime, ServerWorkflows workflows)
    {
        var caller = ApiContext.Caller(http);
        var clock = http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        var all = workflows.All;
        var releases = all.SelectMany(d => d.Project.Releases.Values).DistinctBy(r => r.Workflow).OrderBy(r => r.Workflow, StringComparer.Ordinal).ToList();
        var reports = new List<Ordo.Releases.ReleaseReport>();
        foreach (var release in releases)
        {
            var versions = all.Where(d => d.Name == release.Workflow).Select(d => d.Version).ToList();
            if (versions.Count == 0) continue;
            // The canary's figures are the release's, over every tenant; the shadow pairs compared are the caller's jobs only.
            reports.Add(await Ordo.Releases.ReleaseReport.BuildAsync(runtime.Store, release, versions,
                async id => await runtime.GetStateAsync(id, http.RequestAborted).ConfigureAwait(false) is { } state && state.Tenant == caller.Tenant ? state : null,
                clock, http.RequestAborted).ConfigureAwait(false));
        }

        return Problems.Json(JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("releases");
            foreach (var r in reports) r.Write(w);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
    }

    private static async Task<IResult> StatsAsync(HttpContext http, IOrdoStore store, string? workflow, string? since)
    {
        var caller = ApiContext.Caller(http);
        var now = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        if (!Ordo.Stats.StatsWindow.TryParse(since, now, out var from))
        {
            return Problems.Invalid("since", Ordo.Stats.StatsWindow.Problem(since));
        }

        var data = await store.ReadStatsAsync(new Ordo.Stats.StatsQuery { Since = from, Tenant = caller.Tenant, Workflow = string.IsNullOrEmpty(workflow) ? null : workflow }, http.RequestAborted).ConfigureAwait(false);
        var report = Ordo.Stats.StatsReport.From(from, data);
        return Problems.Json(JsonOut.Write(w => Ordo.Stats.StatsJson.Write(w, report)));
    }

    /// <summary>Declares an operation's answers in the OpenAPI document: its JSON successes and its problems.</summary>
    private static RouteHandlerBuilder Answers(this RouteHandlerBuilder builder, int[] ok, int[] problems)
    {
        foreach (var status in ok) builder.Produces(status, contentType: status == 204 ? null : "application/json");
        foreach (var status in problems) builder.ProducesProblem(status);
        return builder;
    }

    /// <summary>
    /// The checkpoint <c>ordo audit checkpoint</c> recorded last: the audit log's size and root, when, and the signature,
    /// so that anyone can keep it outside the database. It holds hashes and counts only, nothing of any tenant's jobs.
    /// </summary>
    private static async Task<IResult> AuditCheckpointAsync(IOrdoStore store, CancellationToken cancellationToken)
    {
        var checkpoint = await store.GetLatestAuditCheckpointAsync(cancellationToken).ConfigureAwait(false);
        return checkpoint is null
            ? Problems.NotFound("no checkpoint of the audit log was taken yet (take one with: ordo audit checkpoint)")
            : Problems.Json(JsonOut.Write(w => Audit.AuditCheckpointJson.Write(w, checkpoint)));
    }

    private static async Task<IResult> ReadyAsync(IOrdoStore store, IHostApplicationLifetime lifetime, CancellationToken cancellationToken)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) return Problems.Of(503, "Stopping");
        try
        {
            await store.ListJobsAsync(new JobQuery { Limit = 1 }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StoreUnavailableException or Microsoft.Data.Sqlite.SqliteException or IOException)
        {
            return Problems.Of(503, "The store is not reachable", e.Message);
        }

        return Results.Text("ready");
    }

    /// <summary>Authenticates the bearer key, applies the key's rate limit, and turns refusals into problems.</summary>
    private static async ValueTask<object?> AuthenticateAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var services = http.RequestServices;
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Problems.Of(401, "An API key is required", "send it as Authorization: Bearer KEY");
        }

        var caller = await services.GetRequiredService<ApiKeyAuthenticator>().AuthenticateAsync(header[7..].Trim(), http.RequestAborted).ConfigureAwait(false);
        if (caller is null)
        {
            ApiLog.Refused(http, "unknown or revoked key");
            http.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            return Problems.Of(401, "The API key is not valid", "the key is unknown or was revoked");
        }

        using var lease = services.GetRequiredService<ApiRateLimiter>().Limiter.AttemptAcquire(caller.KeyId);
        if (!lease.IsAcquired)
        {
            var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
            http.Response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
            return Problems.Of(429, "Too many requests", $"this key's rate limit is reached; retry after {retry} s");
        }

        ApiContext.SetCaller(http, caller);
        try
        {
            return await next(context).ConfigureAwait(false);
        }
        catch (RequestTooLargeException)
        {
            var limit = services.GetRequiredService<IOptions<OrdoServerOptions>>().Value.MaxRequestBodyBytes;
            return Problems.Of(413, "The request body is too large", $"the limit is {limit} bytes");
        }
        catch (InvalidBodyException e)
        {
            return Problems.Invalid(e.Path, e.Message);
        }
        catch (QuotaExceededException e)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(e.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problems.Of(429, "The tenant is over its quota", e.Message);
        }
        catch (OrdoValidationException e)
        {
            var errors = e.Problems.GroupBy(p => InputPath(p.Path)).ToDictionary(g => g.Key, g => g.Select(p => p.Message).ToArray(), StringComparer.Ordinal);
            return Problems.Of(400, "The request is invalid", "the input does not match the workflow's input schema", errors);
        }
        catch (OrdoRefusedException e)
        {
            return Problems.Of(409, "Refused", e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException && !http.Response.HasStarted)
        {
            // A bug: the client gets a problem, never an empty 500; the log gets the exception.
            ApiLog.Failed(http.RequestServices.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().CreateLogger("Ordo.Server.Api"), http.Request.Method, http.Request.Path.Value ?? "", e);
            return Problems.Of(500, "Internal error", "the server failed to answer this request; its log holds the error");
        }
    }

    /// <summary>The JSON path in the request of a problem in the input, whether the validator wrote it as <c>amount</c>, <c>[0]</c> or <c>$.amount</c>.</summary>
    private static string InputPath(string path)
    {
        if (path.StartsWith('$')) path = path[1..].TrimStart('.');
        return path.Length == 0 ? "$.input" : path.StartsWith('[') ? "$.input" + path : "$.input." + path;
    }

    private static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Role(params string[] roles) => (context, next) =>
        roles.Any(ApiContext.Caller(context.HttpContext).Has)
            ? next(context)
            : ValueTask.FromResult<object?>(Problems.Of(403, "Forbidden", $"this key's identity does not hold the role '{string.Join("' or '", roles)}'"));

    private static async Task<IResult> SubmitAsync(HttpContext http, OrdoRuntime runtime, IOptions<OrdoServerOptions> options, ServerWorkflows workflows)
    {
        var caller = ApiContext.Caller(http);
        var body = await ApiContext.ReadObjectAsync(http, options.Value.MaxRequestBodyBytes).ConfigureAwait(false);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        string? name = null;
        if (!body.TryGetProperty("workflow", out var wf) || wf.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(wf.GetString()))
        {
            errors["$.workflow"] = ["a workflow name is required: \"name\" or \"name@3\""];
        }
        else
        {
            name = wf.GetString()!;
        }

        JsonElement input = JsonElementFactory.EmptyObject;
        if (body.TryGetProperty("input", out var given))
        {
            if (given.ValueKind == JsonValueKind.Object) input = given;
            else errors["$.input"] = ["the input must be a JSON object"];
        }

        var priority = 0;
        if (body.TryGetProperty("priority", out var p) && (p.ValueKind != JsonValueKind.Number || !p.TryGetInt32(out priority)))
        {
            errors["$.priority"] = ["the priority must be a whole number"];
        }

        foreach (var property in body.EnumerateObject().Where(x => x.Name is not ("workflow" or "input" or "priority")))
        {
            errors[Problems.Path("$", property.Name)] = ["unknown property"];
        }

        WorkflowDefinition? definition = null;
        if (name is not null && !workflows.TryResolve(name, out definition))
        {
            errors["$.workflow"] = [$"no workflow '{name}' is registered (GET /v1/workflows lists them)"];
        }

        if (errors.Count > 0) return Problems.Of(400, "The request is invalid", "see errors", errors);

        JobId? jobId = null;
        var idempotencyHeaders = http.Request.Headers["Idempotency-Key"];
        if (idempotencyHeaders.Count > 1) return Problems.Invalid("Idempotency-Key", "the Idempotency-Key header is given more than once");
        var idempotencyKey = idempotencyHeaders.ToString();
        if (idempotencyKey.Length > 0)
        {
            if (!IsPrintable(idempotencyKey)) return Problems.Invalid("Idempotency-Key", "the Idempotency-Key header holds a control character");
            if (idempotencyKey.Length > 255) return Problems.Invalid("Idempotency-Key", "the Idempotency-Key header is longer than 255 characters");
            // The job's id is derived from the tenant and the key: a repeated submission finds the job it created, and two
            // concurrent ones cannot both create a job (the store refuses a second job with the same id).
            jobId = IdempotentJobId(caller.Tenant, idempotencyKey);
            if (await runtime.Store.GetJobAsync(jobId.Value, caller.Tenant, http.RequestAborted).ConfigureAwait(false) is not null)
            {
                return Problems.Json(await JobJsonAsync(runtime, jobId.Value, caller.Tenant, http.RequestAborted).ConfigureAwait(false) ?? "{}", 200);
            }
        }

        var clock = http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        jobId ??= JobId.New(clock.GetUtcNow());
        WorkflowDefinition? shadow = null;
        if (!name!.Contains('@', StringComparison.Ordinal) && definition!.Project.Releases.TryGetValue(definition.Name, out var release))
        {
            // By name alone, the release decides: stable, or the canary for its share of job ids (judged first).
            var versions = workflows.All.Where(d => d.Name == definition.Name).ToList();
            if (Ordo.Configuration.ProjectChecks.CheckRelease(release, versions.SelectMany(Ordo.Workflows.WorkflowOutline.Of)) is { Count: > 0 } misconfigured)
            {
                // The server's ordo.yaml names a version it has not registered: no job is created, and the caller is told
                // what to fix where (a job pinned as name@VERSION still goes through).
                return Problems.Of(422, "The workflow's release names a version that is not registered",
                    string.Join("; ", misconfigured.Select(p => $"{(p.File is { } f ? System.IO.Path.GetFileName(f) + ": " : "")}{p.Path}: {p.Message}")) + $" (submit '{definition.Name}@VERSION' to pin a version)",
                    new Dictionary<string, string[]> { ["$.workflow"] = [.. misconfigured.Select(p => $"{p.Path}: {p.Message}")] });
            }

            var choice = await Ordo.Releases.ReleaseRouter.ChooseAsync(runtime.Store, release, [.. versions.Select(d => d.Version)], jobId.Value, clock, http.RequestAborted).ConfigureAwait(false);
            definition = versions.First(d => d.Version == choice.Version);
            shadow = choice.ShadowVersion is { } sv ? versions.First(d => d.Version == sv) : null;
        }

        try
        {
            await runtime.SubmitAsync(definition!, input, new SubmitOptions
            {
                Tenant = caller.Tenant, Submitter = caller.Identity, Priority = priority, InputName = "$.input", JobId = jobId,
            }, http.RequestAborted).ConfigureAwait(false);
        }
        catch (InvalidOperationException) when (idempotencyKey.Length > 0)
        {
            // A concurrent submission with the same key created the job first.
            return await JobJsonAsync(runtime, jobId.Value, caller.Tenant, http.RequestAborted).ConfigureAwait(false) is { } existing
                ? Problems.Json(existing, 200)
                : throw new InvalidOperationException("a job with this id exists in another tenant");
        }

        var created = jobId.Value;
        if (shadow is not null && shadow.InputSchema?.Validate(input) is not { Count: > 0 })
        {
            // Beside it, the shadow version in dry run: never counted toward the tenant's quotas, never asking for approval.
            await runtime.SubmitAsync(shadow, input, new SubmitOptions
            {
                Tenant = caller.Tenant, Submitter = caller.Identity, Priority = priority, InputName = "$.input", DryRun = true, ShadowOf = created,
            }, http.RequestAborted).ConfigureAwait(false);
        }

        ApiLog.Action(http, (log, tenant, who) => ApiLog.Submitted(log, tenant, who, created.Value, definition!.Ref));
        var json = await JobJsonAsync(runtime, created, caller.Tenant, http.RequestAborted).ConfigureAwait(false) ?? "{}";
        http.Response.Headers.Location = $"/v1/jobs/{created.Value}";
        return Problems.Json(json, 201);
    }

    private static bool IsPrintable(string text) => !text.Any(char.IsControl);

    internal static JobId IdempotentJobId(string tenant, string key)
        => new(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"ordo-idempotency\n{tenant}\n{key}")).AsSpan(0, 16)));

    private static async Task<IResult> ListJobsAsync(HttpContext http, IOrdoStore store, IOptions<OrdoServerOptions> options, string? status, string? workflow, string? limit, string? cursor)
    {
        var caller = ApiContext.Caller(http);
        var live = LiveList.Wanted(http.Request);
        if (live && !string.IsNullOrEmpty(cursor)) return Problems.Invalid("cursor", "a live list follows the first page; it takes no cursor");
        JobStatus? s = null;
        if (!string.IsNullOrEmpty(status))
        {
            if (!JobStatusNames.TryParse(status, out var parsed)) return Problems.Invalid("status", $"'{status}' is not a job status (queued, running, completed, failed, waiting_approval, cancelled)");
            s = parsed;
        }

        var take = 50;
        if (!string.IsNullOrEmpty(limit) && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out take) || take is < 1 or > 500))
        {
            return Problems.Invalid("limit", "the limit must be a whole number between 1 and 500");
        }
        JobId? after = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (!TryJobId(cursor, out var c) || await store.GetJobAsync(c, caller.Tenant, http.RequestAborted).ConfigureAwait(false) is null)
            {
                return Problems.Invalid("cursor", "the cursor is not one this API gave");
            }

            after = c;
        }

        string? name = null;
        int? version = null;
        if (!string.IsNullOrEmpty(workflow))
        {
            var at = workflow.LastIndexOf('@');
            if (at > 0 && int.TryParse(workflow[(at + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) (name, version) = (workflow[..at], v);
            else name = workflow;
        }

        var query = new JobQuery { Tenant = caller.Tenant, Status = s, Workflow = name, WorkflowVersion = version, After = after, Limit = take + 1 };
        if (live)
        {
            return new LiveList("job", options.Value.EventPollInterval, options.Value.StreamKeyRecheck, async ct =>
            {
                var current = await store.ListJobsAsync(query with { Limit = take }, ct).ConfigureAwait(false);
                return current.Select(j => new LiveItem(j.JobId.Value, JsonOut.Write(w => WriteListedJob(w, j)), JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("job_id", j.JobId.Value);
                    w.WriteEndObject();
                }))).ToList();
            });
        }

        var jobs = await store.ListJobsAsync(query, http.RequestAborted).ConfigureAwait(false);
        var page = jobs.Take(take).ToList();
        var json = JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("jobs");
            foreach (var j in page) WriteListedJob(w, j);
            w.WriteEndArray();
            JsonOut.WriteNullable(w, "next_cursor", jobs.Count > take ? page[^1].JobId.Value : null);
            w.WriteEndObject();
        });
        return Problems.Json(json);
    }

    /// <summary>A job as lists show it: the fields of <c>ordo jobs --json</c> and its submitter.</summary>
    private static void WriteListedJob(Utf8JsonWriter w, JobRecord j)
    {
        w.WriteStartObject();
        JobView.WriteJobRecordFields(w, j);
        w.WriteString("submitter", j.Submitter);
        w.WriteEndObject();
    }

    private static async Task<IResult> GetJobAsync(HttpContext http, OrdoRuntime runtime, string id)
    {
        var caller = ApiContext.Caller(http);
        if (!TryJobId(id, out var jobId)) return Problems.NotFound($"job {id} does not exist");
        var json = await JobJsonAsync(runtime, jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false);
        return json is null ? Problems.NotFound($"job {id} does not exist") : Problems.Json(json);
    }

    /// <summary>The job as <c>ordo run --json</c> shows it, plus tenant, submitter, times and parent; null when the tenant has no such job.</summary>
    internal static async Task<string?> JobJsonAsync(OrdoRuntime runtime, JobId id, string tenant, CancellationToken cancellationToken)
    {
        var record = await runtime.Store.GetJobAsync(id, tenant, cancellationToken).ConfigureAwait(false);
        if (record is null) return null;
        var state = await runtime.GetStateAsync(id, cancellationToken).ConfigureAwait(false);
        if (state is null) return null;
        WorkflowDefinition? workflow = null;
        try
        {
            workflow = await runtime.Workflows.GetAsync(runtime.Store, record.DefinitionHash, runtime.LoadOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (OrdoException)
        {
            // The steps are still listed from the log; only the order of the definition is missing.
        }

        var node = JsonNode.Parse(JsonOut.Write(w => JobView.WriteRunJson(w, state, workflow, "")))!.AsObject();
        // The server's file paths are not the caller's business.
        if (node["audit"] is JsonObject audit) audit.Remove("db");
        node["tenant"] = record.Tenant;
        node["submitter"] = record.Submitter;
        node["created_at"] = JsonOut.Timestamp(record.CreatedAt);
        node["updated_at"] = JsonOut.Timestamp(record.UpdatedAt);
        node["parent_job_id"] = record.ParentJobId?.Value;
        node["priority"] = record.Priority;
        return node.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    private static async Task EventsAsync(HttpContext http, IOrdoStore store, IOptions<OrdoServerOptions> options, IHostApplicationLifetime lifetime, string id, string? after)
    {
        var caller = ApiContext.Caller(http);
        var live = http.Request.Headers.Accept.Any(a => a is not null && a.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase));
        long from = 0;
        var resume = !string.IsNullOrEmpty(after) ? after : live ? http.Request.Headers["Last-Event-ID"].ToString() : null;
        if (!string.IsNullOrEmpty(resume) && (!long.TryParse(resume, NumberStyles.None, CultureInfo.InvariantCulture, out from) || from < 0))
        {
            await Problems.Invalid("after", "after (or Last-Event-ID) must be an event's seq, a whole number").ExecuteAsync(http).ConfigureAwait(false);
            return;
        }

        if (!TryJobId(id, out var jobId) || await store.GetJobAsync(jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false) is null)
        {
            await Problems.NotFound($"job {id} does not exist").ExecuteAsync(http).ConfigureAwait(false);
            return;
        }

        if (!live)
        {
            var events = new List<string>();
            await foreach (var e in store.ReadEventsAsync(jobId, caller.Tenant, from, http.RequestAborted).ConfigureAwait(false)) events.Add(JsonOut.Event(e));
            await Problems.Json("{\"events\":[" + string.Join(",", events) + "]}").ExecuteAsync(http).ConfigureAwait(false);
            return;
        }

        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        await http.Response.StartAsync(http.RequestAborted).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        var time = http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        var lastCheck = time.GetTimestamp();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                // A revoked key ends the stream within a few seconds; the client's reconnect is then refused (401).
                if (time.GetElapsedTime(lastCheck) >= options.Value.StreamKeyRecheck)
                {
                    if (!await ApiContext.StillAuthorizedAsync(http, stop.Token).ConfigureAwait(false)) break;
                    lastCheck = time.GetTimestamp();
                }

                // The status is read before the events: every event up to the end is sent before the stream closes.
                var job = await store.GetJobAsync(jobId, caller.Tenant, stop.Token).ConfigureAwait(false);
                if (job is null) break;
                await foreach (var e in store.ReadEventsAsync(jobId, caller.Tenant, from, stop.Token).ConfigureAwait(false))
                {
                    await http.Response.WriteAsync(FormattableString.Invariant($"id: {e.Seq}\ndata: {JsonOut.Event(e)}\n\n"), stop.Token).ConfigureAwait(false);
                    from = e.Seq;
                }

                await http.Response.Body.FlushAsync(stop.Token).ConfigureAwait(false);
                if (job.Status.IsTerminal()) break;
                await Task.Delay(options.Value.EventPollInterval, time, stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The client went away or the server stops: the client resumes with Last-Event-ID.
        }
    }

    private static async Task<IResult> DecideAsync(HttpContext http, OrdoRuntime runtime, IOptions<OrdoServerOptions> options, string id, string approvalId)
    {
        var caller = ApiContext.Caller(http);
        if (!TryJobId(id, out var jobId) || await runtime.Store.GetJobAsync(jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false) is null)
        {
            return Problems.NotFound($"job {id} does not exist");
        }

        var body = await ApiContext.ReadObjectAsync(http, options.Value.MaxRequestBodyBytes).ConfigureAwait(false);
        ApiContext.Only(body, "decision", "reason");
        var decision = body.TryGetProperty("decision", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        if (decision is not ("approve" or "deny")) return Problems.Invalid("$.decision", "the decision must be \"approve\" or \"deny\"");
        var reason = ApiContext.Text(body, "reason");

        var state = await runtime.GetStateAsync(jobId, http.RequestAborted).ConfigureAwait(false);
        var pending = state?.Approvals.Values.FirstOrDefault(a => a.Id == approvalId);
        if (pending is null) return Problems.NotFound($"job {id} has no approval {approvalId}");
        if (!caller.Has(pending.Role)) return Problems.Of(403, "Forbidden", $"approval {approvalId} is decided by the role '{pending.Role}', which this key's identity does not hold");
        var outcome = await runtime.DecideAsync(jobId, approvalId, caller.Identity, decision == "approve", reason, http.RequestAborted).ConfigureAwait(false);
        ApiLog.Action(http, (log, tenant, who) => ApiLog.Decided(log, tenant, who, decision, approvalId, jobId.Value, outcome.Status));
        state = await runtime.GetStateAsync(jobId, http.RequestAborted).ConfigureAwait(false);
        var approval = state!.Approvals.Values.First(a => a.Id == approvalId);
        return Problems.Json(JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("job_id", jobId.Value);
            w.WriteString("approval_id", outcome.ApprovalId);
            JsonOut.WriteNullable(w, "step", approval.StepId);
            w.WriteString("status", outcome.Status);
            w.WriteString("role", approval.Role);
            w.WriteNumber("count", approval.Count);
            w.WriteNumber("remaining", outcome.Remaining);
            w.WriteStartArray("approvers");
            foreach (var who in approval.Approvers) w.WriteStringValue(who);
            w.WriteEndArray();
            w.WriteString("job_status", outcome.JobStatus.ToWire());
            w.WriteEndObject();
        }));
    }

    private static async Task<IResult> CancelAsync(HttpContext http, OrdoRuntime runtime, IOptions<OrdoServerOptions> options, string id)
    {
        var caller = ApiContext.Caller(http);
        var job = TryJobId(id, out var jobId) ? await runtime.Store.GetJobAsync(jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false) : null;
        if (job is null) return Problems.NotFound($"job {id} does not exist");
        var own = caller.Has(ApiRoles.Submitter) && Identities.Same(job.Submitter, caller.Identity);
        if (!own && !caller.Has(ApiRoles.Operator))
        {
            return Problems.Of(403, "Forbidden", "cancelling a job needs the role 'submitter' for one's own jobs or 'operator' for any job of the tenant");
        }

        var body = await ApiContext.ReadObjectAsync(http, options.Value.MaxRequestBodyBytes).ConfigureAwait(false);
        ApiContext.Only(body, "reason");
        var reason = ApiContext.Text(body, "reason");
        var cancelled = await runtime.CancelAsync(jobId, string.IsNullOrWhiteSpace(reason) ? "cancelled through the API" : reason!, caller.Identity, http.RequestAborted).ConfigureAwait(false);
        if (!cancelled) return Problems.Of(409, "Refused", $"job {id} has already ended ({job.Status.ToWire()})");
        ApiLog.Action(http, (log, tenant, who) => ApiLog.Cancelled(log, tenant, who, jobId.Value));
        return Problems.Json(await JobJsonAsync(runtime, jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false) ?? "{}");
    }

    private static async Task<IResult> ApprovalsAsync(HttpContext http, OrdoRuntime runtime, IOptions<OrdoServerOptions> options, string? status)
    {
        var caller = ApiContext.Caller(http);
        if (!string.IsNullOrEmpty(status) && status != "pending") return Problems.Invalid("status", "only status=pending is supported");
        if (LiveList.Wanted(http.Request))
        {
            // One stream re-reads the state of a waiting job only when the job changed since its last read.
            var seen = new Dictionary<JobId, (DateTimeOffset UpdatedAt, List<ApprovalState> Pending)>();
            return new LiveList("approval", options.Value.EventPollInterval, options.Value.StreamKeyRecheck, async ct => (await PendingApprovalsAsync(runtime, caller, ct, seen).ConfigureAwait(false))
                .Select(x => new LiveItem($"{x.Job.Value} {x.Approval.Id}", JsonOut.Write(w => WriteApproval(w, x.Job, x.Approval)), JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("job_id", x.Job.Value);
                    w.WriteString("approval_id", x.Approval.Id);
                    w.WriteEndObject();
                }))).ToList());
        }

        var items = await PendingApprovalsAsync(runtime, caller, http.RequestAborted).ConfigureAwait(false);
        return Problems.Json(JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("approvals");
            foreach (var (job, a) in items) WriteApproval(w, job, a);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
    }

    /// <summary>The tenant's pending approvals that the caller's roles may decide, oldest request first within a job.</summary>
    /// <remarks>With <paramref name="cache"/>, a job whose <c>updated_at</c> has not moved since the last call is not read again.</remarks>
    private static async Task<List<(JobId Job, ApprovalState Approval)>> PendingApprovalsAsync(OrdoRuntime runtime, ApiCaller caller, CancellationToken cancellationToken,
        Dictionary<JobId, (DateTimeOffset UpdatedAt, List<ApprovalState> Pending)>? cache = null)
    {
        var jobs = await runtime.Store.ListJobsAsync(new JobQuery { Tenant = caller.Tenant, Status = JobStatus.WaitingApproval, Limit = 500 }, cancellationToken).ConfigureAwait(false);
        var items = new List<(JobId Job, ApprovalState Approval)>();
        foreach (var job in jobs)
        {
            if (cache?.TryGetValue(job.JobId, out var known) != true || known.UpdatedAt != job.UpdatedAt)
            {
                var state = await runtime.GetStateAsync(job.JobId, cancellationToken).ConfigureAwait(false);
                if (state is null) continue;
                known = (job.UpdatedAt, [.. state.Approvals.Values.Where(a => a.IsPending && caller.Has(a.Role)).OrderBy(a => a.RequestedAt)]);
                if (cache is not null) cache[job.JobId] = known;
            }

            items.AddRange(known.Pending.Select(a => (job.JobId, a)));
        }

        if (cache is not null)
        {
            var waiting = jobs.Select(j => j.JobId).ToHashSet();
            foreach (var gone in cache.Keys.Where(k => !waiting.Contains(k)).ToList()) cache.Remove(gone);
        }

        return items;
    }

    private static void WriteApproval(Utf8JsonWriter w, JobId job, ApprovalState a)
    {
        w.WriteStartObject();
        w.WriteString("job_id", job.Value);
        w.WriteString("approval_id", a.Id);
        JsonOut.WriteNullable(w, "step", a.StepId);
        w.WriteString("role", a.Role);
        w.WriteNumber("count", a.Count);
        w.WriteNumber("decided", a.Approvers.Count());
        if (a.ExpiresAt is { } exp) w.WriteString("expires_at", JsonOut.Timestamp(exp)); else w.WriteNull("expires_at");
        w.WritePropertyName("show");
        if (a.Show is { } show) show.WriteTo(w); else w.WriteNullValue();
        w.WriteEndObject();
    }

    /// <summary>The switches that stop this tenant's jobs: its own and those set for every tenant (with <c>ordo kill</c> or the config).</summary>
    private static async Task<IResult> ListKillSwitchesAsync(HttpContext http, IOrdoStore store)
    {
        var tenant = ApiContext.Caller(http).Tenant;
        var switches = (await store.ListKillSwitchesAsync(http.RequestAborted).ConfigureAwait(false)).Where(s => s.Covers(tenant));
        return Problems.Json(JsonOut.Write(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("kill_switches");
            foreach (var s in switches) WriteSwitch(w, s);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
    }

    private static async Task<IResult> SetKillSwitchAsync(HttpContext http, IOrdoStore store, IOptions<OrdoServerOptions> options, string target)
    {
        var caller = ApiContext.Caller(http);
        if (!KillSwitchTarget.TryParse(target, out var parsed)) return Problems.Invalid("target", $"'{target}' is not a kill switch target (tool:NAME, agent:NAME, workflow:NAME or step:KIND)");
        var body = await ApiContext.ReadObjectAsync(http, options.Value.MaxRequestBodyBytes).ConfigureAwait(false);
        ApiContext.Only(body, "reason");
        var reason = ApiContext.Text(body, "reason");
        var time = http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        var set = new KillSwitch(parsed.ToString(), reason, caller.Identity, time.GetUtcNow(), caller.Tenant);
        await store.SetKillSwitchAsync(set, http.RequestAborted).ConfigureAwait(false);
        ApiLog.Action(http, (log, tenant, who) => ApiLog.KillSwitchSet(log, tenant, who, set.Target));
        return Problems.Json(JsonOut.Write(w => WriteSwitch(w, set)));
    }

    private static async Task<IResult> ClearKillSwitchAsync(HttpContext http, IOrdoStore store, string target)
    {
        var tenant = ApiContext.Caller(http).Tenant;
        if (!KillSwitchTarget.TryParse(target, out var parsed)) return Problems.Invalid("target", $"'{target}' is not a kill switch target");
        if (await store.ClearKillSwitchAsync(parsed.ToString(), tenant, http.RequestAborted).ConfigureAwait(false))
        {
            ApiLog.Action(http, (log, t, who) => ApiLog.KillSwitchCleared(log, t, who, parsed.ToString()));
            return Results.NoContent();
        }

        var global = (await store.ListKillSwitchesAsync(http.RequestAborted).ConfigureAwait(false)).Any(s => s.Tenant is null && s.Target == parsed.ToString());
        return global
            ? Problems.Of(409, "Refused", $"kill switch {parsed} stops every tenant: it was set on the server (ordo kill or the config) and is cleared there")
            : Problems.NotFound($"kill switch {parsed} is not set");
    }

    private static void WriteSwitch(Utf8JsonWriter w, KillSwitch s)
    {
        w.WriteStartObject();
        w.WriteString("target", s.Target);
        JsonOut.WriteNullable(w, "reason", s.Reason);
        w.WriteString("set_by", s.SetBy);
        w.WriteString("set_at", JsonOut.Timestamp(s.SetAt));
        w.WriteString("scope", s.Tenant is null ? "all_tenants" : "tenant");
        w.WriteEndObject();
    }

    private static IResult ListWorkflows(ServerWorkflows workflows) => Problems.Json(JsonOut.Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("workflows");
        foreach (var d in workflows.All)
        {
            w.WriteStartObject();
            w.WriteString("workflow", d.Name);
            w.WriteNumber("version", d.Version);
            JsonOut.WriteNullable(w, "description", d.Description);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }));

    /// <summary>Parses a job id of the API (32 hex digits); false for anything else, which then names no job.</summary>
    internal static bool TryJobId(string text, out JobId id)
    {
        try
        {
            id = JobId.Parse(text);
            return id.Value.Length == 32;
        }
        catch (FormatException)
        {
            id = default;
            return false;
        }
    }
}

/// <summary>
/// The rate limiter of the API: a token bucket per API key holding <see cref="OrdoServerOptions.RateLimitPermits"/>
/// requests, refilled evenly over <see cref="OrdoServerOptions.RateLimitWindow"/> (each second its share), so that a
/// refused client's <c>Retry-After</c> says when a request will pass (seconds, not the rest of a whole window).
/// </summary>
internal sealed class ApiRateLimiter(IOptions<OrdoServerOptions> options) : IDisposable
{
    public PartitionedRateLimiter<string> Limiter { get; } = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => Bucket(options.Value)));

    private static TokenBucketRateLimiterOptions Bucket(OrdoServerOptions o)
    {
        var period = o.RateLimitWindow < TimeSpan.FromSeconds(1) ? o.RateLimitWindow : TimeSpan.FromSeconds(1);
        var perPeriod = Math.Ceiling(o.RateLimitPermits * (period / o.RateLimitWindow));
        return new TokenBucketRateLimiterOptions
        {
            TokenLimit = o.RateLimitPermits, ReplenishmentPeriod = period, TokensPerPeriod = (int)Math.Clamp(perPeriod, 1, int.MaxValue),
            QueueLimit = 0, AutoReplenishment = true,
        };
    }

    public void Dispose() => Limiter.Dispose();
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Ordo.Engine;
using Ordo.Events;
using Ordo.Graphs;
using Ordo.Server.Auth;
using Ordo.Workflows;

namespace Ordo.Server.Api;

/// <summary>
/// <c>GET /v1/jobs/{id}/graph?format=svg|mermaid|dot</c> (viewer): the graph of the workflow a job is pinned to, with the
/// path the job took and each step's status — the drawing of <c>ordo graph --job</c>. SVG (<c>image/svg+xml</c>) by
/// default; Mermaid and DOT as <c>text/plain</c>. Another tenant's job does not exist for the caller (404).
/// </summary>
internal static class JobGraphEndpoint
{
    public static void Map(IEndpointRouteBuilder v1)
        => v1.MapGet("/jobs/{id}/graph", GraphAsync)
            .AddEndpointFilter((context, next) => ApiContext.Caller(context.HttpContext).Has(ApiRoles.Viewer)
                ? next(context)
                : ValueTask.FromResult<object?>(Problems.Of(403, "Forbidden", $"this key's identity does not hold the role '{ApiRoles.Viewer}'")))
            .WithSummary("A job's workflow graph with the path it took and each step's status (SVG, or ?format=mermaid|dot)");

    private static async Task<IResult> GraphAsync(HttpContext http, OrdoRuntime runtime, string id, string? format)
    {
        var caller = ApiContext.Caller(http);
        var drawing = GraphFormat.Svg;
        if (format is not null && !GraphRenderer.TryParseFormat(format, out drawing))
        {
            return Problems.Invalid("format", $"'{format}' is not a graph format (svg, mermaid or dot)");
        }

        var record = OrdoApiEndpoints.TryJobId(id, out var jobId) ? await runtime.Store.GetJobAsync(jobId, caller.Tenant, http.RequestAborted).ConfigureAwait(false) : null;
        var state = record is null ? null : await runtime.GetStateAsync(jobId, http.RequestAborted).ConfigureAwait(false);
        if (record is null || state is null) return Problems.NotFound($"job {id} does not exist");

        WorkflowDefinition workflow;
        try
        {
            workflow = await runtime.Workflows.GetAsync(runtime.Store, record.DefinitionHash, runtime.LoadOptions, http.RequestAborted).ConfigureAwait(false);
        }
        catch (OrdoException e)
        {
            return Problems.Of(409, "The job's definition cannot be read", e.Message);
        }

        var events = new List<EventEnvelope>();
        await foreach (var e in runtime.Store.ReadEventsAsync(jobId, caller.Tenant, 0, http.RequestAborted).ConfigureAwait(false)) events.Add(e);
        var graph = WorkflowGraph.From(workflow);
        var text = GraphRenderer.Render(graph, drawing, JobGraphOverlay.From(graph, workflow, state, events));
        http.Response.Headers.CacheControl = "no-store";
        return Results.Text(text, GraphRenderer.MediaType(drawing), System.Text.Encoding.UTF8);
    }
}

using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Ordo.Server.Api;

/// <summary>
/// Completes the generated OpenAPI document of the v1 API: its title and description, the bearer key scheme required
/// on every <c>/v1</c> operation, the <c>Idempotency-Key</c> header of a submission, and the problem answers each
/// operation may give (RFC 9457, <c>application/problem+json</c>).
/// </summary>
internal static class OpenApiDocument
{
    private const string Scheme = "apiKey";

    public static void Configure(OpenApiOptions options)
    {
        options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Ordo API", Version = "v1",
                Description = "Jobs, their events (live as server-sent events), approvals, cancel, kill switches and workflows of one tenant per API key.",
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[Scheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer",
                Description = "An API key of `ordo keys create` (or a hash in ordo.yaml): Authorization: Bearer ordo_...",
            };
            return Task.CompletedTask;
        });
        options.AddOperationTransformer((operation, context, _) =>
        {
            var path = context.Description.RelativePath ?? "";
            if (!path.StartsWith("v1/", StringComparison.Ordinal) && path != "v1") return Task.CompletedTask;
            operation.Security ??= [];
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Scheme, context.Document)] = [] });
            if (context.Description.HttpMethod == "POST" && path == "v1/jobs")
            {
                operation.Parameters ??= [];
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = "Idempotency-Key", In = ParameterLocation.Header, Required = false,
                    Description = "The same key again (same tenant) answers 200 with the job it created, and creates nothing.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 255 },
                });
            }

            return Task.CompletedTask;
        });
    }
}

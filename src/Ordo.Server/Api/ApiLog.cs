using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ordo.Server.Api;

/// <summary>
/// What the API logs (category <c>Ordo.Server.Audit</c>): each operator action with the tenant and identity of the key
/// that made it, and refused keys. Never a key, a hash, a body or an input. The durable record of an approval or a
/// cancel is the job's own event log; a kill switch keeps who set it and when in the store.
/// </summary>
internal static partial class ApiLog
{
    public const string Category = "Ordo.Server.Audit";

    public static ILogger For(HttpContext http) => http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(Category);

    /// <summary>Logs an operator action of the caller, when the audit category is enabled.</summary>
    public static void Action(HttpContext http, Action<ILogger, string, string> write)
    {
        var logger = For(http);
        if (!logger.IsEnabled(LogLevel.Information)) return;
        var caller = ApiContext.Caller(http);
        write(logger, caller.Tenant, caller.Identity);
    }

    /// <summary>Logs a refused key (never the key), when the audit category is enabled.</summary>
    public static void Refused(HttpContext http, string reason)
    {
        var logger = For(http);
        if (!logger.IsEnabled(LogLevel.Information)) return;
        var remote = http.Connection.RemoteIpAddress?.ToString();
        KeyRefused(logger, http.Request.Path.Value ?? "", remote, reason);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Tenant}/{Identity} submitted job {JobId} of {Workflow}")]
    public static partial void Submitted(ILogger logger, string tenant, string identity, string jobId, string workflow);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Tenant}/{Identity} decided {Decision} on approval {ApprovalId} of job {JobId}: {Status}")]
    public static partial void Decided(ILogger logger, string tenant, string identity, string decision, string approvalId, string jobId, string status);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "{Tenant}/{Identity} cancelled job {JobId}")]
    public static partial void Cancelled(ILogger logger, string tenant, string identity, string jobId);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "{Tenant}/{Identity} set kill switch {Target} for the tenant")]
    public static partial void KillSwitchSet(ILogger logger, string tenant, string identity, string target);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "{Tenant}/{Identity} cleared kill switch {Target} of the tenant")]
    public static partial void KillSwitchCleared(ILogger logger, string tenant, string identity, string target);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "a request to {Path} from {Remote} was refused: {Reason}")]
    public static partial void KeyRefused(ILogger logger, string path, string? remote, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Error, Message = "{Method} {Path} failed with an internal error")]
    public static partial void Failed(ILogger logger, string method, string path, Exception error);
}

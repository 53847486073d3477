using System.Globalization;
using System.Net;
using System.Text;

namespace Ordo.Replay;

/// <summary>
/// The HTTP of <c>http</c> agents in a replay: each request is answered with the body (or the error status) recorded for
/// the same call of the job, found by the headers the runner sends (<c>X-Ordo-Job</c>, <c>X-Ordo-Attempt</c>,
/// <c>Idempotency-Key</c>); nothing leaves the process.
/// </summary>
internal sealed class RecordedHttpAgentHandler(ReplaySource source) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var job = Header(request, "X-Ordo-Job");
        var attempt = Header(request, "X-Ordo-Attempt");
        var key = Header(request, "Idempotency-Key");
        var cut = key?.LastIndexOf(':') ?? -1;
        var first = key?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (job is null || attempt is null || key is null || cut <= first || first < 0)
        {
            source.Miss($"an http request to {request.RequestUri} that is not an agent's call");
            return new HttpResponseMessage(HttpStatusCode.BadRequest) { Content = new StringContent("", Encoding.UTF8, "application/json") };
        }

        // The key is JOB:WORK_KEY:INDEX; the call id is WORK_KEY.ATTEMPT.mINDEX.
        var callId = $"{key[(first + 1)..cut]}.{attempt}.m{key[(cut + 1)..]}";
        var calls = await source.CallsOfAsync(new JobId(job), cancellationToken).ConfigureAwait(false);
        if (calls?.ModelAnswer(callId) is { } answer)
        {
            source.CountServed();
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(answer.Content ?? "", Encoding.UTF8, "application/json") };
        }

        if (calls?.ModelFailure(callId) is { Error: var error } && error.StartsWith("http_", StringComparison.Ordinal)
            && int.TryParse(error.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            source.CountServed();
            return new HttpResponseMessage((HttpStatusCode)status) { Content = new StringContent("", Encoding.UTF8, "application/json") };
        }

        source.Miss($"http agent call {callId} of job {job}: not in the recording");
        return new HttpResponseMessage(HttpStatusCode.NotImplemented) { Content = new StringContent("", Encoding.UTF8, "application/json") };
    }

    private static string? Header(HttpRequestMessage request, string name)
        => request.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}

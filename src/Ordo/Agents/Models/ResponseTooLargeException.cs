namespace Ordo.Agents.Models;

/// <summary>A provider's answer is larger than a model call may read.</summary>
internal sealed class ResponseTooLargeException(string message) : HttpRequestException(message);

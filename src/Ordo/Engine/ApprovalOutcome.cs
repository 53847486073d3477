using Ordo.State;

namespace Ordo.Engine;

/// <summary>The result of a decision on an approval.</summary>
/// <param name="ApprovalId">The approval.</param>
/// <param name="Status">Its status after the decision: <c>pending</c>, <c>approved</c>, <c>denied</c> or <c>expired</c>.</param>
/// <param name="JobStatus">The job's status after the decision.</param>
/// <param name="Remaining">Approvals still needed (two-person rule).</param>
public sealed record ApprovalOutcome(string ApprovalId, string Status, JobStatus JobStatus, int Remaining);

/// <summary>A decision was refused (wrong approver, unknown approval…); nothing was recorded.</summary>
public sealed class ApprovalException(string message) : OrdoRefusedException(message);

namespace Ordo.Agents.Models;

/// <summary>Where a call for a tier goes.</summary>
/// <param name="Tier">The tier called.</param>
/// <param name="FallbackFrom">The tier asked for, when its circuit was open and the call went to its fallback; else null.</param>
public sealed record ModelRoute(ModelTier Tier, string? FallbackFrom);

using System.Security.Cryptography;
using System.Text;

namespace Ordo.Faults;

/// <summary>Decides, by a stable hash, whether a call gets a fault: the same seed, job and call always decide the same.</summary>
internal static class FaultDecision
{
    /// <summary>Whether a call falls within <paramref name="rate"/>.</summary>
    public static bool Hit(int seed, string job, string call, double rate)
    {
        if (rate >= 1) return true;
        if (rate <= 0) return false;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}:{job}:{call}"));
        return (BitConverter.ToUInt64(hash, 0) >> 11) / (double)(1UL << 53) < rate;
    }
}

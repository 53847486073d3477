namespace Ordo.Cli.Bench;

/// <summary>Medians and the rounding the peer harness uses for its JSON.</summary>
internal static class BenchStats
{
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no samples", nameof(values));
        var s = values.Order().ToArray();
        var m = s.Length / 2;
        return s.Length % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
    }

    public static double Round(double value, int digits) => Math.Round(value, digits, MidpointRounding.AwayFromZero);
}

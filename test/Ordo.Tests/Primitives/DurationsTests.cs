namespace Ordo.Tests.Primitives;

/// <summary>Durations shown to people: rounded up to the unit worth saying, never a fraction of a millisecond.</summary>
public sealed class DurationsTests
{
    [Theory]
    [InlineData(29927.6026, "30 s")]
    [InlineData(30000, "30 s")]
    [InlineData(500, "500 ms")]
    [InlineData(0.4, "1 ms")]
    [InlineData(0, "0 s")]
    [InlineData(1000, "1 s")]
    [InlineData(1000.1, "2 s")]
    [InlineData(59999, "1 min")]
    [InlineData(125000, "2 min 5 s")]
    [InlineData(3599500, "1 h")]
    [InlineData(3900000, "1 h 5 min")]
    [InlineData(86400000, "1 d")]
    [InlineData(97200000, "1 d 3 h")]
    public void Readable_RoundsUpToTheUnitWorthSaying(double ms, string expected)
        => Assert.Equal(expected, Durations.Readable(TimeSpan.FromMilliseconds(ms)));
}

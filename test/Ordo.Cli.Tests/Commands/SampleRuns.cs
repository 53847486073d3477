namespace Ordo.Cli.Tests.Commands;

/// <summary>The test classes that read the two sample jobs of <see cref="SampleRunFixture"/>, which is created once for all of them.</summary>
[CollectionDefinition(Name)]
public sealed class SampleRuns : ICollectionFixture<SampleRunFixture>
{
    public const string Name = "sample runs";
}

using BenchmarkDotNet.Running;

// Run all:  dotnet run -c Release --project bench/Ordo.Benchmarks -- --filter '*'
// One:      dotnet run -c Release --project bench/Ordo.Benchmarks -- --filter '*EventChain*'
BenchmarkSwitcher.FromAssembly(typeof(Ordo.Benchmarks.StepFixture).Assembly).Run(args);

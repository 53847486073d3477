using System.Text.Json;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Commands;

[Collection(SampleRuns.Name)]
public sealed class RunCommandTests(SampleRunFixture sample)
{
    [Fact]
    public void Run_Sample_ExitsZeroAndNamesTheJobAndItsAuditTrail()
    {
        var r = sample.HumanRun;
        Assert.True(r.ExitCode == 0, r.ToString());
        var id = sample.HumanJobId;
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Contains($"job {id}  invoice-reconciliation@1  tenant default  completed", r.Out);
        Assert.Contains($"hash-chained events in {sample.Workspace.Db}", r.Out);
        Assert.Contains($"ordo events {id} --db ", r.Out);
        Assert.Contains($"ordo audit verify {id} --db ", r.Out);
        Assert.True(r.Err.Length == 0, r.ToString());

        // Without a terminal, progress is one line per finished attempt: the first extraction breaks its contract and is retried.
        Assert.Contains(r.OutLines, l => l.StartsWith("✗ extract (attempt 1)", StringComparison.Ordinal) && l.Contains("contract_violation", StringComparison.Ordinal));
        Assert.Contains(r.OutLines, l => l.StartsWith("✓ extract (attempt 2)", StringComparison.Ordinal));
        Assert.Contains(r.OutLines, l => l.StartsWith("✓ post (attempt 1)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_SuggestedAuditCommands_WorkAsPrinted()
    {
        var id = sample.HumanJobId;
        Assert.NotEqual("", id);
        foreach (var command in new[] { "ordo events ", "ordo audit verify " })
        {
            var line = sample.HumanRun.OutLines.Single(l => l.StartsWith(command + id, StringComparison.Ordinal));
            var args = line[..line.IndexOf("  (", StringComparison.Ordinal)].Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToArray();
            Assert.Contains("--db", args);
            await CliRunner.RunExpectingAsync(0, args);
        }
    }

    [Fact]
    public void RunJson_Sample_PrintsExactlyOneObjectWithTheDocumentedFields()
    {
        var r = sample.JsonRun;
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Single(r.OutLines);
        Assert.True(r.Err.Length == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(JsonValueKind.Object, j.ValueKind);

        Assert.Matches("^[0-9a-f]{32}$", j.GetProperty("job_id").GetString());
        Assert.Equal("invoice-reconciliation@1", j.GetProperty("workflow").GetString());
        Assert.Equal("completed", j.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, j.GetProperty("reason").ValueKind);

        var artifacts = j.GetProperty("artifacts");
        Assert.Equal(["invoice_lines", "match_report", "posting"], artifacts.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        foreach (var a in artifacts.EnumerateObject())
        {
            Assert.Equal("verified", a.Value.GetProperty("status").GetString());
            Assert.Equal(JsonValueKind.Object, a.Value.GetProperty("value").ValueKind);
        }

        var lines = artifacts.GetProperty("invoice_lines").GetProperty("value").GetProperty("lines");
        Assert.Equal(4, lines.GetArrayLength());
        Assert.All(lines.EnumerateArray(), l => Assert.Equal("EUR", l.GetProperty("currency").GetString()));
        var report = artifacts.GetProperty("match_report").GetProperty("value");
        Assert.Equal(3, report.GetProperty("matched").GetArrayLength());
        Assert.Equal("INV-1003", report.GetProperty("exceptions")[0].GetProperty("invoice_id").GetString());

        var steps = j.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(["extract", "lookup", "reconcile", "flag", "post"], steps.Select(s => s.GetProperty("id").GetString()));
        Assert.All(steps, s =>
        {
            Assert.Equal("succeeded", s.GetProperty("status").GetString());
            Assert.Equal(JsonValueKind.Number, s.GetProperty("duration_ms").ValueKind);
            Assert.True(s.GetProperty("duration_ms").GetDouble() >= 0);
        });
        Assert.Equal([2, 1, 1, 1, 1], steps.Select(s => s.GetProperty("attempts").GetInt32()));

        Assert.Equal(JsonValueKind.Array, j.GetProperty("approvals").ValueKind);
        var usage = j.GetProperty("usage");
        Assert.True(usage.GetProperty("tokens").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Number, usage.GetProperty("cost").ValueKind);
        Assert.True(usage.GetProperty("cost").GetDouble() > 0);
        Assert.Equal(3, usage.GetProperty("tool_calls").GetInt32());
    }

    [Fact]
    public async Task Run_AgentOutputBreakingItsContractOnEveryAttempt_FailsTheJobWithExitThree()
    {
        using var w = Workspace.WithSample();
        // Every attempt forgets the currency that the invoice_lines schema requires.
        w.Write("sample/fixtures/responses.yaml", """
            responses:
              - agent: extractor
                content: '{"lines": [{"invoice_id": "INV-1001", "vendor": "ACME Corp", "amount": 120.00}]}'
                usage: { input_tokens: 100, output_tokens: 20 }
            """);

        var r = await CliRunner.RunExpectingAsync(3, SampleJob.Args(w, "run", "--json"));
        var j = r.Json();
        var id = j.GetProperty("job_id").GetString()!;
        Assert.Equal("failed", j.GetProperty("status").GetString());
        Assert.Contains("extract", j.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains("currency", j.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var extract = j.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("id").GetString() == "extract");
        Assert.Equal("failed", extract.GetProperty("status").GetString());
        Assert.Equal(3, extract.GetProperty("attempts").GetInt32());
        Assert.DoesNotContain(j.GetProperty("steps").EnumerateArray(), s => s.GetProperty("id").GetString() == "lookup");
        Assert.All(j.GetProperty("artifacts").EnumerateObject(), a => Assert.NotEqual("verified", a.Value.GetProperty("status").GetString()));

        var events = (await CliRunner.RunExpectingAsync(0, "events", id, "--json", "--db", w.Db)).JsonLines();
        var types = events.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal(3, types.Count(t => t == "ArtifactRejected"));
        Assert.Equal(3, types.Count(t => t == "StepFailed"));
        Assert.DoesNotContain("ArtifactVerified", types);
        Assert.DoesNotContain("StepSucceeded", types);
        Assert.DoesNotContain("ToolCallRequested", types);
        Assert.Equal("JobFailed", types[^1]);
        Assert.All(events.Where(e => e.GetProperty("type").GetString() == "StepFailed"), e =>
        {
            Assert.Equal("contract_violation", e.GetProperty("payload").GetProperty("error").GetString());
            // The failed attempt is stamped with what produced the output, like a successful one.
            Assert.Equal("extractor@2", e.GetProperty("agent").GetString());
            Assert.StartsWith("sha256:", e.GetProperty("prompt_hash").GetString(), StringComparison.Ordinal);
        });

        var show = (await CliRunner.RunExpectingAsync(0, "show", id, "--json", "--db", w.Db)).Json();
        Assert.All(show.GetProperty("artifacts").EnumerateObject(), a => Assert.Equal("rejected", a.Value.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task Run_FailedJobInHumanMode_ExitsThreeAndSaysWhy()
    {
        using var w = Workspace.WithSample();
        w.Write("sample/fixtures/responses.yaml", """
            responses:
              - { agent: extractor, content: '{"lines": []}' }
            """);

        var r = await CliRunner.RunExpectingAsync(3, SampleJob.Args(w, "run"));
        Assert.Contains("failed", r.Out, StringComparison.Ordinal);
        Assert.Contains("reason: step 'extract' failed after 3 attempts", r.Out, StringComparison.Ordinal);
    }
}

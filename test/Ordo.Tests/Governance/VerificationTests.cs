using System.Text.Json;
using Ordo.Events;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>Evidence, confidence, authoritative fields and gates, through real YAML workflows.</summary>
public sealed class VerificationTests
{
    private const string Config = """
        models:
          fast: { provider: scripted, fixtures: fixtures.yaml }
        tools: [tools.yaml]
        """;

    private static async Task<(GovernanceHarness H, LoopbackServer Ledger)> SetupAsync(string fixtures, string workflow, string? tools = null)
    {
        var ledger = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"invoice_id":"INV-1","amount":120.5,"vendor":"Acme"}"""));
        var h = new GovernanceHarness();
        h.Write("ordo.yaml", Config);
        h.Write("fixtures.yaml", fixtures);
        h.Write("tools.yaml", tools ?? $$"""
            tools:
              ledger.get:
                kind: http
                method: GET
                url: "{{ledger.Address}}invoices/{invoice_id}"
                effect: read
                args: { type: object, required: [invoice_id], properties: { invoice_id: { type: string } } }
            """);
        h.Write("workflow.yaml", workflow);
        h.AddCodeAgent("Test.Reader", async (ctx, ct) =>
        {
            var r = await ctx.Tools.CallAsync("ledger.get", Ordo.Json.Of(new { invoice_id = "INV-1" }), ct);
            return Ordo.Json.Of(new { call_id = r.CallId });
        });
        return (h, ledger);
    }

    [Fact]
    public async Task OutputWithoutEvidence_IsRejected_AndNeverPropagates()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 120.5, "confidence": 0.9}' }
            """, """
            ordo: 1
            workflow: evidence
            version: 1
            artifacts:
              finding: { schema: { type: object, required: [amount] }, evidence: required }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: review, agent: reviewer, retry: { max_attempts: 2, backoff: 1ms }, next: use }
              - { id: use, transform: { set: { seen: "${ artifacts.finding }" } } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Failed, state.Status);
            Assert.Contains("evidence is required", state.Reason);
            var events = await h.EventsAsync(state.JobId);
            var rejected = events.Where(e => e.Type == EventTypes.ArtifactRejected).Select(e => e.GetPayload<ArtifactVerdictPayload>()).ToList();
            Assert.Equal(2, rejected.Count);
            Assert.All(rejected, r => Assert.Contains("evidence", r.Reason));
            Assert.All(events.Where(e => e.Type == EventTypes.StepFailed), e => Assert.Equal("evidence_missing", e.GetPayload<StepFailedPayload>().Error));
            Assert.Null(state.Artifacts["finding"].Verified);
            Assert.False(state.Steps.ContainsKey("use"));
        }
    }

    [Fact]
    public async Task EvidenceCitingAToolCallOfThisJob_IsAccepted_AndAnUnknownCallIsRejected()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, attempt: 1, content: '{"amount": 120.5, "evidence": [{"source": "tool:ledger.get", "ref": "nope#9.1.0"}]}' }
              - { agent: reviewer, content: '{"amount": 120.5, "evidence": [{"source": "tool:ledger.get", "ref": "read#1.1.0", "quote": "120.5"}]}' }
            """, """
            ordo: 1
            workflow: evidence-ok
            version: 1
            artifacts:
              finding: { schema: { type: object, required: [amount] }, evidence: required }
            agents:
              reader: { kind: code, type: Test.Reader, tools: [ledger.get] }
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: read, agent: reader, next: review }
              - { id: review, agent: reviewer, retry: { max_attempts: 2, backoff: 1ms } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal(2, state.Artifacts["finding"].Verified!.Version);
            var events = await h.EventsAsync(state.JobId);
            var rejected = events.Single(e => e.Type == EventTypes.ArtifactRejected).GetPayload<ArtifactVerdictPayload>();
            Assert.Contains("nope#9.1.0", rejected.Reason);
        }
    }

    [Fact]
    public async Task LowConfidence_IsQuarantined_InvisibleDownstream_AndVisibleToStepsThatAcceptIt()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 99, "confidence": 0.4}' }
            """, """
            ordo: 1
            workflow: quarantine
            version: 1
            artifacts:
              finding: { schema: { type: object, required: [amount] }, verify: { min_confidence: 0.75 } }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: review, agent: reviewer, next: blind }
              - { id: blind, transform: { set: { blind_view: "${ artifacts.finding === undefined ? 'nothing' : 'leaked' }" } }, next: careful }
              - id: careful
                accepts_quarantined: true
                transform: { set: { careful_view: "${ artifacts.quarantined.finding.amount }" } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal("quarantined", state.Artifacts["finding"].Latest.Status);
            Assert.Null(state.Artifacts["finding"].Verified);
            Assert.Equal("nothing", state.Artifacts["blind_view"].Verified!.Value.GetString());
            Assert.Equal(99, state.Artifacts["careful_view"].Verified!.Value.GetInt32());
            var quarantined = (await h.EventsAsync(state.JobId)).Single(e => e.Type == EventTypes.ArtifactQuarantined).GetPayload<ArtifactVerdictPayload>();
            Assert.Contains("0.4", quarantined.Reason);
            Assert.Contains("0.75", quarantined.Reason);
        }
    }

    [Fact]
    public async Task AuthoritativeField_MustEqualWhatTheToolReturned()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, attempt: 1, content: '{"amount": 130}' }
              - { agent: reviewer, content: '{"amount": 120.50}' }
            """, """
            ordo: 1
            workflow: authoritative
            version: 1
            artifacts:
              finding: { schema: { type: object, required: [amount] }, authoritative: { amount: ledger.get } }
            agents:
              reader: { kind: code, type: Test.Reader, tools: [ledger.get] }
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: read, agent: reader, next: review }
              - { id: review, agent: reviewer, retry: { max_attempts: 2, backoff: 1ms } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Completed, state.Status);
            var events = await h.EventsAsync(state.JobId);
            var rejected = events.Single(e => e.Type == EventTypes.ArtifactRejected).GetPayload<ArtifactVerdictPayload>();
            Assert.Contains("130", rejected.Reason);
            Assert.Contains("120.5", rejected.Reason);
            Assert.Equal("authoritative_mismatch", events.Single(e => e.Type == EventTypes.StepFailed).GetPayload<StepFailedPayload>().Error);
            Assert.Equal(2, state.Artifacts["finding"].Verified!.Version);
        }
    }

    [Fact]
    public async Task AuthoritativeField_WithoutTheToolBeingCalled_IsGenerated_AndRejected()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 120.5}' }
            """, """
            ordo: 1
            workflow: generated
            version: 1
            artifacts:
              finding: { authoritative: { amount: ledger.get } }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: review, agent: reviewer }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Failed, state.Status);
            Assert.Contains("was not called in this job", state.Reason);
        }
    }

    [Fact]
    public async Task Gate_PromotesAQuarantinedArtifact_WhenItsCheckHolds()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 10, "confidence": 0.5}' }
            """, """
            ordo: 1
            workflow: gate-pass
            version: 1
            artifacts:
              finding: { verify: { min_confidence: 0.9 } }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: review, agent: reviewer, next: check }
              - { id: check, gate: { artifact: finding, check: "artifact.amount < 100" }, next: use }
              - { id: use, transform: { set: { amount: "${ artifacts.finding.amount }" } } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal("verified", state.Artifacts["finding"].Latest.Status);
            Assert.Equal(10, state.Artifacts["amount"].Verified!.Value.GetInt32());
            Assert.Equal("verified", state.Steps["check"].Output!.Value.GetProperty("verdict").GetString());
        }
    }

    [Fact]
    public async Task Gate_Rejecting_WithOnRejectFail_FailsTheJobWithTheReason()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 1000, "confidence": 0.5}' }
            """, """
            ordo: 1
            workflow: gate-fail
            version: 1
            artifacts:
              finding: { verify: { min_confidence: 0.9 } }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
            steps:
              - { id: review, agent: reviewer, next: check }
              - { id: check, gate: { artifact: finding, check: "artifact.amount < 100" }, on_reject: fail, next: use }
              - { id: use, transform: { set: { amount: "${ artifacts.finding.amount }" } } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Failed, state.Status);
            Assert.Contains("gate 'check' rejected artifact 'finding' v1", state.Reason);
            Assert.Contains("artifact.amount < 100", state.Reason);
            Assert.Equal("rejected", state.Artifacts["finding"].Latest.Status);
            Assert.False(state.Steps.ContainsKey("use"));
        }
    }

    [Fact]
    public async Task Gate_WithAValidatorAgent_AndOnRejectToAStep()
    {
        var (h, ledger) = await SetupAsync("""
            responses:
              - { agent: reviewer, content: '{"amount": 5, "confidence": 0.5}' }
              - { agent: verifier, content: '{"valid": false, "reason": "amount not in ledger"}' }
            """, """
            ordo: 1
            workflow: gate-validator
            version: 1
            artifacts:
              finding: { verify: { min_confidence: 0.9 } }
            agents:
              reviewer: { kind: llm, tier: fast, output: finding }
              verifier: { kind: llm, tier: fast }
            steps:
              - { id: review, agent: reviewer, next: check }
              - { id: check, gate: { artifact: finding, validator: verifier, on_reject: human }, next: done }
              - { id: human, transform: { set: { routed: "human review" } } }
              - { id: done, transform: { set: { routed: "done" } } }
            """);
        await using (h)
        await using (ledger)
        {
            var state = await h.RunAsync(await h.LoadAsync());
            Assert.Equal(JobStatus.Completed, state.Status);
            Assert.Equal("human review", state.Artifacts["routed"].Verified!.Value.GetString());
            Assert.Contains("amount not in ledger", state.Steps["check"].Output!.Value.GetProperty("reason").GetString());
        }
    }
}

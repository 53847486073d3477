using System.Text.Json;
using Microsoft.Data.Sqlite;
using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Samples;

/// <summary>
/// The coordination-pattern samples under samples/patterns, run as their READMEs and docs/patterns.md tell a user to:
/// through the CLI, on a copy of the sample, checking the outputs and the events that explain them.
/// </summary>
public sealed class PatternSamplesTests
{
    [Fact]
    public async Task Parallel_ChecksJoinWithAll_ThenQuorumCancelsTheSlowRater()
    {
        using var w = Workspace.WithSample("patterns/parallel");
        var (run, events) = await RunAsync(w, "parallel");

        var onboarding = Artifact(run, "onboarding");
        Assert.True(onboarding.GetProperty("approved").GetBoolean());
        Assert.Equal(40000, onboarding.GetProperty("credit_limit").GetDouble());
        Assert.Equal(["low", "medium"], Artifact(run, "risk_tier").GetProperty("votes").EnumerateArray().Select(v => v.GetString()));

        // checks: three branches, each its first step scheduled in its own scope, all joined.
        var started = Payload(Single(events, "PatternStarted", "checks"));
        Assert.Equal(("parallel", 3, "all", 3), (Text(started, "kind"), started.GetProperty("count").GetInt32(), Text(started, "join"), started.GetProperty("needed").GetInt32()));
        var branches = events.Where(e => Type(e) == "StepScheduled" && Text(Payload(e), "reason") == "branch" && Text(Payload(e), "from") == "checks").ToList();
        Assert.Equal(["sanctions_screen", "credit_check", "tax_check"], branches.Select(Step));
        Assert.Equal(["checks#1/sanctions_screen", "checks#1/credit_check", "checks#1/tax_check"], branches.Select(e => Text(e, "scope")));
        var ended = Of(events, "BranchEnded", "checks");
        Assert.Equal(3, ended.Count);
        Assert.All(ended, e => Assert.Equal("succeeded", Text(Payload(e), "status")));
        var join = Single(events, "StepScheduled", "decide");
        Assert.True(Seq(join) > ended.Max(Seq), "the join is scheduled after the last branch ended");

        // vote: quorum(2) met by rate_a and rate_b; rate_c (rate-limited, retrying in 5 s) is cancelled, the join runs once.
        var vote = Payload(Single(events, "PatternStarted", "vote"));
        Assert.Equal(("quorum", 2), (Text(vote, "join"), vote.GetProperty("needed").GetInt32()));
        var votes = Of(events, "BranchEnded", "vote").Select(Payload).ToDictionary(p => Text(p, "label")!, p => p);
        Assert.Equal("succeeded", Text(votes["rate_a"], "status"));
        Assert.Equal("succeeded", Text(votes["rate_b"], "status"));
        Assert.Equal("cancelled", Text(votes["rate_c"], "status"));
        Assert.Contains("join_policy quorum(2) was met", Text(votes["rate_c"], "reason"), StringComparison.Ordinal);
        Assert.Single(Of(events, "StepSucceeded", "verdict"));
        Assert.DoesNotContain(events, e => Type(e) == "StepSucceeded" && Step(e) == "rate_c");
    }

    [Fact]
    public async Task Foreach_ScoresEveryDocument_AtMostTwoAtATime_ResultsInInputOrder()
    {
        using var w = Workspace.WithSample("patterns/foreach");
        var (run, events) = await RunAsync(w, "foreach");

        var review = Artifact(run, "review_list");
        Assert.Equal(5, review.GetProperty("reviewed").GetInt32());
        Assert.Equal(["DOC-105", "DOC-103", "DOC-102"], review.GetProperty("escalate").EnumerateArray().Select(e => e.GetProperty("doc_id").GetString()));

        var started = Payload(Single(events, "PatternStarted", "score_all"));
        Assert.Equal(("foreach", 5, 2, "score"), (Text(started, "kind"), started.GetProperty("count").GetInt32(), started.GetProperty("max_concurrency").GetInt32(), Text(started, "do")));
        Assert.Equal(5, started.GetProperty("items").GetArrayLength());

        // Never more than max_concurrency items in flight: an item starts with its StepScheduled (reason item), ends with BranchEnded.
        int running = 0, peak = 0;
        foreach (var e in events)
        {
            if (Type(e) == "StepScheduled" && Text(Payload(e), "reason") == "item") peak = Math.Max(peak, ++running);
            if (Type(e) == "BranchEnded" && Step(e) == "score_all") running--;
        }

        Assert.Equal(2, peak);
        Assert.Equal(5, events.Count(e => Type(e) == "StepScheduled" && Text(Payload(e), "reason") == "item"));
        Assert.Equal(5, Of(events, "BranchEnded", "score_all").Count(e => Text(Payload(e), "status") == "succeeded"));

        // DOC-103's first answer was not JSON: that item alone failed an attempt and was retried.
        var failed = Single(events, "StepFailed", "score");
        Assert.Equal("score_all#1/2", Text(failed, "scope"));

        var output = Payload(Single(events, "StepSucceeded", "score_all")).GetProperty("output");
        Assert.Equal(["DOC-101", "DOC-102", "DOC-103", "DOC-104", "DOC-105"], output.EnumerateArray().Select(r => r.GetProperty("doc_id").GetString()));
    }

    [Fact]
    public async Task SubWorkflow_RunsLinkedChildJobs_AndCollectsTheirArtifacts()
    {
        using var w = Workspace.WithSample("patterns/sub-workflow");
        var (run, events) = await RunAsync(w, "sub-workflow");
        var job = run.GetProperty("job_id").GetString()!;

        var reimbursement = Artifact(run, "reimbursement");
        Assert.True(reimbursement.GetProperty("trip_ok").GetBoolean());
        Assert.Equal(796.5, reimbursement.GetProperty("reimbursable").GetDouble());
        Assert.Equal(4, Assert.Single(reimbursement.GetProperty("rejected").EnumerateArray()).GetProperty("line").GetInt32());

        var trip = Payload(Single(events, "BranchStarted", "trip"));
        Assert.Equal("trip-check@1", Text(trip, "workflow"));
        var lines = Of(events, "BranchStarted", "lines").Select(Payload).ToList();
        Assert.Equal(4, lines.Count);
        Assert.All(lines, l => Assert.Equal("expense-line@1", Text(l, "workflow")));
        Assert.Equal(5, events.Count(e => Type(e) == "BranchEnded" && Text(Payload(e), "status") == "succeeded"));
        Assert.True(Payload(Single(events, "BranchEnded", "trip")).GetProperty("output").GetProperty("trip_status").GetProperty("approved").GetBoolean());

        // Each child is a job of its own, linked to the parent.
        var jobs = (await CliRunner.RunExpectingAsync(0, "jobs", "--db", w.Db, "--json")).Json().EnumerateArray().ToList();
        var children = jobs.Where(j => j.GetProperty("parent_job_id").ValueKind == JsonValueKind.String && j.GetProperty("parent_job_id").GetString() == job).ToList();
        var childIds = lines.Select(l => Text(l, "child_job_id")).Append(Text(trip, "child_job_id")).Order(StringComparer.Ordinal);
        Assert.Equal(childIds, children.Select(c => c.GetProperty("job_id").GetString()).Order(StringComparer.Ordinal));
        Assert.All(children, c => Assert.Equal("completed", c.GetProperty("status").GetString()));
        Assert.Equal(4, children.Count(c => c.GetProperty("workflow").GetString() == "expense-line@1"));
    }

    [Fact]
    public async Task Plan_ValidPlan_RunsItemByItem_AndARejectedPlanTakesTheFallback()
    {
        using var w = Workspace.WithSample("patterns/plan");

        var (run, events) = await RunAsync(w, "plan");
        var units = Of(events, "PatternProgressed", "research").Select(Payload).ToList();
        Assert.Equal(["plan", "item", "item", "item"], units.Select(u => Text(u, "phase")));
        Assert.Equal(["market_analyst", "regulation_analyst", "competitor_analyst"], units.Skip(1).Select(u => Text(u.GetProperty("data"), "agent")));
        Assert.Equal(["planner@1", "market_analyst@1", "regulation_analyst@1", "competitor_analyst@1"], Of(events, "PatternProgressed", "research").Select(e => Text(e, "agent")));
        Assert.All(units.Skip(1), u => Assert.Equal("verified", Text(u.GetProperty("data"), "verdict")));
        Assert.Equal(3, Payload(Single(events, "StepSucceeded", "research")).GetProperty("output").GetProperty("results").GetArrayLength());
        Assert.Equal(["market", "regulation", "competition"], Artifact(run, "brief").GetProperty("based_on").EnumerateArray().Select(t => t.GetString()));
        Assert.DoesNotContain(events, e => Step(e) == "desk_research");

        var (fallback, fallbackEvents) = await RunAsync(w, "plan", "input-fallback.json");
        Assert.Empty(Of(fallbackEvents, "PatternProgressed", "research"));
        var rejected = Payload(Single(fallbackEvents, "StepSucceeded", "research")).GetProperty("output");
        Assert.Contains("'web_browser' is not in the catalog", Text(rejected, "rejected"), StringComparison.Ordinal);
        Assert.Equal("desk_research", Text(rejected, "fallback"));
        Assert.Equal("research", Text(Payload(Single(fallbackEvents, "StepScheduled", "desk_research")), "from"));
        Assert.Equal(["market"], Artifact(fallback, "brief").GetProperty("based_on").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task Supervise_CommanderDirectsWorkers_AndSeesAQuarantinedResultAsAVerdict()
    {
        using var w = Workspace.WithSample("patterns/supervise");
        var (run, events) = await RunAsync(w, "supervise");

        var report = Artifact(run, "triage_report");
        Assert.Equal(3, report.GetProperty("rounds").GetInt32());
        Assert.Equal("low", report.GetProperty("risk").GetString());
        Assert.StartsWith("Roll back", report.GetProperty("action").GetString(), StringComparison.Ordinal);

        var units = Of(events, "PatternProgressed", "triage").ToList();
        Assert.Equal(["decision", "result", "decision", "result", "decision", "result"], units.Select(u => Text(Payload(u), "phase")));
        Assert.Equal(["commander@1", "log_analyst@1", "commander@1", "remediator@1", "commander@1", "remediator@1"], units.Select(u => Text(u, "agent")));
        var results = units.Select(Payload).Where(p => Text(p, "phase") == "result").Select(p => p.GetProperty("data")).ToList();
        Assert.Equal(["verified", "quarantined", "verified"], results.Select(r => Text(r, "verdict")));
        Assert.False(results[1].TryGetProperty("output", out _), "a quarantined result is recorded without its value");
        Assert.Contains("min_confidence", Text(Payload(Single(events, "ArtifactQuarantined", "triage")), "reason"), StringComparison.Ordinal);

        var output = Payload(Single(events, "StepSucceeded", "triage")).GetProperty("output");
        Assert.Equal(["log_analyst", "remediator", "remediator"], output.EnumerateArray().Select(r => r.GetProperty("worker").GetString()));
    }

    [Fact]
    public async Task Board_RulesFireAsArtifactsAppear_UntilTheCaseIsDecided()
    {
        using var w = Workspace.WithSample("patterns/board");
        var (run, events) = await RunAsync(w, "board");

        var disposition = Artifact(run, "disposition");
        Assert.Equal("block_card", disposition.GetProperty("action").GetString());
        Assert.Equal(0.94, disposition.GetProperty("risk").GetDouble());

        var firings = Of(events, "PatternProgressed", "investigate").ToList();
        Assert.All(firings, f => Assert.Equal("firing", Text(Payload(f), "phase")));
        var data = firings.Select(f => Payload(f).GetProperty("data")).ToList();
        Assert.Equal(["profile", "locate", "score", "open_case"], data.Select(d => Text(d, "rule")));
        Assert.Equal(["profiler@1", "geo_analyst@1", "risk_scorer@1", "case_writer@1"], firings.Select(f => Text(f, "agent")));
        Assert.Equal(["customer_profile@1", "geo_signal@1"], data[2].GetProperty("triggered_by").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(["risk_assessment@1"], data[3].GetProperty("triggered_by").EnumerateArray().Select(t => t.GetString()));
        Assert.All(data, d => Assert.Equal("verified", Text(d, "verdict")));
        Assert.Equal(4, events.Count(e => Type(e) == "ArtifactVerified" && Step(e) == "investigate"));
    }

    [Fact]
    public async Task Auction_ScoresEveryBid_AndAwardsTheLowestScore()
    {
        using var w = Workspace.WithSample("patterns/auction");
        var (run, events) = await RunAsync(w, "auction");

        Assert.Equal("llm_translator", Artifact(run, "translation").GetProperty("translated_by").GetString());

        var units = Of(events, "PatternProgressed", "route").Select(Payload).ToList();
        Assert.Equal(["bid", "bid", "bid", "award"], units.Select(u => Text(u, "phase")));
        Assert.Equal(["mt_engine", "llm_translator", "agency"], units.Take(3).Select(u => Text(u.GetProperty("data"), "bidder")));
        Assert.All(units.Take(3), u => Assert.True(u.GetProperty("data").GetProperty("valid").GetBoolean()));
        var award = units[3].GetProperty("data");
        Assert.Equal("llm_translator", Text(award, "winner"));
        var scores = award.GetProperty("scores");
        Assert.Equal(4.1, scores.GetProperty("llm_translator").GetDouble(), 6);
        Assert.Equal(4.24, scores.GetProperty("mt_engine").GetDouble(), 6);
        Assert.True(scores.GetProperty("agency").GetDouble() > 1_000_000, "the agency's bid misses the deadline");

        // Every bidder bids once; only the winner is called again, for the award.
        var calls = events.Where(e => Type(e) == "ModelCallSucceeded").Select(e => Text(e, "agent")).ToList();
        Assert.Equal(["mt_engine@1", "llm_translator@1", "agency@1", "llm_translator@1"], calls);
    }

    [Fact]
    public async Task Approval_NeedsTwoDistinctApprovers_NotTheSubmitter_ThenResumeCompletes()
    {
        using var w = Workspace.WithSample("patterns/approval");
        var flow = w.PathOf("sample/approval.yaml");
        var input = w.PathOf("sample/input.json");
        var run = (await CliRunner.RunExpectingAsync(4, "run", flow, "--input", input, "--db", w.Db, "--as", "alice", "--json")).Json();
        var job = run.GetProperty("job_id").GetString()!;
        Assert.Equal("waiting_approval", run.GetProperty("status").GetString());
        var pending = Assert.Single(run.GetProperty("approvals").EnumerateArray());
        Assert.Equal(("pending", "treasury_approver", 2), (pending.GetProperty("status").GetString(), pending.GetProperty("role").GetString(), pending.GetProperty("count").GetInt32()));

        var requested = Payload(Single(await EventsAsync(w, job), "ApprovalRequested", "approve"));
        Assert.Equal("fail", Text(requested, "on_expire"));
        Assert.True(requested.TryGetProperty("expires_at", out _));
        Assert.Equal("Contoso Logistics BV (V-1007)", Text(requested.GetProperty("show"), "vendor"));

        var submitter = await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "alice");
        Assert.Contains("may not approve", submitter.Err, StringComparison.Ordinal);
        var clerk = await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "dave");
        Assert.Contains("treasury_approver", clerk.Err, StringComparison.Ordinal);

        // The same approver twice is one approval: the job stays paused.
        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "bob", "--reason", "callback used the number on file");
        await CliRunner.RunExpectingAsync(2, "approve", job, "--db", w.Db, "--as", "bob");
        var still = (await CliRunner.RunExpectingAsync(4, "resume", job, "--db", w.Db, "--json")).Json();
        var half = Assert.Single(still.GetProperty("approvals").EnumerateArray());
        Assert.Equal("pending", half.GetProperty("status").GetString());
        Assert.Equal(["bob"], half.GetProperty("approvers").EnumerateArray().Select(a => a.GetString()));

        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "carol");
        var done = (await CliRunner.RunExpectingAsync(0, "resume", job, "--db", w.Db, "--json")).Json();
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal("approved", Assert.Single(done.GetProperty("approvals").EnumerateArray()).GetProperty("status").GetString());

        var events = await EventsAsync(w, job);
        Assert.Equal(["bob:pending", "carol:approved"], Of(events, "ApprovalDecided", "approve").Select(e => $"{Text(Payload(e), "by")}:{Text(Payload(e), "status")}"));
        var approved = Payload(Single(events, "StepSucceeded", "approve")).GetProperty("output");
        Assert.Equal(["bob", "carol"], approved.GetProperty("approvers").EnumerateArray().Select(a => a.GetString()));
        Assert.Single(Of(events, "ToolCallSucceeded", "apply"));

        await using var vendors = new SqliteConnection($"Data Source={w.PathOf("sample/data/vendors.db")};Pooling=False");
        await vendors.OpenAsync();
        await using var cmd = vendors.CreateCommand();
        cmd.CommandText = "SELECT count(*), min(vendor_id), min(iban), min(approved_by) FROM bank_account_changes";
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal((1L, "V-1007", "NL20INGB0001234567"), (r.GetInt64(0), r.GetString(1), r.GetString(2)));
        Assert.Equal("""["bob","carol"]""", r.GetString(3));
    }

    [Fact]
    public async Task Approval_OneDeny_FailsTheJob()
    {
        using var w = Workspace.WithSample("patterns/approval");
        var run = (await CliRunner.RunExpectingAsync(4, "run", w.PathOf("sample/approval.yaml"), "--input", w.PathOf("sample/input.json"), "--db", w.Db, "--as", "alice", "--json")).Json();
        var job = run.GetProperty("job_id").GetString()!;

        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "bob");
        await CliRunner.RunExpectingAsync(0, "approve", job, "--db", w.Db, "--as", "carol", "--deny", "--reason", "IBAN belongs to another holder");
        var failed = (await CliRunner.RunExpectingAsync(3, "resume", job, "--db", w.Db, "--json")).Json();

        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("denied by carol: IBAN belongs to another holder", failed.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("denied", Assert.Single(failed.GetProperty("approvals").EnumerateArray()).GetProperty("status").GetString());
        var events = await EventsAsync(w, job);
        Assert.DoesNotContain(events, e => Type(e) == "ToolCallRequested");
        Assert.Equal("JobFailed", Type(events[^1]));
    }

    /// <summary>Runs <c>samples/patterns/NAME/NAME.yaml</c> (copied into the workspace) with an input file; expects exit 0; returns the run's JSON and the job's events.</summary>
    private static async Task<(JsonElement Run, IReadOnlyList<JsonElement> Events)> RunAsync(Workspace w, string name, string input = "input.json")
    {
        var run = (await CliRunner.RunExpectingAsync(0, "run", w.PathOf($"sample/{name}.yaml"), "--input", w.PathOf($"sample/{input}"), "--db", w.Db, "--json")).Json();
        Assert.Equal("completed", run.GetProperty("status").GetString());
        return (run, await EventsAsync(w, run.GetProperty("job_id").GetString()!));
    }

    private static async Task<IReadOnlyList<JsonElement>> EventsAsync(Workspace w, string job)
        => (await CliRunner.RunExpectingAsync(0, "events", job, "--db", w.Db, "--json")).JsonLines();

    private static JsonElement Artifact(JsonElement run, string name)
    {
        var artifact = run.GetProperty("artifacts").GetProperty(name);
        Assert.Equal("verified", artifact.GetProperty("status").GetString());
        return artifact.GetProperty("value");
    }

    private static List<JsonElement> Of(IReadOnlyList<JsonElement> events, string type, string step)
        => events.Where(e => Type(e) == type && Step(e) == step).ToList();

    private static JsonElement Single(IReadOnlyList<JsonElement> events, string type, string step)
    {
        var found = Of(events, type, step);
        Assert.True(found.Count == 1, $"expected one {type} on step '{step}', found {found.Count}");
        return found[0];
    }

    private static string? Type(JsonElement e) => Text(e, "type");

    private static string? Step(JsonElement e) => Text(e, "step_id");

    private static long Seq(JsonElement e) => e.GetProperty("seq").GetInt64();

    private static JsonElement Payload(JsonElement e) => e.GetProperty("payload");

    private static string? Text(JsonElement e, string name)
        => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
}

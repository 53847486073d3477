using Ordo.Workflows;

namespace Ordo.Tests.Graphs;

/// <summary>Workflows for the graph tests: the samples, and hand-written ones that use every pattern.</summary>
internal static class GraphWorkflows
{
    /// <summary>Every workflow file of samples/ (relative to the repository root).</summary>
    public static readonly string[] Samples =
    [
        "samples/invoice-reconciliation/reconcile.yaml",
        "samples/support-triage/triage.yaml",
        "samples/governed-payment/pay.yaml",
        "samples/patterns/approval/approval.yaml",
        "samples/patterns/auction/auction.yaml",
        "samples/patterns/board/board.yaml",
        "samples/patterns/foreach/foreach.yaml",
        "samples/patterns/parallel/parallel.yaml",
        "samples/patterns/plan/plan.yaml",
        "samples/patterns/sub-workflow/sub-workflow.yaml",
        "samples/patterns/supervise/supervise.yaml",
    ];

    public static string RepoPath(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ordo.sln"))) return Path.Combine(dir.FullName, relative);
        }

        throw new InvalidOperationException("the repository root (Ordo.sln) was not found above " + AppContext.BaseDirectory);
    }

    public static Task<WorkflowDefinition> SampleAsync(string relative) => WorkflowLoader.LoadFileAsync(RepoPath(relative));

    /// <summary>Loads a workflow written in a temporary folder (code agents are not checked).</summary>
    public static async Task<WorkflowDefinition> LoadAsync(string yaml, params (string Name, string Content)[] others)
    {
        var dir = Path.Combine(Path.GetTempPath(), "ordo-graph-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var (name, content) in others) await File.WriteAllTextAsync(Path.Combine(dir, name), content);
            var path = Path.Combine(dir, "wf.yaml");
            await File.WriteAllTextAsync(path, yaml);
            return await WorkflowLoader.LoadFileAsync(path);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>One workflow with every kind of step and edge: conditions, a loop, parallel with and without a join, foreach, gate, plan, approval, escalation, supervise, board, auction, a sub-workflow.</summary>
    public const string EveryPattern = """
        ordo: 1
        workflow: every-pattern
        version: 1
        agents:
          a:       { kind: code, type: T.A, output: note }
          planner: { kind: code, type: T.Planner }
          sup:     { kind: code, type: T.Sup }
        steps:
          - id: first
            agent: a
            next:
              - { when: "input.kind == 'x' && input.n < 3", to: fan }
              - { when: "input.kind == \"y\"", to: each }
              - { to: review }
          - { id: fan, parallel: [left, right], join: merge, join_policy: "quorum(1)" }
          - { id: left, agent: a, next: left2 }
          - { id: left2, agent: a }
          - { id: right, agent: a, next: fail }
          - { id: merge, transform: { set: { merged: "${ 1 }" } }, next: again }
          - id: again
            agent: a
            loop: { max_iterations: 3 }
            next:
              - { when: "steps.again.attempts < 2", to: again }
              - { to: free }
          - { id: free, parallel: [solo], next: end }
          - { id: solo, agent: a }
          - { id: each, foreach: "${ input.items }", do: item, max_concurrency: 2, next: check }
          - { id: item, agent: a }
          - id: check
            gate: { artifact: note, check: "artifact.ok == true" }
            on_reject: research
            next: review
          - { id: research, plan: { agent: planner, catalog: [a], max_steps: 3, fallback: desk }, next: review }
          - { id: desk, agent: a, on_failure: escalate, next: review }
          - id: review
            approval: { role: approver, count: 2, expires: 1h, on_expire: board }
            next: boss
          - { id: boss, supervise: { agent: sup, workers: [a], max_rounds: 4 }, next: board }
          - id: board
            board: { rules: [ { when: "artifacts.note == null", run: a } ], until: "artifacts.note != null", max_firings: 5 }
            next: bid
          - { id: bid, auction: { bidders: [a, sup], task: "${ input }", score: "bid.cost" }, next: child }
          - { id: child, workflow: child@1, input: { x: 1 } }
        """;

    public const string Child = """
        ordo: 1
        workflow: child
        version: 1
        agents:
          a: { kind: code, type: T.A }
        steps:
          - { id: only, agent: a }
        """;
}

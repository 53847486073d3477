using Ordo.Cli.Tests.TestSupport;

namespace Ordo.Cli.Tests.Replay;

/// <summary>
/// A small offline project for replay tests: workflow <c>billing</c> (a scripted classifier, then a <c>sql</c> tool step
/// with two arguments), in versions 1 and 2 (another answer), with a release that shadows version 1 with version 2.
/// </summary>
internal static class ReplayProject
{
    /// <summary>The arguments of the charge step, in the order the workflow writes them.</summary>
    public const string Args = """{ customer: "${ input.customer }", amount: "${ artifacts.label.amount }" }""";

    public static Workspace Create(bool shadow = false)
    {
        var w = Workspace.Create();
        w.Write("ordo.yaml", $$"""
            models:
              fast: { provider: scripted, fixtures: fixtures.yaml }
            tools: [tools.yaml]
            connections: { ledger: { sqlite: ledger.db, init: ledger.sql } }
            {{(shadow ? "releases:\n  billing: { stable: 1, shadow: { version: 2, share: 1.0 } }" : "")}}
            """);
        w.Write("ledger.sql", "CREATE TABLE charges(idempotency_key TEXT PRIMARY KEY, customer TEXT, amount REAL);\n");
        w.Write("tools.yaml", """
            tools:
              ledger.charge: { kind: sql, connection: ledger, effect: write, query: "INSERT INTO charges VALUES (@idempotency_key, @customer, @amount)" }
            """);
        w.Write("fixtures.yaml", """
            responses:
              - { agent: classifier, content: '{"label": "billing", "amount": 42}' }
              - { agent: classifier_next, content: '{"label": "sales", "amount": 7}' }
            """);
        w.Write("input.json", """{ "customer": "C-1" }""");
        Workflow(w, "billing-v1.yaml", version: 1);
        Workflow(w, "billing-v2.yaml", version: 2);
        return w;
    }

    /// <summary>Writes a version of the workflow (version 2 uses the other agent); <paramref name="args"/> replaces the charge step's arguments.</summary>
    public static string Workflow(Workspace w, string file, int version = 1, string name = "billing", string args = Args)
        => w.Write(file, $$"""
            ordo: 1
            workflow: {{name}}
            version: {{version}}
            input: { type: object, required: [customer], properties: { customer: { type: string } } }
            artifacts:
              label: { schema: { type: object, required: [label, amount], properties: { label: { type: string }, amount: { type: number } } } }
            agents:
              {{(version == 1 ? "classifier" : "classifier_next")}}: { kind: llm, version: {{version}}, tier: fast, output: label }
            steps:
              - { id: classify, agent: {{(version == 1 ? "classifier" : "classifier_next")}}, next: charge }
              - { id: charge, tool: ledger.charge, args: {{args}} }
            """);

    /// <summary>Runs version 1 on the input and returns the job id.</summary>
    public static async Task<string> RunAsync(Workspace w, string file = "billing-v1.yaml")
    {
        var run = await CliRunner.RunExpectingAsync(0, "run", w.PathOf(file), "--input", w.PathOf("input.json"), "--db", w.Db, "--json");
        return run.Json().GetProperty("job_id").GetString()!;
    }
}

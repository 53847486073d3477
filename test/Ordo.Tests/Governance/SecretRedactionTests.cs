using System.Text.Json;
using Ordo.Engine;
using Ordo.Gateway;
using Ordo.State;
using Ordo.TestServers;

namespace Ordo.Tests.Governance;

/// <summary>A secret that has been used never reaches the log: not nested, not escaped, not in a step's error or output.</summary>
public sealed class SecretRedactionTests
{
    private const string Token = "tok-9f8e7d6c5b4a";

    private static SecretRedactor Redactor(out SecretResolver resolver)
    {
        resolver = new SecretResolver(name => name == "API_TOKEN" ? Token : name == "PIN" ? "1234" : null);
        resolver.Resolve("Bearer ${secret:API_TOKEN}");
        return new SecretRedactor(resolver);
    }

    [Fact]
    public void Redact_FindsTheSecretAtEveryDepth_InValuesAndPropertyNames_EvenBehindEscapes()
    {
        var redactor = Redactor(out _);
        var escaped = string.Concat(Token.Select(c => $"\\u{(int)c:x4}"));
        var value = JsonDocument.Parse($$"""
            {"a": {"b": [1, {"c": "x {{escaped}} y"}]}, "{{Token}}": true, "plain": "nothing here", "n": 3}
            """).RootElement;
        var redacted = redactor.Redact(value).GetRawText();
        Assert.DoesNotContain(Token, redacted, StringComparison.Ordinal);
        Assert.DoesNotContain(escaped, redacted, StringComparison.Ordinal);
        Assert.Equal("""{"a":{"b":[1,{"c":"x [REDACTED:API_TOKEN] y"}]},"[REDACTED:API_TOKEN]":true,"plain":"nothing here","n":3}""", redacted);
    }

    [Fact]
    public void Redact_ValueWithoutASecret_IsReturnedAsItWas()
    {
        var redactor = Redactor(out _);
        var value = JsonDocument.Parse("""{"a": "\u00e9", "b": [1.50, 2]}""").RootElement;
        Assert.Equal(value.GetRawText(), redactor.Redact(value).GetRawText());
    }

    [Fact]
    public void Redact_CoversTheEncodedForms()
    {
        var redactor = Redactor(out _);
        var text = $"url={Uri.EscapeDataString(Token)} b64={Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Token))}";
        Assert.Equal("url=[REDACTED:API_TOKEN] b64=[REDACTED:API_TOKEN]", redactor.Redact(text));
    }

    [Fact]
    public void Redact_CoversHexadecimalAndChangedCase()
    {
        var redactor = Redactor(out _);
        var bytes = System.Text.Encoding.UTF8.GetBytes(Token);
        var text = $"hex={Convert.ToHexString(bytes)} lower={Convert.ToHexStringLower(bytes)} upper={Token.ToUpperInvariant()}";
        Assert.Equal("hex=[REDACTED:API_TOKEN] lower=[REDACTED:API_TOKEN] upper=[REDACTED:API_TOKEN]", redactor.Redact(text));
    }

    [Theory]
    [InlineData("S3cr3t%2B/Tok%3Den%26Zq9")]              // percent-encoded with '/' kept (a path)
    [InlineData("s3cr3t%2b%2ftok%3den%26zq9")]            // lowercased, hex digits and letters
    [InlineData("%53%33%63%72%33%74%2B%2F%54%6F%6B%3D%65%6E%26%5A%71%39")] // every byte encoded
    public void Redact_CoversPercentEncodingsInAnyCase(string form)
    {
        var redactor = new SecretRedactor(Resolver("S3cr3t+/Tok=en&Zq9"));
        Assert.Equal("k=[REDACTED:ODD]!", redactor.Redact($"k={form}!"));
    }

    [Theory]
    [InlineData("user:")]
    [InlineData("x")]
    [InlineData("xy")]
    [InlineData("")]
    public void Redact_CoversBase64_AlsoInsideALongerEncodedText(string prefix)
    {
        const string secret = "S3cr3t+/Tok=en&Zq9";
        var redactor = new SecretRedactor(Resolver(secret));
        var encoded = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(prefix + secret + "!"));
        var redacted = redactor.Redact("Basic " + encoded);
        Assert.Contains("[REDACTED:ODD]", redacted, StringComparison.Ordinal);
        // What is left of the encoding cannot give back more than a character of the secret at either end.
        Assert.True(redacted.Length - "[REDACTED:ODD]".Length <= "Basic ".Length + ((prefix.Length + 2) * 4 / 3) + 4, redacted);
    }

    [Fact]
    public void AQuoteCutInsideASecret_ShowsNoneOfIt()
    {
        const string secret = "sk-live-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        var redactor = new SecretRedactor(Resolver(secret));
        var body = new string('E', 165) + secret + "tail";
        var quoted = body[..200] + "\u2026";
        var redacted = redactor.Redact("answered 400: " + quoted);
        Assert.DoesNotContain("sk-live-ABCD", redacted, StringComparison.Ordinal);
        Assert.EndsWith("[REDACTED:ODD]\u2026", redacted, StringComparison.Ordinal);
        Assert.Equal("\u2026[REDACTED:ODD] and more", redactor.Redact("\u2026" + secret[20..] + " and more"));
        Assert.Equal("cut at the end: [REDACTED:ODD]", redactor.Redact("cut at the end: " + secret[..12]));
    }

    private static SecretResolver Resolver(string value)
    {
        var resolver = new SecretResolver(name => name == "ODD" ? value : null);
        resolver.Resolve("${secret:ODD}");
        return resolver;
    }

    [Fact]
    public void ASecretTooShortToRedact_IsRefused_ByName()
    {
        Redactor(out var resolver);
        var e = Assert.Throws<SecretTooShortException>(() => resolver.Resolve("${secret:PIN}"));
        Assert.Equal("PIN", e.Name);
        Assert.Contains("secret PIN is shorter than 8 characters", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("1234", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AToolOrModelThatUsesATooShortSecret_IsRefusedWhenLoaded_NamingWhere()
    {
        await using var h = new GovernanceHarness(secrets: new() { ["PIN"] = "1234", ["API_TOKEN"] = Token });
        h.Write("ordo.yaml", "models:\n  fast: { provider: openai, model: m, endpoint: \"http://127.0.0.1:9/v1\", api_key: \"${secret:PIN}\" }\ntools: [tools.yaml]\n");
        h.Write("tools.yaml", "tools:\n  api: { kind: http, url: \"http://127.0.0.1:9/x\", headers: { X-Pin: \"${secret:PIN}\", X-Token: \"${secret:API_TOKEN}\" }, effect: read }\n");
        h.Write("workflow.yaml", "ordo: 1\nworkflow: w\nversion: 1\nsteps:\n  - { id: a, tool: api }\n");
        var e = await Assert.ThrowsAsync<OrdoValidationException>(() => h.LoadAsync());
        Assert.Equal(2, e.Problems.Count(p => p.Message.Contains("secret PIN is shorter than 8 characters", StringComparison.Ordinal)));
        Assert.Contains(e.Problems, p => p.Path == "models.fast.api_key");
        Assert.DoesNotContain(e.Problems, p => p.Message.Contains("API_TOKEN", StringComparison.Ordinal) || p.Message.Contains("1234", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AStepThatLeaksAUsedSecret_InItsOutputOrItsError_HasItRedactedInTheLog()
    {
        await using var server = await LoopbackServer.StartAsync((ctx, req) => LoopbackServer.JsonAsync(ctx, 200, """{"ok":true}"""));
        await using var h = new GovernanceHarness(secrets: new() { ["API_TOKEN"] = Token });
        h.AddCodeAgent("T.Leak", (ctx, ct) => Task.FromResult(Ordo.Json.Of(new { deep = new[] { new Dictionary<string, string> { [Token] = "key " + Token } } })));
        h.AddCodeAgent("T.Throw", (ctx, ct) => throw new InvalidOperationException("could not log in with " + Token));
        h.Write("ordo.yaml", "tools: [tools.yaml]");
        h.Write("tools.yaml", $$"""
            tools:
              api:
                kind: http
                url: "{{server.Address}}me"
                headers: { Authorization: "Bearer ${secret:API_TOKEN}" }
                effect: read
            """);
        h.Write("workflow.yaml", """
            ordo: 1
            workflow: leak
            version: 1
            agents:
              leak: { kind: code, type: T.Leak, output: leaked }
              thrower: { kind: code, type: T.Throw }
            steps:
              - { id: call, tool: api, next: leak }
              - { id: leak, agent: leak, next: boom }
              - { id: boom, agent: thrower, retry: { max_attempts: 1 } }
            """);
        var state = await h.RunAsync(await h.LoadAsync());
        Assert.Equal(JobStatus.Failed, state.Status);
        var everything = string.Join("\n", (await h.EventsAsync(state.JobId)).Select(e => e.PayloadText));
        Assert.DoesNotContain(Token, everything, StringComparison.Ordinal);
        Assert.Contains("could not log in with [REDACTED:API_TOKEN]", everything, StringComparison.Ordinal);
        Assert.Contains("key [REDACTED:API_TOKEN]", state.Steps["leak"].Output!.Value.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain(Token, JsonSerializer.Serialize(state.Artifacts.Select(a => a.Value.Latest.Value.GetRawText())), StringComparison.Ordinal);
    }
}

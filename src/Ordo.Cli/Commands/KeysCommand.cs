using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;
using Ordo.Server.Auth;
using Ordo.Storage;

namespace Ordo.Cli.Commands;

/// <summary>
/// <c>ordo keys create|list|revoke</c>: API keys of the server. A new key is printed once; only its hash is stored, and
/// neither the key nor the hash is ever listed.
/// </summary>
internal static partial class KeysCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var tenant = new Option<string>("--tenant") { Description = "The tenant the key acts for.", Required = true };
        var create = new Command("create", "Create an API key for a tenant, acting as --as IDENTITY; the key is printed once.") { tenant };
        env.SetAction(create, async (ctx, parse) =>
        {
            if (ctx.As is null) throw new CliInputException("keys create needs --as IDENTITY: the identity the key acts as (the submitter, the approver)");
            var name = parse.GetValue(tenant)!.Trim();
            if (name.Length == 0) throw new CliInputException("--tenant needs a tenant name");
            if (!TenantName().IsMatch(name)) throw new CliInputException($"--tenant: '{name}' is not a tenant name (letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit)");
            if (ctx.Identity.Length > 200 || ctx.Identity.Any(char.IsControl)) throw new CliInputException("--as: an identity is at most 200 characters, with no control characters (such as a line break)");
            await using var host = await OpenAsync(ctx, create: true).ConfigureAwait(false);
            var key = ApiKeys.NewKey();
            var record = new ApiKeyRecord(ApiKeys.NewKeyId(), name, ctx.Identity, ApiKeys.Hash(key), TimeProvider.System.GetUtcNow());
            await Keys(host).CreateApiKeyAsync(record, ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("key_id", record.KeyId);
                    w.WriteString("key", key);
                    w.WriteString("tenant", record.Tenant);
                    w.WriteString("identity", record.Identity);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else
            {
                await ctx.Out.WriteLineAsync(key).ConfigureAwait(false);
                if (!ctx.Quiet) await ctx.Err.WriteLineAsync($"ordo: key {record.KeyId} for {record.Identity} in tenant {record.Tenant}; it is shown only now, keep it secret").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });

        var listTenant = new Option<string?>("--tenant") { Description = "Only this tenant's keys." };
        var list = new Command("list", "List API keys (never the key or its hash).") { listTenant };
        env.SetAction(list, async (ctx, parse) =>
        {
            await using var host = await OpenAsync(ctx, create: false, readOnly: true).ConfigureAwait(false);
            var keys = await Keys(host).ListApiKeysAsync(parse.GetValue(listTenant), ctx.Stop).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartArray();
                    foreach (var k in keys)
                    {
                        w.WriteStartObject();
                        w.WriteString("key_id", k.KeyId);
                        w.WriteString("tenant", k.Tenant);
                        w.WriteString("identity", k.Identity);
                        w.WriteString("created_at", JsonOut.Timestamp(k.CreatedAt));
                        JsonOut.WriteNullable(w, "revoked_at", k.RevokedAt is { } r ? JsonOut.Timestamp(r) : null);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                if (keys.Count == 0) await ctx.Out.WriteLineAsync("no API keys").ConfigureAwait(false);
                foreach (var k in keys)
                {
                    await ctx.Out.WriteLineAsync($"{k.KeyId}  {k.Tenant,-16} {k.Identity,-16} created {JsonOut.Timestamp(k.CreatedAt)}{(k.RevokedAt is { } r ? $"  revoked {JsonOut.Timestamp(r)}" : "")}").ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        });

        var keyId = new Argument<string>("key-id") { Description = "The key's id (from keys create or keys list)." };
        var revoke = new Command("revoke", "Revoke an API key: the server refuses it from the next request.") { keyId };
        env.SetAction(revoke, async (ctx, parse) =>
        {
            await using var host = await OpenAsync(ctx, create: false).ConfigureAwait(false);
            var id = parse.GetValue(keyId)!;
            if (!await Keys(host).RevokeApiKeyAsync(id, TimeProvider.System.GetUtcNow(), ctx.Stop).ConfigureAwait(false))
            {
                throw new CliInputException($"no API key {id} is active");
            }

            if (ctx.Json) await ctx.Out.WriteLineAsync(JsonOut.Write(w => { w.WriteStartObject(); w.WriteString("key_id", id); w.WriteBoolean("revoked", true); w.WriteEndObject(); })).ConfigureAwait(false);
            else if (!ctx.Quiet) await ctx.Out.WriteLineAsync($"key {id} revoked").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        return new Command("keys", "API keys of the server: create (printed once), list, revoke.") { create, list, revoke };
    }

    private static IApiKeyStore Keys(CliHost host) => host.Store as IApiKeyStore ?? throw new CliInputException("this store does not keep API keys");

    private static async Task<CliHost> OpenAsync(CliContext ctx, bool create, bool readOnly = false)
    {
        var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
        return await CliHost.OpenAsync(ctx, project, create, readOnly: readOnly).ConfigureAwait(false);
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial System.Text.RegularExpressions.Regex TenantName();
}

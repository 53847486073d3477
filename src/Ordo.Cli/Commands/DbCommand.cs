using System.CommandLine;
using Ordo.Cli.Hosting;
using Ordo.Cli.Output;

namespace Ordo.Cli.Commands;

/// <summary><c>ordo db migrate</c>: creates the store's schema, or upgrades it to this version (stores also do it on start).</summary>
internal static class DbCommand
{
    public static Command Create(CommandEnvironment env)
    {
        var migrate = new Command("migrate", "Create or upgrade the store's schema to this version (stores also do it when they open); prints the schema version.");
        env.SetAction(migrate, async (ctx, parse) =>
        {
            var project = await CliHost.StoreProjectAsync(ctx).ConfigureAwait(false);
            await using var host = await CliHost.OpenAsync(ctx, project, create: true).ConfigureAwait(false);
            if (ctx.Json)
            {
                await ctx.Out.WriteLineAsync(JsonOut.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("db", host.DatabasePath);
                    w.WriteNumber("schema_version", host.Store.SchemaVersion);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!ctx.Quiet)
            {
                await ctx.Out.WriteLineAsync($"{host.DatabasePath}: schema version {host.Store.SchemaVersion}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return new Command("db", "The store itself.") { migrate };
    }
}

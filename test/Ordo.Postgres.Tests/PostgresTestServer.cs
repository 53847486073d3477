using Npgsql;

namespace Ordo.Postgres.Tests;

/// <summary>
/// The PostgreSQL server of the tests: the throwaway cluster ./test.sh starts (test/tools/postgres-cluster.sh) and names in
/// ORDO_TEST_POSTGRES. Every test class works in a schema or a database of its own, created here and dropped after.
/// When the variable is not set, a test that needs the server fails and says how to get one; it is never skipped.
/// </summary>
public static class PostgresTestServer
{
    /// <summary>The variable that names the server.</summary>
    public const string Variable = "ORDO_TEST_POSTGRES";

    /// <summary>The connection string of the server's maintenance database.</summary>
    /// <exception cref="InvalidOperationException">No server is named.</exception>
    public static string ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cs ? cs
        : throw new InvalidOperationException(
            $"{Variable} is not set: these tests need a PostgreSQL server. ./test.sh starts a throwaway one (test/tools/postgres-cluster.sh start DIR prints its connection string); " +
            $"export {Variable}=<that connection string> to run the tests alone.");

    /// <summary>A new schema name, unique to one test.</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("N");

    /// <summary>Drops a schema and everything in it.</summary>
    public static void DropSchema(string schema)
    {
        using var c = new NpgsqlConnection(ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", c);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Creates a fresh database and returns its connection string.</summary>
    public static string CreateDatabase(string prefix = "ordo_test")
    {
        var name = prefix + "_" + Guid.NewGuid().ToString("N")[..16];
        using (var c = new NpgsqlConnection(ConnectionString))
        {
            c.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", c);
            cmd.ExecuteNonQuery();
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name, Pooling = false }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabase"/>, ending the sessions still in it.</summary>
    public static void DropDatabase(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        using var c = new NpgsqlConnection(ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", c);
        cmd.ExecuteNonQuery();
    }
}

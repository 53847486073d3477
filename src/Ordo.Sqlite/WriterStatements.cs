using Microsoft.Data.Sqlite;

namespace Ordo.Sqlite;

/// <summary>The writer's prepared statements, reused for every write so SQLite parses each one once.</summary>
internal sealed class WriterStatements : IDisposable
{
    public WriterStatements(SqliteConnection c)
    {
        InsertDefinition = new(c, "INSERT OR IGNORE INTO definitions(hash, workflow, version, content, created_at) VALUES ($1, $2, $3, $4, $5)", 5);
        InsertJob = new(c, """
            INSERT INTO jobs(job_id, workflow, version, definition_hash, tenant, status, submitter, parent_job_id, root_job_id, trace_id, priority, created_at, updated_at, last_seq, head_hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING job_key
            """, 15);
        InsertEvent = new(c, """
            INSERT INTO events(job_key, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            """, 14);
        InsertItem = new(c, """
            INSERT INTO work_items(job_key, root_key, work_key, step_id, visit, attempt, scope, tenant, priority, available_at, visible_at, lease_owner, lease_token, deliveries, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING item_id
            """, 15);
        AdvanceJob = new(c, """
            UPDATE jobs SET last_seq = $1, head_hash = $2, status = $3, reason = coalesce($4, reason), updated_at = coalesce($5, updated_at)
            WHERE job_key = $6 AND last_seq = $7 AND head_hash = $8
            """, 8);
        DeleteLeased = new(c, "DELETE FROM work_items WHERE item_id = $1 AND job_key = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        CheckLease = new(c, "SELECT 1 FROM work_items WHERE item_id = $1 AND job_key = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        DropWork = new(c, "DELETE FROM work_items WHERE job_key = $1", 1);
        PutSnapshot = new(c, "INSERT OR REPLACE INTO snapshots(job_key, seq, state) VALUES ($1, $2, $3)", 3);
        RootAndTenant = new(c, "SELECT r.job_key, j.tenant FROM jobs j JOIN jobs r ON r.job_id = j.root_job_id WHERE j.job_key = $1", 1);
        Head = new(c, "SELECT job_id, last_seq, head_hash, status FROM jobs WHERE job_key = $1", 1);
        SelectReady = new(c, """
            SELECT item_id, job_key, step_id, visit, attempt, scope, tenant, priority, deliveries, lease_token FROM work_items
            WHERE visible_at <= $1 OR ($2 IS NOT NULL AND lease_owner IN (SELECT value FROM json_each($2)))
            ORDER BY priority DESC, visible_at, item_id LIMIT $3
            """, 4);
        SelectReadyForRoot = new(c, """
            SELECT item_id, job_key, step_id, visit, attempt, scope, tenant, priority, deliveries, lease_token FROM work_items
            WHERE root_key = $4 AND (visible_at <= $1 OR ($2 IS NOT NULL AND lease_owner IN (SELECT value FROM json_each($2))))
            ORDER BY priority DESC, visible_at, item_id LIMIT $3
            """, 4);
        Lease = new(c, "UPDATE work_items SET lease_owner = $1, lease_token = $2, deliveries = $3, visible_at = $4 WHERE item_id = $5", 5);
        Renew = new(c, "UPDATE work_items SET visible_at = $1 WHERE item_id = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        Release = new(c, "UPDATE work_items SET visible_at = $1, lease_owner = NULL WHERE item_id = $2 AND lease_owner = $3 AND lease_token = $4", 4);
    }

    public Statement InsertDefinition { get; }
    public Statement InsertJob { get; }
    public Statement InsertEvent { get; }
    public Statement InsertItem { get; }
    public Statement AdvanceJob { get; }
    public Statement DeleteLeased { get; }
    public Statement CheckLease { get; }
    public Statement DropWork { get; }
    public Statement PutSnapshot { get; }
    public Statement RootAndTenant { get; }
    public Statement Head { get; }
    public Statement SelectReady { get; }
    public Statement SelectReadyForRoot { get; }
    public Statement Lease { get; }
    public Statement Renew { get; }
    public Statement Release { get; }

    public void Dispose()
    {
        foreach (var s in new[] { InsertDefinition, InsertJob, InsertEvent, InsertItem, AdvanceJob, DeleteLeased, CheckLease, DropWork, PutSnapshot, RootAndTenant, Head, SelectReady, SelectReadyForRoot, Lease, Renew, Release })
        {
            s.Dispose();
        }
    }

    /// <summary>A prepared command with positional parameters $1..$n.</summary>
    internal sealed class Statement : IDisposable
    {
        private readonly SqliteCommand _command;
        private readonly SqliteParameter[] _parameters;

        public Statement(SqliteConnection connection, string sql, int parameterCount)
        {
            _command = connection.CreateCommand();
            _command.CommandText = sql;
            _parameters = new SqliteParameter[parameterCount];
            for (var i = 0; i < parameterCount; i++)
            {
                _parameters[i] = _command.Parameters.Add(new SqliteParameter("$" + (i + 1), null));
            }
        }

        public SqliteCommand Set(params ReadOnlySpan<object?> values)
        {
            for (var i = 0; i < _parameters.Length; i++)
            {
                _parameters[i].Value = i < values.Length ? values[i] ?? DBNull.Value : DBNull.Value;
            }

            return _command;
        }

        public void Dispose() => _command.Dispose();
    }
}

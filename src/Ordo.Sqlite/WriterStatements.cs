using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Ordo.Sqlite;

/// <summary>The writer's prepared statements, reused for every write so SQLite parses each one once.</summary>
internal sealed class WriterStatements : IDisposable
{
    /// <param name="c">The writer's connection.</param>
    /// <param name="auditLog">Whether the audit log is on: a job's row then records the last event logged (<c>logged_seq</c>), for sealing.</param>
    public WriterStatements(SqliteConnection c, bool auditLog)
    {
        // With the log on, logged_seq follows last_seq in the same row (no page more); with it off it stays as it was,
        // so that nothing written meanwhile is sealed later as if it had been logged.
        var logged = auditLog ? ", logged_seq = $1" : "";
        InsertDefinition = new(c, "INSERT OR IGNORE INTO definitions(hash, workflow, version, content, created_at) VALUES ($1, $2, $3, $4, $5)", 5);
        InsertJob = new(c, """
            INSERT INTO jobs(job_id, workflow, version, definition_hash, tenant, status, submitter, parent_job_id, root_job_id, trace_id, priority, created_at, updated_at, last_seq, head_hash, shadow, logged_seq)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 
            """ + (auditLog ? "$14)" : "0)"), 16);
        InsertEvent = new(c, """
            INSERT INTO events(job_key, seq, type, step_id, visit, attempt, scope, ts, agent, prompt_hash, model, policy, payload, hash, trace_id, span_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            """, 16);
        InsertItem = new(c, """
            INSERT INTO work_items(job_key, root_key, work_key, step_id, visit, attempt, scope, tenant, priority, available_at, visible_at, lease_owner, lease_token, deliveries, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """, 15);
        AdvanceJob = new(c, $"""
            UPDATE jobs SET last_seq = $1, head_hash = $2, status = $3, reason = coalesce($4, reason), updated_at = coalesce($5, updated_at){logged}
            WHERE job_key = $6 AND last_seq = $7 AND head_hash = $8
            """, 8);
        // Same parameters; status is matched instead of set, so the status index is not rewritten (one page less per commit).
        AdvanceJobSameStatus = new(c, $"""
            UPDATE jobs SET last_seq = $1, head_hash = $2, reason = coalesce($4, reason), updated_at = coalesce($5, updated_at){logged}
            WHERE job_key = $6 AND last_seq = $7 AND head_hash = $8 AND status = $3
            """, 8);
        InsertJobStats = new(c, "INSERT INTO job_stats(job_key, tenant, workflow, version, created_at, status) VALUES ($1, $2, $3, $4, $5, $6)", 6);
        UpdateJobStats = new(c, """
            UPDATE job_stats SET status = $2, ended_at = coalesce(ended_at, $3), tokens = tokens + $4, cost = cost + $5,
                retries = retries + $6, rejections = rejections + $7, escalations = escalations + $8
            WHERE job_key = $1
            """, 8);
        UpsertAgentStats = new(c, """
            INSERT INTO agent_stats(job_key, agent, prompt_hash, tenant, workflow, version, created_at, calls, failures, tokens, cost)
            SELECT $1, $2, $3, tenant, workflow, version, created_at, $4, $5, $6, $7 FROM job_stats WHERE job_key = $1
            ON CONFLICT(created_at, job_key, agent, prompt_hash) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures,
                tokens = tokens + excluded.tokens, cost = cost + excluded.cost
            """, 7);
        DeleteLeased = new(c, "DELETE FROM work_items WHERE item_id = $1 AND job_key = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        ContinueLeased = new(c, """
            UPDATE work_items SET work_key = $1, step_id = $2, visit = $3, attempt = $4, scope = $5, available_at = $6, created_at = $6,
                lease_token = lease_token + 1, deliveries = 1, lost = 0, lost_owners = NULL
            WHERE item_id = $7 AND job_key = $8 AND lease_owner = $9 AND lease_token = $10
            """, 10);
        CheckLease = new(c, "SELECT 1 FROM work_items WHERE item_id = $1 AND job_key = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        DropWork = new(c, "DELETE FROM work_items WHERE root_key = $3 AND job_key = $1 AND item_id <> $2", 3);
        // A scope's items are the work keys that start with "scope/": the range ["scope/", "scope0") holds exactly
        // those ('0' follows '/'), compares bytes (no LIKE wildcards in '_' or '%') and uses the index on (root_key, job_key).
        DropScope = new(c, "DELETE FROM work_items WHERE root_key = $5 AND job_key = $1 AND work_key >= $2 AND work_key < $3 AND item_id <> $4", 5);
        JobKeyById = new(c, "SELECT job_key FROM jobs WHERE job_id = $1", 1);
        ItemExists = new(c, "SELECT 1 FROM work_items WHERE root_key = $3 AND job_key = $1 AND work_key = $2 LIMIT 1", 3);
        PutSnapshot = new(c, "INSERT OR REPLACE INTO snapshots(job_key, seq, state) VALUES ($1, $2, $3)", 3);
        RootAndTenant = new(c, "SELECT r.job_key, j.tenant FROM jobs j JOIN jobs r ON r.job_id = j.root_job_id WHERE j.job_key = $1", 1);
        Head = new(c, "SELECT job_id, last_seq, head_hash, status FROM jobs WHERE job_key = $1", 1);
        // One tenant's ready items, in the order of the index on (tenant, priority DESC, visible_at): the scan stops at
        // the LIMIT, so its cost is that of the items returned (plus the tenant's leased items it steps over).
        SelectReadyOfTenant = new(c, """
            SELECT item_id, job_key, step_id, visit, attempt, scope, tenant, priority, deliveries, lease_token, lease_owner, lost, lost_owners, available_at FROM work_items
            WHERE tenant = $4 AND (visible_at <= $1 OR ($2 IS NOT NULL AND lease_owner IN (SELECT value FROM json_each($2))))
            ORDER BY priority DESC, visible_at, item_id LIMIT $3
            """, 4);
        // The tenants that have items, one index probe each: the first after $1 in byte order, and the first of all.
        NextTenant = new(c, "SELECT tenant FROM work_items WHERE tenant > $1 ORDER BY tenant LIMIT 1", 1);
        FirstTenant = new(c, "SELECT tenant FROM work_items ORDER BY tenant LIMIT 1", 0);
        SelectReadyForRoot = new(c, """
            SELECT item_id, job_key, step_id, visit, attempt, scope, tenant, priority, deliveries, lease_token, lease_owner, lost, lost_owners, available_at FROM work_items
            WHERE root_key = $4 AND (visible_at <= $1 OR ($2 IS NOT NULL AND lease_owner IN (SELECT value FROM json_each($2))))
            ORDER BY priority DESC, visible_at, item_id LIMIT $3
            """, 4);
        Lease = new(c, "UPDATE work_items SET lease_owner = $1, lease_token = $2, deliveries = $3, visible_at = $4, lost = $6, lost_owners = $7 WHERE item_id = $5", 7);
        Renew = new(c, "UPDATE work_items SET visible_at = $1 WHERE item_id = $2 AND lease_owner = $3 AND lease_token = $4", 4);
        Release = new(c, "UPDATE work_items SET visible_at = $1, lease_owner = NULL WHERE item_id = $2 AND lease_owner = $3 AND lease_token = $4", 4);
    }

    public Statement InsertDefinition { get; }
    public Statement InsertJob { get; }
    public Statement InsertEvent { get; }
    public Statement InsertItem { get; }
    public Statement AdvanceJob { get; }
    public Statement AdvanceJobSameStatus { get; }
    public Statement InsertJobStats { get; }
    public Statement UpdateJobStats { get; }
    public Statement UpsertAgentStats { get; }
    public Statement DeleteLeased { get; }
    public Statement ContinueLeased { get; }
    public Statement CheckLease { get; }
    public Statement DropWork { get; }
    public Statement DropScope { get; }
    public Statement JobKeyById { get; }
    public Statement ItemExists { get; }
    public Statement PutSnapshot { get; }
    public Statement RootAndTenant { get; }
    public Statement Head { get; }
    public Statement SelectReadyOfTenant { get; }
    public Statement NextTenant { get; }
    public Statement FirstTenant { get; }
    public Statement SelectReadyForRoot { get; }
    public Statement Lease { get; }
    public Statement Renew { get; }
    public Statement Release { get; }

    public void Dispose()
    {
        foreach (var s in new[] { InsertDefinition, InsertJob, InsertEvent, InsertItem, AdvanceJob, AdvanceJobSameStatus, InsertJobStats, UpdateJobStats, UpsertAgentStats, DeleteLeased, ContinueLeased, CheckLease, DropWork, DropScope, JobKeyById, ItemExists, PutSnapshot, RootAndTenant, Head, SelectReadyOfTenant, NextTenant, FirstTenant, SelectReadyForRoot, Lease, Renew, Release })
        {
            s.Dispose();
        }
    }

    /// <summary>
    /// A statement prepared once on the writer connection and bound by position: the writer's hot path talks to
    /// SQLite through SQLitePCL's raw API (the layer under Microsoft.Data.Sqlite), skipping per-execution parameter
    /// lookup by name and command bookkeeping. Not thread-safe: only the writer's leader uses it.
    /// </summary>
    internal sealed class Statement : IDisposable
    {
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _stmt;
        private readonly int _parameterCount;
        private readonly int[] _valueIndex;

        public Statement(SqliteConnection connection, string sql, int parameterCount)
        {
            _db = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
            Check(raw.sqlite3_prepare_v3(_db, sql, raw.SQLITE_PREPARE_PERSISTENT, out _stmt, out _));
            // SQLite numbers $-named parameters in order of first appearance: map each to the value position its
            // name says ($3 binds the third value). Callers may pass more values than the SQL uses, never fewer.
            _parameterCount = raw.sqlite3_bind_parameter_count(_stmt);
            _valueIndex = new int[_parameterCount];
            for (var i = 0; i < _parameterCount; i++)
            {
                var name = raw.sqlite3_bind_parameter_name(_stmt, i + 1).utf8_to_string();
                if (name is null || name.Length < 2 || name[0] != '$' || !int.TryParse(name.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture, out var n) || n < 1 || n > parameterCount)
                {
                    throw new InvalidOperationException($"parameter '{name}' is not one of $1..${parameterCount}: {sql}");
                }

                _valueIndex[i] = n - 1;
            }
        }

        /// <summary>Binds the values to $1..$n (missing values are NULL).</summary>
        public Statement Set(params ReadOnlySpan<object?> values)
        {
            for (var i = 0; i < _parameterCount; i++)
            {
                var position = _valueIndex[i];
                var value = position < values.Length ? values[position] : null;
                var index = i + 1;
                var rc = value switch
                {
                    null => raw.sqlite3_bind_null(_stmt, index),
                    long l => raw.sqlite3_bind_int64(_stmt, index, l),
                    int n => raw.sqlite3_bind_int64(_stmt, index, n),
                    double d => raw.sqlite3_bind_double(_stmt, index, d),
                    string text => raw.sqlite3_bind_text(_stmt, index, text),
                    byte[] blob => raw.sqlite3_bind_blob(_stmt, index, blob),
                    Utf8Text utf8 => raw.sqlite3_bind_text(_stmt, index, utf8.Bytes.Span),
                    _ => throw new ArgumentException($"cannot bind a {value.GetType().Name}", nameof(values)),
                };
                Check(rc);
            }

            return this;
        }

        /// <summary>Runs the statement to completion and returns the rows it changed.</summary>
        public int ExecuteNonQuery()
        {
            try
            {
                int rc;
                while ((rc = raw.sqlite3_step(_stmt)) == raw.SQLITE_ROW)
                {
                }

                if (rc != raw.SQLITE_DONE) Fail(rc);
                return raw.sqlite3_changes(_db);
            }
            finally
            {
                raw.sqlite3_reset(_stmt);
            }
        }

        /// <summary>Runs an INSERT to completion and returns the rowid of the row it inserted (cheaper than RETURNING).</summary>
        public long ExecuteInsert()
        {
            ExecuteNonQuery();
            return raw.sqlite3_last_insert_rowid(_db);
        }

        /// <summary>Runs the statement and returns the first column of its first row (long, string, byte[]) or null.</summary>

        public object? ExecuteScalar()
        {
            try
            {
                var rc = raw.sqlite3_step(_stmt);
                if (rc == raw.SQLITE_DONE) return null;
                if (rc != raw.SQLITE_ROW) Fail(rc);
                var value = Column(0);
                while ((rc = raw.sqlite3_step(_stmt)) == raw.SQLITE_ROW)
                {
                }

                if (rc != raw.SQLITE_DONE) Fail(rc);
                return value;
            }
            finally
            {
                raw.sqlite3_reset(_stmt);
            }
        }

        /// <summary>Runs the statement row by row; dispose the reader to reset the statement.</summary>
        public Reader ExecuteReader() => new(this);

        public void Dispose() => _stmt.Dispose();

        private object? Column(int i) => raw.sqlite3_column_type(_stmt, i) switch
        {
            raw.SQLITE_NULL => null,
            raw.SQLITE_INTEGER => raw.sqlite3_column_int64(_stmt, i),
            raw.SQLITE_BLOB => raw.sqlite3_column_blob(_stmt, i).ToArray(),
            _ => raw.sqlite3_column_text(_stmt, i).utf8_to_string(),
        };

        private void Check(int rc)
        {
            if (rc != raw.SQLITE_OK) Fail(rc);
        }

        private void Fail(int rc)
        {
            raw.sqlite3_reset(_stmt);
            SqliteException.ThrowExceptionForRC(rc, _db);
            throw new SqliteException($"SQLite error {rc}", rc);
        }

        /// <summary>Rows of a running statement, read by column position.</summary>
        public readonly struct Reader(Statement statement) : IDisposable
        {
            public bool Read()
            {
                var rc = raw.sqlite3_step(statement._stmt);
                if (rc == raw.SQLITE_ROW) return true;
                if (rc != raw.SQLITE_DONE) statement.Fail(rc);
                return false;
            }

            public long GetInt64(int i) => raw.sqlite3_column_int64(statement._stmt, i);

            public int GetInt32(int i) => raw.sqlite3_column_int(statement._stmt, i);

            public string GetString(int i) => raw.sqlite3_column_text(statement._stmt, i).utf8_to_string();

            public bool IsDBNull(int i) => raw.sqlite3_column_type(statement._stmt, i) == raw.SQLITE_NULL;

            public byte[] GetBlob(int i) => raw.sqlite3_column_blob(statement._stmt, i).ToArray();

            public void Dispose() => raw.sqlite3_reset(statement._stmt);
        }
    }
}

/// <summary>Text already encoded as UTF-8, bound without converting it to a string and back.</summary>
internal readonly record struct Utf8Text(ReadOnlyMemory<byte> Bytes);

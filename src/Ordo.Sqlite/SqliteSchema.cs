namespace Ordo.Sqlite;

/// <summary>
/// The tables of the store. Timestamps are Unix milliseconds; hashes are 32-byte blobs. A work item's indexed
/// columns (job, root, priority, visibility) do not change while a worker continues a job inline: the next step
/// rewrites only unindexed columns of the same row, so a step's commit touches as few pages as possible.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>
    /// The schema this build writes. 2: work items count their lost leases (<c>lost</c>, <c>lost_owners</c>).
    /// 3: the server's API keys (<c>api_keys</c>, hashes only).
    /// 4: events carry the trace and span they were created in (<c>trace_id</c>, <c>span_id</c>; null in older rows).
    /// 5: a kill switch may stop one tenant's jobs (<c>kill_switches.tenant</c>, empty for every tenant's).
    /// 6: the store-wide audit log (<c>audit_leaves</c>, <c>audit_nodes</c>) and its published checkpoints (<c>audit_checkpoints</c>).
    /// 7: summary rows of jobs and of their agents for <c>ordo stats</c> (<c>job_stats</c>, <c>agent_stats</c>), kept at
    /// each commit; the upgrade fills them from the events of the jobs already stored; release records (<c>release_records</c>);
    /// shadow jobs marked (<c>jobs.shadow</c>) so that no quota counts them.
    /// 8: a job's events are sealed into the audit log after their commit, several commits at once: <c>jobs.logged_seq</c>
    /// (the last event the store appended with the log on) and <c>jobs.sealed_seq</c> (the last one a leaf records).
    /// </summary>
    public const int Version = 8;

    /// <summary>The version that brought the audit log: upgrading to it backfills the log with what the store held.</summary>
    public const int AuditLogVersion = 6;

    /// <summary>The statements that take a database of each older version one version up.</summary>
    public static readonly IReadOnlyDictionary<int, string> Upgrades = new Dictionary<int, string>
    {
        [1] = """
            ALTER TABLE work_items ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE work_items ADD COLUMN lost_owners TEXT;
            """,
        // The table itself is made by Create (CREATE TABLE IF NOT EXISTS runs before the upgrades); nothing to change.
        [2] = "SELECT 1;",
        [3] = """
            ALTER TABLE events ADD COLUMN trace_id TEXT;
            ALTER TABLE events ADD COLUMN span_id TEXT;
            """,
        // The key becomes (tenant, target): the table is rebuilt; the switches of older versions stop every tenant.
        [4] = """
            CREATE TABLE kill_switches_v5(
                tenant TEXT NOT NULL,
                target TEXT NOT NULL,
                reason TEXT,
                set_by TEXT NOT NULL,
                set_at INTEGER NOT NULL,
                PRIMARY KEY(tenant, target)) WITHOUT ROWID;
            INSERT INTO kill_switches_v5(tenant, target, reason, set_by, set_at) SELECT '', target, reason, set_by, set_at FROM kill_switches;
            DROP TABLE kill_switches;
            ALTER TABLE kill_switches_v5 RENAME TO kill_switches;
            """,
        // ---- 5 -> 6 (AuditLogVersion): the audit log. Its tables are made by Create (CREATE TABLE IF NOT EXISTS runs
        // before the upgrades); after this statement SqliteAuditLog.Backfill records what the store already held.
        [5] = "SELECT 1;",
        // ---- 6 -> 7: stats summary rows (tables made by Create): filled once from the jobs and events already stored,
        // with the sums JobStatsDelta keeps at each commit from then on. Shadow jobs are marked from now on: no earlier
        // version could write one.
        [6] = "ALTER TABLE jobs ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;\n" + StatsBackfill,
        // ---- 7 -> 8: leaves sealed after their commit. Every version before sealed a job's events in their own
        // transaction, so what is stored is sealed as far as it was logged (a job written with the log off stays unlogged).
        [7] = """
            ALTER TABLE jobs ADD COLUMN logged_seq INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN sealed_seq INTEGER NOT NULL DEFAULT 0;
            UPDATE jobs SET logged_seq = last_seq, sealed_seq = last_seq;
            """,
    };

    /// <summary>Fills <c>job_stats</c> and <c>agent_stats</c> for the jobs stored before version 7.</summary>
    public const string StatsBackfill = """
        INSERT OR IGNORE INTO job_stats(job_key, tenant, workflow, version, created_at, ended_at, status, tokens, cost, retries, rejections, escalations)
        SELECT j.job_key, j.tenant, j.workflow, j.version, j.created_at,
               CASE WHEN j.status IN ('completed', 'failed', 'cancelled') THEN j.updated_at END, j.status,
               coalesce((SELECT sum(json_extract(e.payload, '$.input_tokens') + json_extract(e.payload, '$.output_tokens')) FROM events e WHERE e.job_key = j.job_key AND e.type = 'ModelCallSucceeded'), 0),
               coalesce((SELECT sum(json_extract(e.payload, '$.cost')) FROM events e WHERE e.job_key = j.job_key AND e.type = 'ModelCallSucceeded'), 0),
               (SELECT count(*) FROM events e WHERE e.job_key = j.job_key AND e.type = 'StepFailed' AND json_extract(e.payload, '$.will_retry') = 1),
               (SELECT count(*) FROM events e WHERE e.job_key = j.job_key AND e.type = 'ArtifactRejected'),
               (SELECT count(*) FROM events e WHERE e.job_key = j.job_key AND e.type = 'Escalated')
        FROM jobs j;
        INSERT OR IGNORE INTO agent_stats(job_key, agent, prompt_hash, tenant, workflow, version, created_at, calls, failures, tokens, cost)
        SELECT e.job_key, e.agent, coalesce(e.prompt_hash, ''), j.tenant, j.workflow, j.version, j.created_at,
               sum(e.type IN ('StepSucceeded', 'StepFailed')), sum(e.type = 'StepFailed'),
               sum(CASE WHEN e.type = 'ModelCallSucceeded' THEN json_extract(e.payload, '$.input_tokens') + json_extract(e.payload, '$.output_tokens') ELSE 0 END),
               sum(CASE WHEN e.type = 'ModelCallSucceeded' THEN json_extract(e.payload, '$.cost') ELSE 0 END)
        FROM events e JOIN jobs j ON j.job_key = e.job_key
        WHERE e.agent IS NOT NULL AND e.type IN ('StepSucceeded', 'StepFailed', 'ModelCallSucceeded')
        GROUP BY e.job_key, e.agent, coalesce(e.prompt_hash, '');
        """;

    /// <summary>The tables an Ordo database holds (any other table means the file is another program's).</summary>
    public static readonly IReadOnlySet<string> Tables = new HashSet<string>(StringComparer.Ordinal)
    {
        "meta", "definitions", "jobs", "events", "snapshots", "work_items", "kill_switches", "kill_switch_seeds", "api_keys",
        "audit_leaves", "audit_nodes", "audit_checkpoints",
        "job_stats", "agent_stats", "release_records",
    };

    public const string Create = """
        CREATE TABLE IF NOT EXISTS meta(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS definitions(
            hash TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            content BLOB NOT NULL,
            created_at INTEGER NOT NULL) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS jobs(
            job_key INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL UNIQUE,
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            definition_hash TEXT NOT NULL,
            tenant TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            submitter TEXT NOT NULL,
            parent_job_id TEXT,
            root_job_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            priority INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            head_hash BLOB NOT NULL,
            -- Version 7: 1 for a shadow job (or a job under one), which no quota counts.
            shadow INTEGER NOT NULL DEFAULT 0,
            -- Version 8 (SqliteAuditLog.cs): the last event the store appended with the audit log on (kept equal to
            -- last_seq by every commit; a row changed behind the store's back is not), and the last one a leaf of the
            -- log records. A job whose logged_seq is past its sealed_seq has leaves waiting to be sealed.
            logged_seq INTEGER NOT NULL DEFAULT 0,
            sealed_seq INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created_at DESC);
        CREATE INDEX IF NOT EXISTS jobs_by_tenant_status ON jobs(tenant, status, created_at DESC);
        CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs(parent_job_id) WHERE parent_job_id IS NOT NULL;

        CREATE TABLE IF NOT EXISTS events(
            job_key INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            step_id TEXT,
            visit INTEGER,
            attempt INTEGER,
            scope TEXT,
            ts INTEGER NOT NULL,
            agent TEXT,
            prompt_hash TEXT,
            model TEXT,
            policy TEXT,
            payload TEXT NOT NULL,
            hash BLOB NOT NULL,
            trace_id TEXT,
            span_id TEXT,
            PRIMARY KEY(job_key, seq)) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS snapshots(
            job_key INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL,
            state BLOB NOT NULL);

        CREATE TABLE IF NOT EXISTS work_items(
            item_id INTEGER PRIMARY KEY,
            job_key INTEGER NOT NULL,
            root_key INTEGER NOT NULL,
            work_key TEXT NOT NULL,
            step_id TEXT NOT NULL,
            visit INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            scope TEXT,
            tenant TEXT NOT NULL,
            priority INTEGER NOT NULL,
            available_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            lease_owner TEXT,
            lease_token INTEGER NOT NULL,
            deliveries INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            lost INTEGER NOT NULL DEFAULT 0,
            lost_owners TEXT);
        CREATE INDEX IF NOT EXISTS work_ready ON work_items(priority DESC, visible_at);
        CREATE INDEX IF NOT EXISTS work_by_tree ON work_items(root_key, job_key);
        -- Fair claims (SqliteOrdoStore.Queue.cs): the tenants with work, one probe each, and each tenant's next items in
        -- its own priority and availability order. Created on open like the others, so it needs no version of its own.
        CREATE INDEX IF NOT EXISTS work_by_tenant ON work_items(tenant, priority DESC, visible_at);

        CREATE TABLE IF NOT EXISTS kill_switches(
            tenant TEXT NOT NULL,
            target TEXT NOT NULL,
            reason TEXT,
            set_by TEXT NOT NULL,
            set_at INTEGER NOT NULL,
            PRIMARY KEY(tenant, target)) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS kill_switch_seeds(
            seed TEXT PRIMARY KEY) WITHOUT ROWID;

        -- Version 7: one summary row per job and per agent and prompt hash of a job, kept at each commit (ordo stats).
        CREATE TABLE IF NOT EXISTS job_stats(
            job_key INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            ended_at INTEGER,
            status TEXT NOT NULL,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            retries INTEGER NOT NULL DEFAULT 0,
            rejections INTEGER NOT NULL DEFAULT 0,
            escalations INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS job_stats_by_created ON job_stats(created_at, workflow, version);
        CREATE INDEX IF NOT EXISTS job_stats_by_tenant ON job_stats(tenant, created_at);

        CREATE TABLE IF NOT EXISTS agent_stats(
            job_key INTEGER NOT NULL,
            agent TEXT NOT NULL,
            prompt_hash TEXT NOT NULL,
            tenant TEXT NOT NULL,
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            -- Clustered by the job's creation: a window of ordo stats is one range of the table, read in order.
            PRIMARY KEY(created_at, job_key, agent, prompt_hash)) WITHOUT ROWID;

        -- Version 7 too: durable decisions about releases (a canary rolled back by itself), one per workflow, kind and version.
        CREATE TABLE IF NOT EXISTS release_records(
            workflow TEXT NOT NULL,
            kind TEXT NOT NULL,
            version INTEGER NOT NULL,
            at INTEGER NOT NULL,
            reason TEXT NOT NULL,
            figures TEXT NOT NULL,
            PRIMARY KEY(workflow, kind, version)) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS api_keys(
            key_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            identity TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER) WITHOUT ROWID;

        -- The audit log (SqliteAuditLog.cs): a Merkle tree over every append to a job's log and every definition stored.
        -- A leaf per append (kind 1: events FIRST_SEQ..LAST_SEQ of job SUBJECT, DIGEST the last one's hash; kind 2: the
        -- definition SUBJECT, DIGEST the SHA-256 of its content), sealed after the append's commit, many at once, at the
        -- end of one b-tree and not indexed otherwise; the hash of every perfect subtree of 16 leaves or more
        -- (smaller ones are hashed again from their leaves when a proof needs them).
        CREATE TABLE IF NOT EXISTS audit_leaves(
            idx INTEGER PRIMARY KEY,
            kind INTEGER NOT NULL,
            subject TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            digest BLOB NOT NULL,
            hash BLOB NOT NULL);

        -- The definitions' leaves, found by hash when a definition is loaded (its bytes are checked against the leaf's
        -- digest). Partial: only a definition's leaf, never a commit's, writes to it. Created on open, like the others.
        CREATE INDEX IF NOT EXISTS audit_definition_leaves ON audit_leaves(subject) WHERE kind = 2;

        CREATE TABLE IF NOT EXISTS audit_nodes(
            level INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY(level, idx)) WITHOUT ROWID;

        -- Checkpoints published by `ordo audit checkpoint` (the latest is served at GET /v1/audit/checkpoint).
        CREATE TABLE IF NOT EXISTS audit_checkpoints(
            id INTEGER PRIMARY KEY,
            tree_size INTEGER NOT NULL,
            root BLOB NOT NULL,
            time INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            public_key BLOB NOT NULL,
            jobs_digest BLOB,
            signature BLOB NOT NULL);
        """;
}

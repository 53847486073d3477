namespace Ordo.Postgres;

/// <summary>
/// The tables of the store, in one schema. Timestamps are Unix milliseconds (<c>bigint</c>); hashes are 32-byte
/// <c>bytea</c>. Tenants and work keys compare byte by byte (<c>COLLATE "C"</c>), whatever the database's locale, so
/// a scope's range and the tenants' turn order are the same as on SQLite. The version of the schema is the highest row
/// of <c>schema_version</c>; each migration adds its row in the transaction that applies it.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>
    /// The schema this build writes. 1: jobs, events, snapshots, definitions, work items, kill switches, API keys.
    /// 2: the store-wide audit log (<c>audit_head</c>, <c>audit_leaves</c>, <c>audit_nodes</c>) and its checkpoints.
    /// 3: appends leave their leaf in <c>audit_pending</c>, sealed into the log in order later (appends no longer wait for each other).
    /// 4: summary rows of jobs and of their agents for <c>ordo stats</c> (<c>job_stats</c>, <c>agent_stats</c>), kept at
    /// each commit and filled from the stored events of the jobs already there; release records (<c>release_records</c>);
    /// shadow jobs marked (<c>jobs.shadow</c>) so that no quota counts them.
    /// </summary>
    public const int Version = 4;

    /// <summary>The tables an Ordo schema holds (any other table means the schema is another program's).</summary>
    public static readonly IReadOnlySet<string> Tables = new HashSet<string>(StringComparer.Ordinal)
    {
        "schema_version", "definitions", "jobs", "events", "snapshots", "work_items", "kill_switches", "kill_switch_seeds", "api_keys",
        "audit_head", "audit_leaves", "audit_nodes", "audit_checkpoints", "audit_pending",
        "job_stats", "agent_stats", "release_records",
    };

    /// <summary>The statements that take a schema from the version before to each version (1: from nothing).</summary>
    public static readonly IReadOnlyList<(int Version, string Description, string Sql)> Migrations =
    [
        (1, "jobs, events, snapshots, definitions, work items, kill switches, API keys", """
            CREATE TABLE definitions(
                hash text PRIMARY KEY,
                workflow text NOT NULL,
                version integer NOT NULL,
                content bytea NOT NULL,
                created_at bigint NOT NULL);

            CREATE TABLE jobs(
                job_id text PRIMARY KEY,
                job_key bigint GENERATED ALWAYS AS IDENTITY,
                workflow text NOT NULL,
                version integer NOT NULL,
                definition_hash text NOT NULL,
                tenant text COLLATE "C" NOT NULL,
                status text NOT NULL,
                reason text,
                submitter text NOT NULL,
                parent_job_id text,
                root_job_id text NOT NULL,
                trace_id text NOT NULL,
                priority integer NOT NULL,
                created_at bigint NOT NULL,
                updated_at bigint NOT NULL,
                last_seq bigint NOT NULL,
                head_hash bytea NOT NULL);
            CREATE INDEX jobs_by_created ON jobs(created_at DESC, job_key DESC);
            CREATE INDEX jobs_by_tenant_status ON jobs(tenant, status, created_at DESC);
            CREATE INDEX jobs_by_parent ON jobs(parent_job_id) WHERE parent_job_id IS NOT NULL;

            CREATE TABLE events(
                job_id text NOT NULL,
                seq bigint NOT NULL,
                type text NOT NULL,
                step_id text,
                visit integer,
                attempt integer,
                scope text,
                ts bigint NOT NULL,
                agent text,
                prompt_hash text,
                model text,
                policy text,
                payload text NOT NULL,
                hash bytea NOT NULL,
                trace_id text,
                span_id text,
                PRIMARY KEY(job_id, seq));

            CREATE TABLE snapshots(
                job_id text PRIMARY KEY,
                seq bigint NOT NULL,
                state bytea NOT NULL);

            -- A worker that continues a job inline rewrites its item's row in place (same id, next token): the columns it
            -- changes are not indexed and the pages keep room for the new version, so the update stays on its page.
            CREATE TABLE work_items(
                item_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                job_id text NOT NULL,
                root_id text NOT NULL,
                work_key text COLLATE "C" NOT NULL,
                step_id text NOT NULL,
                visit integer NOT NULL,
                attempt integer NOT NULL,
                scope text,
                tenant text COLLATE "C" NOT NULL,
                priority integer NOT NULL,
                available_at bigint NOT NULL,
                visible_at bigint NOT NULL,
                lease_owner text,
                lease_token bigint NOT NULL,
                deliveries integer NOT NULL,
                created_at bigint NOT NULL,
                lost integer NOT NULL DEFAULT 0,
                lost_owners text) WITH (fillfactor = 70);
            -- Fair claims: the tenants with work, one probe each, and each tenant's next items in its own order.
            CREATE INDEX work_by_tenant ON work_items(tenant, priority DESC, visible_at, item_id);
            CREATE INDEX work_by_root ON work_items(root_id, priority DESC, visible_at, item_id);
            CREATE INDEX work_by_job ON work_items(job_id);

            -- A switch stops one tenant's jobs, or every tenant's (tenant '').
            CREATE TABLE kill_switches(
                tenant text COLLATE "C" NOT NULL,
                target text COLLATE "C" NOT NULL,
                reason text,
                set_by text NOT NULL,
                set_at bigint NOT NULL,
                PRIMARY KEY(tenant, target));

            CREATE TABLE kill_switch_seeds(
                seed text PRIMARY KEY);

            CREATE TABLE api_keys(
                key_id text PRIMARY KEY,
                tenant text NOT NULL,
                identity text NOT NULL,
                hash text NOT NULL UNIQUE,
                created_at bigint NOT NULL,
                revoked_at bigint);

            -- Refuses a commit from inside its own transaction: a lease that is no longer held (ORDLL), a log that moved
            -- on (ORDCF). Everything the transaction wrote before is rolled back with it.
            CREATE FUNCTION ordo_check(ok boolean, what text) RETURNS void LANGUAGE plpgsql AS $f$
            BEGIN
                IF ok IS NOT TRUE THEN
                    IF what = 'lease' THEN
                        RAISE EXCEPTION 'the work item''s lease is no longer held' USING ERRCODE = 'ORDLL';
                    ELSE
                        RAISE EXCEPTION 'the job''s log moved on' USING ERRCODE = 'ORDCF';
                    END IF;
                END IF;
            END
            $f$;
            """),
        // ---- 1 -> 2: the audit log (PostgresOrdoStore.Audit.cs). A leaf per append, its index taken from audit_head's
        // row in the appending transaction (which serializes appends, as the log's order needs); the subtrees above the
        // leaves are hashed when a proof first needs them and kept. Jobs written before are not in the log.
        (2, "the audit log and its checkpoints", """
            CREATE TABLE audit_head(
                id integer PRIMARY KEY CHECK (id = 1),
                size bigint NOT NULL);
            INSERT INTO audit_head(id, size) VALUES (1, 0);

            CREATE TABLE audit_leaves(
                idx bigint PRIMARY KEY,
                kind integer NOT NULL,
                subject text COLLATE "C" NOT NULL,
                first_seq bigint NOT NULL,
                last_seq bigint NOT NULL,
                digest bytea NOT NULL,
                hash bytea NOT NULL);
            CREATE INDEX audit_leaves_by_subject ON audit_leaves(subject);

            CREATE TABLE audit_nodes(
                level integer NOT NULL,
                idx bigint NOT NULL,
                hash bytea NOT NULL,
                PRIMARY KEY(level, idx));

            CREATE TABLE audit_checkpoints(
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                tree_size bigint NOT NULL,
                root bytea NOT NULL,
                time bigint NOT NULL,
                key_id text NOT NULL,
                public_key bytea NOT NULL,
                jobs_digest bytea,
                signature bytea NOT NULL);
            """),
        // ---- 2 -> 3: appends no longer take the log's next index in their own transaction, which made every commit of
        // every process wait for the one before it to be flushed. Each leaves its leaf here, in the order of an
        // identity; sealing moves the committed ones to audit_leaves in that order (PostgresOrdoStore.Audit.cs).
        (3, "audit leaves pending until sealed, so that appends do not wait for each other", """
            CREATE TABLE audit_pending(
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind integer NOT NULL,
                subject text COLLATE "C" NOT NULL,
                first_seq bigint NOT NULL,
                last_seq bigint NOT NULL,
                digest bytea NOT NULL,
                hash bytea NOT NULL);
            """),
        // ---- 3 -> 4: stats summary rows (PostgresOrdoStore.Stats.cs), kept in each commit's batch from then on with the
        // sums JobStatsDelta computes, and filled here once from the events of the jobs already stored (the same sums, as
        // SQLite's upgrade does). Only columns that never change are indexed (the creation, with the tenant or the workflow
        // for the queries of one: a canary is judged on its workflow's jobs of all time), never a figure: the rows a
        // commit updates stay on their page (fillfactor) without touching an index. Release records: one per workflow, kind and version.
        // Shadow jobs are marked from now on (no earlier version could write one); a constant default adds no row data.
        (4, "stats summary rows, release records, shadow jobs marked", """
            ALTER TABLE jobs ADD COLUMN shadow boolean NOT NULL DEFAULT false;

            CREATE TABLE job_stats(
                job_id text PRIMARY KEY,
                tenant text COLLATE "C" NOT NULL,
                workflow text NOT NULL,
                version integer NOT NULL,
                created_at bigint NOT NULL,
                ended_at bigint,
                status text NOT NULL,
                tokens bigint NOT NULL DEFAULT 0,
                cost numeric NOT NULL DEFAULT 0,
                retries bigint NOT NULL DEFAULT 0,
                rejections bigint NOT NULL DEFAULT 0,
                escalations bigint NOT NULL DEFAULT 0) WITH (fillfactor = 80);
            CREATE INDEX job_stats_by_created ON job_stats(created_at);
            CREATE INDEX job_stats_by_tenant ON job_stats(tenant, created_at);
            CREATE INDEX job_stats_by_workflow ON job_stats(workflow, created_at);

            CREATE TABLE agent_stats(
                job_id text NOT NULL,
                agent text NOT NULL,
                prompt_hash text NOT NULL,
                tenant text COLLATE "C" NOT NULL,
                workflow text NOT NULL,
                version integer NOT NULL,
                created_at bigint NOT NULL,
                calls bigint NOT NULL DEFAULT 0,
                failures bigint NOT NULL DEFAULT 0,
                tokens bigint NOT NULL DEFAULT 0,
                cost numeric NOT NULL DEFAULT 0,
                PRIMARY KEY(job_id, agent, prompt_hash)) WITH (fillfactor = 80);
            CREATE INDEX agent_stats_by_created ON agent_stats(created_at);
            CREATE INDEX agent_stats_by_tenant ON agent_stats(tenant, created_at);
            CREATE INDEX agent_stats_by_workflow ON agent_stats(workflow, created_at);

            CREATE TABLE release_records(
                workflow text COLLATE "C" NOT NULL,
                kind text COLLATE "C" NOT NULL,
                version integer NOT NULL,
                at bigint NOT NULL,
                reason text NOT NULL,
                figures text NOT NULL,
                PRIMARY KEY(workflow, kind, version));

            INSERT INTO job_stats(job_id, tenant, workflow, version, created_at, ended_at, status, tokens, cost, retries, rejections, escalations)
            SELECT j.job_id, j.tenant, j.workflow, j.version, j.created_at,
                   CASE WHEN j.status IN ('completed', 'failed', 'cancelled') THEN j.updated_at END, j.status,
                   coalesce(e.tokens, 0), coalesce(e.cost, 0), coalesce(e.retries, 0), coalesce(e.rejections, 0), coalesce(e.escalations, 0)
            FROM jobs j LEFT JOIN (
                SELECT job_id,
                       sum((payload::jsonb ->> 'input_tokens')::bigint + (payload::jsonb ->> 'output_tokens')::bigint) FILTER (WHERE type = 'ModelCallSucceeded') AS tokens,
                       sum((payload::jsonb ->> 'cost')::numeric) FILTER (WHERE type = 'ModelCallSucceeded') AS cost,
                       count(*) FILTER (WHERE type = 'StepFailed' AND (payload::jsonb ->> 'will_retry')::boolean) AS retries,
                       count(*) FILTER (WHERE type = 'ArtifactRejected') AS rejections,
                       count(*) FILTER (WHERE type = 'Escalated') AS escalations
                FROM events WHERE type IN ('ModelCallSucceeded', 'StepFailed', 'ArtifactRejected', 'Escalated')
                GROUP BY job_id) e ON e.job_id = j.job_id;

            INSERT INTO agent_stats(job_id, agent, prompt_hash, tenant, workflow, version, created_at, calls, failures, tokens, cost)
            SELECT e.job_id, e.agent, coalesce(e.prompt_hash, ''), j.tenant, j.workflow, j.version, j.created_at,
                   count(*) FILTER (WHERE e.type IN ('StepSucceeded', 'StepFailed')),
                   count(*) FILTER (WHERE e.type = 'StepFailed'),
                   coalesce(sum((e.payload::jsonb ->> 'input_tokens')::bigint + (e.payload::jsonb ->> 'output_tokens')::bigint) FILTER (WHERE e.type = 'ModelCallSucceeded'), 0),
                   coalesce(sum((e.payload::jsonb ->> 'cost')::numeric) FILTER (WHERE e.type = 'ModelCallSucceeded'), 0)
            FROM events e JOIN jobs j ON j.job_id = e.job_id
            WHERE e.agent IS NOT NULL AND e.type IN ('StepSucceeded', 'StepFailed', 'ModelCallSucceeded')
            GROUP BY e.job_id, e.agent, coalesce(e.prompt_hash, ''), j.tenant, j.workflow, j.version, j.created_at;
            """),
    ];

    /// <summary>The bookkeeping table, made before any migration runs.</summary>
    public const string VersionTable = """
        CREATE TABLE IF NOT EXISTS schema_version(
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())
        """;
}

#if PostgresQueue
import Logging
import PostgresNIO

/// The queue's tables, as versioned migrations: every pool runs them on start, under an
/// advisory lock, so pools that start together migrate once and in order. docs/queue.md
/// documents the result (the "Schema" section) for applications that enqueue with SQL.
///
/// Append a migration to change the schema; never edit one that has shipped.
struct QueueSchema {
    let schema: String

    /// The channel `NOTIFY` uses when a job becomes claimable; its payload is the queue's name.
    var channel: String { "\(schema)_jobs" }

    /// The advisory lock key of this schema's migrations: a fixed prefix and the schema's
    /// name, hashed by the server, so every pool computes the same key.
    private var lockKey: String { "pooltop.migrations.\(schema)" }

    /// Migration n is `migrations[n - 1]`: statements run in one transaction.
    var migrations: [[String]] {
        let s = schema
        return [
            [
                """
                CREATE TABLE \(s).jobs (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    queue text NOT NULL,
                    payload bytea NOT NULL,
                    priority integer NOT NULL DEFAULT 0,
                    weight integer NOT NULL DEFAULT 1 CHECK (weight >= 1),
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'dead')),
                    run_at timestamptz NOT NULL DEFAULT now(),
                    unique_key text,
                    attempts integer NOT NULL DEFAULT 0,
                    max_attempts integer CHECK (max_attempts >= 1),
                    lease_until timestamptz,
                    claim bigint,
                    claimed_by text,
                    expiries integer NOT NULL DEFAULT 0,
                    last_error text,
                    result bytea,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    started_at timestamptz,
                    finished_at timestamptz
                )
                """,
                // Claims read this index in order: highest priority first, then oldest.
                "CREATE INDEX jobs_claimable ON \(s).jobs (queue, priority DESC, run_at, id) WHERE state = 'pending'",
                "CREATE INDEX jobs_leased ON \(s).jobs (lease_until) WHERE state = 'running'",
                "CREATE INDEX jobs_done ON \(s).jobs (finished_at) WHERE state = 'done'",
                // A unique key holds only while its job waits or runs.
                "CREATE UNIQUE INDEX jobs_unique_key ON \(s).jobs (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running')",
                """
                CREATE FUNCTION \(s).notify_claimable() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.state = 'pending' AND NEW.run_at <= now() THEN
                        PERFORM pg_notify('\(channel)', NEW.queue);
                    END IF;
                    RETURN NULL;
                END $$
                """,
                // PostgreSQL folds equal notifications of one transaction into one, so a batch
                // of ten thousand jobs wakes each listener once per queue.
                // WHEN: claims and completions (the bulk of the updates) do not even call the function.
                "CREATE TRIGGER jobs_claimable AFTER INSERT OR UPDATE OF state, run_at ON \(s).jobs FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION \(s).notify_claimable()",
                """
                CREATE FUNCTION \(s).enqueue(
                    queue text, payload bytea, priority integer DEFAULT 0, run_at timestamptz DEFAULT now(),
                    unique_key text DEFAULT NULL, weight integer DEFAULT 1, max_attempts integer DEFAULT NULL
                ) RETURNS bigint LANGUAGE sql AS $$
                    INSERT INTO \(s).jobs (queue, payload, priority, run_at, unique_key, weight, max_attempts)
                    VALUES (queue, payload, priority, coalesce(run_at, now()), unique_key, weight, max_attempts)
                    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running') DO NOTHING
                    RETURNING id
                $$
                """,
                """
                CREATE FUNCTION \(s).enqueue(
                    queue text, payload text, priority integer DEFAULT 0, run_at timestamptz DEFAULT now(),
                    unique_key text DEFAULT NULL, weight integer DEFAULT 1, max_attempts integer DEFAULT NULL
                ) RETURNS bigint LANGUAGE sql AS $$
                    SELECT \(s).enqueue(queue, convert_to(payload, 'UTF8'), priority, run_at, unique_key, weight, max_attempts)
                $$
                """,
                // Recurring jobs: a tick is enqueued by the pool whose update moves `last_tick`.
                "CREATE TABLE \(s).cron (name text PRIMARY KEY, last_tick timestamptz NOT NULL)",
                // The fleet view: one row per running pool, refreshed by its heartbeat.
                """
                CREATE TABLE \(s).pools (
                    instance text PRIMARY KEY,
                    host text NOT NULL,
                    pool text NOT NULL,
                    pid integer NOT NULL,
                    version text NOT NULL,
                    summary text NOT NULL DEFAULT '',
                    workers_ready integer NOT NULL DEFAULT 0,
                    workers_total integer NOT NULL DEFAULT 0,
                    jobs_per_second double precision NOT NULL DEFAULT 0,
                    started_at timestamptz NOT NULL DEFAULT now(),
                    seen_at timestamptz NOT NULL DEFAULT now()
                )
                """,
            ],
            [
                // The dead jobs, newest first (`pooltop dead`, the console), and their count in
                // the figures, without reading the done jobs a busy queue keeps for `keepDone`.
                "CREATE INDEX jobs_dead ON \(s).jobs (finished_at DESC) WHERE state = 'dead'"
            ],
        ]
    }

    /// Brings the schema to the newest version; returns the versions it applied (none when
    /// another pool did it first).
    func migrate(on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.inTransaction(logger: logger) {
            // Held to the end of the transaction: a second pool waits here, then finds the
            // versions applied and applies nothing.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger)
            try await connection.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS \(unescaped: schema).migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var current = 0
            for try await version in try await connection.query(
                "SELECT coalesce(max(version), 0) FROM \(unescaped: schema).migrations", logger: logger
            ).decode(Int.self) {
                current = version
            }
            var applied: [Int] = []
            for (index, statements) in migrations.enumerated() where index + 1 > current {
                for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query(
                    "INSERT INTO \(unescaped: schema).migrations (version) VALUES (\(index + 1))", logger: logger)
                applied.append(index + 1)
            }
            return applied
        }
    }
}

extension PostgresConnection {
    /// Runs `body` between `BEGIN` and `COMMIT`, and returns its value only once the `COMMIT`
    /// is answered; rolls back when `body` or the `COMMIT` fails, and throws that error.
    func inTransaction<T>(logger: Logger, _ body: () async throws -> T) async throws -> T {
        try await query("BEGIN", logger: logger)
        do {
            let value = try await body()
            try await query("COMMIT", logger: logger)
            return value
        } catch {
            _ = try? await query("ROLLBACK", logger: logger)  // The error below says what failed.
            throw error
        }
    }
}
#endif

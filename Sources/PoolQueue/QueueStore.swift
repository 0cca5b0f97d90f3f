#if PostgresQueue
import Logging
import PoolEngine
import PostgresNIO

/// A job as a claim returned it: what to run, and the claim that later statements about it
/// must match (a job whose lease expired and was claimed again has another claim).
struct ClaimedJob: Sendable {
    var id: Int64
    var claim: Int64
    var queue: String
    var payload: ByteBuffer
    var priority: Int
    var weight: Int
    var attempt: Int
    /// From when it could run (`run_at`) to its claim, in seconds: the claim latency.
    var waited: Double
}

/// When an enqueued job may run.
public enum RunAt: Sendable, Hashable {
    /// At this time, in seconds since the epoch.
    case at(Double)
    /// This long from now, on the database's clock (hosts' clocks may differ from it).
    case after(Duration)
}

/// How a claimed job ended, to be written back.
enum JobOutcome: Sendable {
    /// It ran and answered.
    case done(result: ByteBuffer)
    /// It ran and failed: retried after `delay`, or dead once its attempts are used up, or
    /// at once when `permanent` (it can never succeed, such as a payload over the limit).
    case failed(error: String, delay: Duration, permanent: Bool)
    /// It never ran (no worker had room, or the pool is stopping): back to pending after
    /// `delay`, its attempt not counted.
    case released(delay: Duration)
}

/// A pool in the fleet view: one row per running pool that uses the queue, refreshed by its
/// heartbeat.
public struct FleetMember: Sendable, Hashable, Codable {
    /// `host/pool/pid`, as in a job's `claimed_by`.
    public var instance: String
    public var host: String
    public var pool: String
    public var pid: Int32
    public var version: String
    /// One line: groups and their ready workers.
    public var summary: String
    public var workersReady: Int
    public var workersTotal: Int
    /// Jobs the pool's job groups finished per second, over the last heartbeat interval.
    public var jobsPerSecond: Double
    /// Seconds since its last heartbeat (when read back).
    public var heartbeatAge: Double = 0
    public var uptime: Double = 0
}

/// The queue's statements, on one connection. Every statement about a claimed job matches
/// its claim, so a pool whose lease ran out can no longer change a job another pool took.
struct QueueStore: Sendable {
    let schema: String

    /// Claims up to `limit` claimable jobs of `queues`, highest priority first, then oldest
    /// (``ClaimStatement``). The connection's `search_path` must be the queue's schema.
    ///
    /// In a transaction of its own, and the jobs are returned only once its `COMMIT` is
    /// answered. Without one, PostgreSQL commits a statement of the extended protocol only at
    /// the `Sync` after it: a server stopped between the two has sent every row and the
    /// statement's completion, yet rolls the claim back, and the pool runs jobs the table still
    /// offers; claimed again later, they run twice in one counted attempt. (CI once saw two
    /// jobs do so across a `pg_ctl -m fast stop` under load; this is the way we found for it.)
    /// Now a lost `COMMIT` answer leaves at worst a claim nobody runs, which its lease's expiry
    /// puts back.
    func claim(
        queues: [String], limit: Int, lease: Duration, owner: String, claim: Int64,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [ClaimedJob] {
        let jobs = try await connection.inTransaction(logger: logger) {
            let rows = try await connection.execute(
                ClaimStatement(queues: queues, limit: limit, claim: claim, owner: owner, leaseSeconds: lease.seconds), logger: logger)
            var jobs: [ClaimedJob] = []
            for try await (id, queue, payload, priority, weight, attempt, waited) in rows {
                jobs.append(
                    ClaimedJob(
                        id: id, claim: claim, queue: queue, payload: payload, priority: priority, weight: weight,
                        attempt: attempt, waited: waited))
            }
            return jobs
        }
        // A batch in claim order, so the highest priority is sent first.
        return jobs.sorted { ($0.priority, -$0.id) > ($1.priority, -$1.id) }
    }

    /// Writes outcomes back; returns how many jobs went dead. The connection's `search_path`
    /// must be the queue's schema (``CompleteStatement``).
    @discardableResult
    func record(
        _ outcomes: [(job: ClaimedJob, outcome: JobOutcome)], retries: Int, keepDone: Bool,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        var doneIDs: [Int64] = [], doneClaims: [Int64] = [], results: [ByteBuffer] = []
        var failedIDs: [Int64] = [], failedClaims: [Int64] = [], errors: [String] = [], delays: [Double] = [], permanent: [Bool] = []
        var releasedIDs: [Int64] = [], releasedClaims: [Int64] = [], releaseDelays: [Double] = []
        for (job, outcome) in outcomes {
            switch outcome {
            case .done(let result):
                doneIDs.append(job.id)
                doneClaims.append(job.claim)
                results.append(result)
            case .failed(let error, let delay, let isPermanent):
                failedIDs.append(job.id)
                failedClaims.append(job.claim)
                errors.append(error)
                delays.append(delay.seconds)
                permanent.append(isPermanent)
            case .released(let delay):
                releasedIDs.append(job.id)
                releasedClaims.append(job.claim)
                releaseDelays.append(delay.seconds)
            }
        }
        if !doneIDs.isEmpty {
            if keepDone {
                _ = try await connection.execute(CompleteStatement(ids: doneIDs, claims: doneClaims, results: results), logger: logger)
            } else {
                try await connection.query(
                    """
                    DELETE FROM \(unescaped: schema).jobs AS j
                    USING unnest(\(doneIDs)::bigint[], \(doneClaims)::bigint[]) AS r(id, claim)
                    WHERE j.id = r.id AND j.claim = r.claim AND j.state = 'running'
                    """, logger: logger)
            }
        }
        var dead = 0
        if !failedIDs.isEmpty {
            let rows = try await connection.query(
                """
                UPDATE \(unescaped: schema).jobs AS j
                SET state = CASE WHEN r.permanent OR j.attempts >= coalesce(j.max_attempts, \(retries + 1)) THEN 'dead' ELSE 'pending' END,
                    run_at = CASE WHEN r.permanent OR j.attempts >= coalesce(j.max_attempts, \(retries + 1)) THEN j.run_at
                        ELSE now() + make_interval(secs => r.delay) END,
                    finished_at = CASE WHEN r.permanent OR j.attempts >= coalesce(j.max_attempts, \(retries + 1)) THEN now() END,
                    last_error = r.error, lease_until = NULL, claim = NULL, claimed_by = NULL
                FROM unnest(\(failedIDs)::bigint[], \(failedClaims)::bigint[], \(errors)::text[], \(delays)::float8[], \(permanent)::bool[])
                    AS r(id, claim, error, delay, permanent)
                WHERE j.id = r.id AND j.claim = r.claim AND j.state = 'running'
                RETURNING j.state
                """, logger: logger)
            for try await state in rows.decode(String.self) where state == "dead" { dead += 1 }
        }
        if !releasedIDs.isEmpty {
            try await connection.query(
                """
                UPDATE \(unescaped: schema).jobs AS j
                SET state = 'pending', attempts = greatest(j.attempts - 1, 0), run_at = now() + make_interval(secs => r.delay),
                    lease_until = NULL, claim = NULL, claimed_by = NULL
                FROM unnest(\(releasedIDs)::bigint[], \(releasedClaims)::bigint[], \(releaseDelays)::float8[]) AS r(id, claim, delay)
                WHERE j.id = r.id AND j.claim = r.claim AND j.state = 'running'
                """, logger: logger)
        }
        return dead
    }

    /// Extends the leases of jobs still running here; returns how many this pool still holds.
    func renew(
        _ jobs: [ClaimedJob], lease: Duration, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        guard !jobs.isEmpty else { return 0 }
        let rows = try await connection.query(
            """
            UPDATE \(unescaped: schema).jobs AS j SET lease_until = now() + make_interval(secs => \(lease.seconds))
            FROM unnest(\(jobs.map(\.id))::bigint[], \(jobs.map(\.claim))::bigint[]) AS r(id, claim)
            WHERE j.id = r.id AND j.claim = r.claim AND j.state = 'running'
            RETURNING j.id
            """, logger: logger)
        var held = 0
        for try await _ in rows.decode(Int64.self) { held += 1 }
        return held
    }

    /// Puts back jobs whose lease ran out (their pool died or lost the database): claimable
    /// again, or dead when that was their last attempt. Any pool may do it; returns how many.
    func recoverExpired(retries: Int, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            """
            UPDATE \(unescaped: schema).jobs
            SET state = CASE WHEN attempts >= coalesce(max_attempts, \(retries + 1)) THEN 'dead' ELSE 'pending' END,
                finished_at = CASE WHEN attempts >= coalesce(max_attempts, \(retries + 1)) THEN now() END,
                expiries = expiries + 1,
                last_error = 'lease expired: ' || coalesce(claimed_by, 'its pool') || ' stopped renewing it',
                lease_until = NULL, claim = NULL, claimed_by = NULL
            WHERE state = 'running' AND lease_until < now()
            RETURNING id
            """, logger: logger)
        var recovered = 0
        for try await _ in rows.decode(Int64.self) { recovered += 1 }
        return recovered
    }

    /// Deletes done jobs older than `keep`, at most 10,000 a call so that no call holds locks long.
    func prune(keep: Duration, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            DELETE FROM \(unescaped: schema).jobs WHERE id IN (
                SELECT id FROM \(unescaped: schema).jobs
                WHERE state = 'done' AND finished_at < now() - make_interval(secs => \(keep.seconds))
                LIMIT 10000)
            """, logger: logger)
    }

    /// Enqueues the firing of a recurring job at `tick` (seconds since the epoch) if no pool has
    /// yet: one statement, so exactly one pool's update moves `last_tick` and enqueues. A name
    /// seen for the first time only records the tick (a new schedule does not fire for a time
    /// already past). Returns the job's id when this pool enqueued it.
    func enqueueCron(
        _ job: PostgresQueueConfiguration.CronJob, tick: Int64, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        let rows = try await connection.query(
            """
            WITH registered AS (
                INSERT INTO \(unescaped: schema).cron (name, last_tick) VALUES (\(job.name), to_timestamp(\(Double(tick))::float8))
                ON CONFLICT (name) DO NOTHING RETURNING 1
            ), won AS (
                UPDATE \(unescaped: schema).cron SET last_tick = to_timestamp(\(Double(tick))::float8)
                WHERE name = \(job.name) AND last_tick < to_timestamp(\(Double(tick))::float8) RETURNING 1
            )
            INSERT INTO \(unescaped: schema).jobs (queue, payload, priority, unique_key)
            SELECT \(job.queue), convert_to(\(job.payload), 'UTF8'), \(job.priority)::integer, 'cron:' || \(job.name) || ':' || \(tick)::bigint
            FROM won
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running') DO NOTHING
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        return nil
    }

    /// Records this pool in the fleet view (insert or refresh).
    func heartbeat(_ beat: FleetMember, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO \(unescaped: schema).pools
                (instance, host, pool, pid, version, summary, workers_ready, workers_total, jobs_per_second, seen_at)
            VALUES (\(beat.instance), \(beat.host), \(beat.pool), \(Int(beat.pid))::integer, \(beat.version), \(beat.summary),
                \(beat.workersReady)::integer, \(beat.workersTotal)::integer, \(beat.jobsPerSecond), now())
            ON CONFLICT (instance) DO UPDATE SET summary = EXCLUDED.summary, workers_ready = EXCLUDED.workers_ready,
                workers_total = EXCLUDED.workers_total, jobs_per_second = EXCLUDED.jobs_per_second, seen_at = now()
            """, logger: logger)
    }

    /// Takes this pool out of the fleet view (a graceful stop).
    func leaveFleet(instance: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("DELETE FROM \(unescaped: schema).pools WHERE instance = \(instance)", logger: logger)
    }

    /// Every pool in the fleet view, with the age of its last heartbeat.
    func fleet(on connection: PostgresConnection, logger: Logger) async throws -> [FleetMember] {
        let rows = try await connection.query(
            """
            SELECT instance, host, pool, pid, version, summary, workers_ready, workers_total, jobs_per_second,
                extract(epoch FROM now() - seen_at)::float8, extract(epoch FROM now() - started_at)::float8
            FROM \(unescaped: schema).pools ORDER BY host, pool, pid
            """, logger: logger)
        var members: [FleetMember] = []
        for try await (instance, host, pool, pid, version, summary, ready, total, rate, age, uptime) in rows.decode(
            (String, String, String, Int, String, String, Int, Int, Double, Double, Double).self)
        {
            members.append(
                FleetMember(
                    instance: instance, host: host, pool: pool, pid: Int32(truncatingIfNeeded: pid), version: version,
                    summary: summary, workersReady: ready, workersTotal: total, jobsPerSecond: rate, heartbeatAge: age,
                    uptime: uptime))
        }
        return members
    }

    /// Enqueues a job; nil when a job with the same unique key is pending or running.
    func enqueue(
        queue: String, payload: ByteBuffer, priority: Int, weight: Int, runAt: RunAt?, uniqueKey: String?,
        maxAttempts: Int?, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        var epoch: Double?
        var delay: Double?
        switch runAt {
        case .at(let seconds): epoch = seconds
        case .after(let duration): delay = duration.seconds
        case nil: break
        }
        let rows = try await connection.query(
            """
            SELECT \(unescaped: schema).enqueue(\(queue), \(payload), \(priority)::integer,
                coalesce(to_timestamp(\(epoch)::float8), now() + make_interval(secs => coalesce(\(delay)::float8, 0))),
                \(uniqueKey)::text, \(weight)::integer, \(maxAttempts)::integer)
            """, logger: logger)
        for try await id in rows.decode(Int64?.self) { return id }
        return nil
    }

    /// Each queue's figures: the named queues in that order, one without a job with zeros (all
    /// queues that have a job when none is named).
    func figures(queues: [String], on connection: PostgresConnection, logger: Logger) async throws -> [QueueFigures] {
        let rows = try await connection.query(
            """
            SELECT queue,
                count(*) FILTER (WHERE state = 'pending' AND run_at <= now()),
                count(*) FILTER (WHERE state = 'pending' AND run_at > now() AND attempts = 0),
                count(*) FILTER (WHERE state = 'pending' AND run_at > now() AND attempts > 0),
                count(*) FILTER (WHERE state = 'running'),
                count(*) FILTER (WHERE state = 'dead'),
                count(*) FILTER (WHERE state = 'done' AND finished_at > now() - interval '1 minute'),
                extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'pending' AND run_at <= now()))::float8
            FROM \(unescaped: schema).jobs
            WHERE (cardinality(\(queues)::text[]) = 0 OR queue = ANY(\(queues)))
                -- Each arm matches a partial index, so the done jobs kept for keepDone (most
                -- of a busy table) are never read, only the last minute's.
                AND (state = 'pending' OR state = 'running' OR state = 'dead'
                    OR (state = 'done' AND finished_at > now() - interval '1 minute'))
            GROUP BY queue ORDER BY queue
            """, logger: logger)
        var figures: [QueueFigures] = []
        for try await (queue, available, scheduled, retrying, running, dead, done, oldest) in rows.decode(
            (String, Int, Int, Int, Int, Int, Int, Double?).self)
        {
            figures.append(
                QueueFigures(
                    queue: queue, available: available, scheduled: scheduled, retrying: retrying, running: running,
                    dead: dead, doneLastMinute: done, oldestAge: oldest))
        }
        guard !queues.isEmpty else { return figures }
        // A queue without a job has no row: the named ones are all listed, with zeros.
        return queues.map { queue in
            figures.first { $0.queue == queue }
                ?? QueueFigures(queue: queue, available: 0, scheduled: 0, retrying: 0, running: 0, dead: 0, doneLastMinute: 0)
        }
    }

    /// The dead jobs, newest first.
    func deadJobs(queues: [String], limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [DeadJob] {
        let rows = try await connection.query(
            """
            SELECT id, queue, attempts, coalesce(last_error, ''), substring(payload FROM 1 FOR 80),
                extract(epoch FROM coalesce(finished_at, now()))::float8
            FROM \(unescaped: schema).jobs
            WHERE state = 'dead' AND (cardinality(\(queues)::text[]) = 0 OR queue = ANY(\(queues)))
            ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT \(limit)
            """, logger: logger)
        var jobs: [DeadJob] = []
        for try await (id, queue, attempts, error, head, finished) in rows.decode(
            (Int64, String, Int, String, ByteBuffer, Double).self)
        {
            jobs.append(
                DeadJob(
                    id: id, queue: queue, attempts: attempts, lastError: error,
                    payloadHead: String(decoding: head.readableBytesView, as: UTF8.self), finishedAt: finished))
        }
        return jobs
    }

    /// A dead job back to pending with fresh attempts; false when no dead job has that id.
    func retryDead(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE \(unescaped: schema).jobs SET state = 'pending', attempts = 0, run_at = now(), finished_at = NULL
            WHERE id = \(id) AND state = 'dead' RETURNING id
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    /// Deletes a dead job; false when no dead job has that id.
    func discardDead(id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM \(unescaped: schema).jobs WHERE id = \(id) AND state = 'dead' RETURNING id", logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }
}
#endif

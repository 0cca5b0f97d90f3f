#if PostgresQueue
import PoolEngine

/// What a `postgres-queue` group does: which database, which queues on which job groups, and
/// how claims, leases, retries and pruning behave. Read from the group's `settings:` in
/// pool.yaml (``init(settings:path:)``) or built in Swift for ``PostgresQueueGroup``.
///
/// docs/queue.md has every key with its default.
public struct PostgresQueueConfiguration: Hashable, Sendable {
    /// A queue this pool works on, and the job group that runs its jobs.
    public struct Queue: Hashable, Sendable {
        public var name: String
        public var jobGroup: String

        public init(_ name: String, jobGroup: String) {
            self.name = name
            self.jobGroup = jobGroup
        }
    }

    /// How long a failed job waits before its next try: `initial × factor^(attempt − 1)`,
    /// at most `maximum`, then a random part of it ("equal jitter": half fixed, half random),
    /// so that jobs that failed together do not come back together.
    public struct Backoff: Hashable, Sendable {
        public var initial: Duration = .seconds(1)
        public var factor: Double = 2
        public var maximum: Duration = .seconds(3600)

        public init(initial: Duration = .seconds(1), factor: Double = 2, maximum: Duration = .seconds(3600)) {
            self.initial = initial
            self.factor = factor
            self.maximum = maximum
        }

        /// The delay before try `attempt + 1`, after `attempt` failed (`attempt` ≥ 1); `random`
        /// is in 0...1 (a parameter, so tests choose it).
        public func delay(afterAttempt attempt: Int, random: Double) -> Duration {
            let seconds = min(
                maximum.seconds,
                initial.seconds * integerPower(factor, Double(max(0, attempt - 1))))
            return .milliseconds(Int64(((seconds / 2) + (seconds / 2) * min(1, max(0, random))) * 1000))
        }
    }

    /// A recurring job: enqueued on every firing of its schedule, by exactly one of the pools
    /// that share the queue's schema.
    public struct CronJob: Hashable, Sendable {
        /// Names the job across pools: pools with the same name share its firings.
        public var name: String
        public var schedule: CronSchedule
        public var queue: String
        public var payload: String
        public var priority: Int

        public init(_ name: String, schedule: CronSchedule, queue: String, payload: String, priority: Int = 0) {
            self.name = name
            self.schedule = schedule
            self.queue = queue
            self.payload = payload
            self.priority = priority
        }
    }

    /// A `postgres://` URL; nil means the standard `PG*` variables of the worker's environment.
    public var url: String?
    public var queues: [Queue]
    /// The schema that holds the queue's tables; every pool sharing a queue names the same one.
    public var schema: String = "pooltop"
    /// Jobs claimed and in flight at once, for this pool.
    public var concurrency: Int = 32
    /// How long a claim holds without renewal: a pool that dies stops renewing, and its jobs
    /// are claimable again this long after its last renewal.
    public var lease: Duration = .seconds(30)
    /// Tries after the first, for a job that fails; then it is dead.
    public var retries: Int = 5
    public var backoff = Backoff()
    /// How long one try may run on its job worker before it counts as failed (timed out).
    public var jobTimeout: Duration = .seconds(300)
    /// How often an idle pool looks for jobs when no notification came (notifications wake
    /// it at once; polling finds jobs whose `runAt` came, and covers a lost notification).
    public var poll: Duration = .seconds(1)
    /// How long finished (done) jobs are kept before they are deleted; dead jobs stay until
    /// an operator retries or discards them.
    public var keepDone: Duration = .seconds(3600)
    /// How long a graceful stop waits for running jobs before it releases them.
    public var drain: Duration = .seconds(5)
    /// Recurring jobs (`cron:` in the settings).
    public var cron: [CronJob] = []

    public init(url: String? = nil, queues: [Queue]) {
        self.url = url
        self.queues = queues
    }

    /// The keys of the settings (docs/queue.md, "Queue keys", lists exactly these).
    public static let keys = ["url", "queues", "schema", "concurrency", "lease", "retries", "backoff", "jobTimeout", "poll", "keepDone", "drain", "cron"]
    static let backoffKeys = ["initial", "factor", "max"]
    static let cronKeys = ["schedule", "queue", "payload", "priority"]

    /// Reads and checks a group's settings; errors name the key path under `path` (the group's).
    public init(settings: [String: SettingValue], path: String) throws(ConfigurationError) {
        let reader = try SettingsReader(settings, path: "\(path).settings", allowed: Self.keys)
        url = try reader.string("url")
        if let url {
            do {
                _ = try DatabaseAddress(url: url, environment: [:])
            } catch {
                throw ConfigurationError(path: reader.keyPath("url"), message: error.message)
            }
        }
        guard let entries = try reader.namedEntries("queues"), !entries.isEmpty else {
            throw ConfigurationError(
                path: reader.keyPath("queues"),
                message: "name at least one queue and the job group that runs it, for example 'queues: {default: jobs}'")
        }
        queues = []
        for (name, value) in entries {
            let keyPath = "\(reader.keyPath("queues")).\(name)"
            try Self.checkQueueName(name, path: keyPath)
            guard let group = value.text, !group.isEmpty else {
                throw ConfigurationError(path: keyPath, message: "must name the job group that runs the queue's jobs")
            }
            queues.append(Queue(name, jobGroup: group))
        }
        if let schema = try reader.string("schema") {
            try Self.checkIdentifier(schema, path: reader.keyPath("schema"))
            self.schema = schema
        }
        concurrency = try reader.integer("concurrency", in: 1...10_000) ?? concurrency
        lease = try reader.duration("lease", in: .seconds(2)...(.seconds(86_400))) ?? lease
        retries = try reader.integer("retries", in: 0...1000) ?? retries
        jobTimeout = try reader.duration("jobTimeout", in: .milliseconds(10)...(.seconds(86_400))) ?? jobTimeout
        poll = try reader.duration("poll", in: .milliseconds(10)...(.seconds(3600))) ?? poll
        keepDone = try reader.duration("keepDone", in: .zero...(.seconds(365 * 86_400))) ?? keepDone
        drain = try reader.duration("drain", in: .zero...(.seconds(3600))) ?? drain
        cron = try Self.cronJobs(reader)
        if let backoffReader = try reader.map("backoff", allowed: Self.backoffKeys) {
            backoff.initial = try backoffReader.duration("initial", in: .milliseconds(1)...(.seconds(86_400))) ?? backoff.initial
            backoff.factor = try backoffReader.number("factor", in: 1...100) ?? backoff.factor
            backoff.maximum = try backoffReader.duration("max", in: .milliseconds(1)...(.seconds(30 * 86_400))) ?? backoff.maximum
            if backoff.maximum < backoff.initial {
                throw ConfigurationError(
                    path: backoffReader.keyPath("max"),
                    message: "must not be shorter than backoff.initial (\(DurationParser.format(backoff.initial)))")
            }
        }
    }

    /// `cron: {NAME: {schedule, queue, payload, priority}}`.
    private static func cronJobs(_ reader: SettingsReader) throws(ConfigurationError) -> [CronJob] {
        guard let entries = try reader.namedEntries("cron") else { return [] }
        var jobs: [CronJob] = []
        for (name, value) in entries {
            let path = "\(reader.keyPath("cron")).\(name)"
            try checkQueueName(name, path: path)
            guard case .map(let values) = value else {
                throw ConfigurationError(path: path, message: "must be a mapping: {schedule: \"0 3 * * *\", queue: NAME, payload: TEXT}")
            }
            let entry = try SettingsReader(values, path: path, allowed: cronKeys)
            guard let scheduleText = try entry.string("schedule") else {
                throw ConfigurationError(path: entry.keyPath("schedule"), message: "is missing: a cron schedule such as \"0 3 * * *\"")
            }
            let schedule: CronSchedule
            do {
                schedule = try CronSchedule(scheduleText)
            } catch {
                throw ConfigurationError(path: entry.keyPath("schedule"), message: error.message)
            }
            guard let queue = try entry.string("queue") else {
                throw ConfigurationError(path: entry.keyPath("queue"), message: "is missing: the queue each firing enqueues into")
            }
            try checkQueueName(queue, path: entry.keyPath("queue"))
            let priority = try entry.integer("priority", in: -1_000_000...1_000_000) ?? 0
            jobs.append(CronJob(name, schedule: schedule, queue: queue, payload: try entry.string("payload") ?? "", priority: priority))
        }
        return jobs
    }

    /// The settings that ``init(settings:path:)`` reads back as this configuration.
    public var settings: [String: SettingValue] {
        var values: [String: SettingValue] = [
            "queues": .map(Dictionary(uniqueKeysWithValues: queues.map { ($0.name, .scalar($0.jobGroup)) })),
            "schema": .scalar(schema),
            "concurrency": .scalar(String(concurrency)),
            "lease": .scalar(DurationParser.format(lease)),
            "retries": .scalar(String(retries)),
            "jobTimeout": .scalar(DurationParser.format(jobTimeout)),
            "poll": .scalar(DurationParser.format(poll)),
            "keepDone": .scalar(DurationParser.format(keepDone)),
            "drain": .scalar(DurationParser.format(drain)),
            "backoff": .map([
                "initial": .scalar(DurationParser.format(backoff.initial)),
                "factor": .scalar(String(backoff.factor)),
                "max": .scalar(DurationParser.format(backoff.maximum)),
            ]),
        ]
        if let url { values["url"] = .scalar(url) }
        if !cron.isEmpty {
            values["cron"] = .map(
                Dictionary(
                    uniqueKeysWithValues: cron.map { job in
                        (
                            job.name,
                            SettingValue.map([
                                "schedule": .scalar(job.schedule.description), "queue": .scalar(job.queue),
                                "payload": .scalar(job.payload), "priority": .scalar(String(job.priority)),
                            ])
                        )
                    }))
        }
        return values
    }

    /// Queue names travel in NOTIFY payloads and CLI arguments: keep them plain.
    static func checkQueueName(_ name: String, path: String) throws(ConfigurationError) {
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard !name.isEmpty, name.utf8.count <= 100, allowed else {
            throw ConfigurationError(
                path: path, message: "'\(name)' is not a queue name; use 1 to 100 letters, digits, '_', '-' or '.'")
        }
    }

    /// The schema name is written into SQL (an identifier cannot be a bound parameter), so it
    /// is limited to what needs no quoting.
    static func checkIdentifier(_ name: String, path: String) throws(ConfigurationError) {
        let bytes = Array(name.utf8)
        let valid =
            !bytes.isEmpty && bytes.count <= 63
            && bytes.enumerated().allSatisfy { index, byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "_")
                    || (index > 0 && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte))
            }
        guard valid else {
            throw ConfigurationError(
                path: path, message: "'\(name)' is not a schema name; use 1 to 63 lowercase letters, digits or '_', not starting with a digit")
        }
    }
}

#endif

import ArgumentParser
import PoolConsole
import PoolEngine

#if PostgresQueue
import PoolQueue
#endif

/// Where the queue is: the options `queue`, `enqueue` and `dead` share.
struct QueueDatabaseOptions: ParsableArguments {
    @Option(help: "The database, as postgres://user:password@host:port/database (default: the PG* variables).")
    var url: String?
    @Option(help: "The schema holding the queue's tables (default pooltop).") var schema: String = "pooltop"
}

/// The answer of a queue command in a pooltop built without the queue.
private func queueNotBuilt() -> any Error {
    printError(
        "\(CLIContext.shared.commandName): this binary was built without the PostgreSQL queue; build it with `swift build --traits PostgresQueue` (or `make run QUEUE=1`), see docs/queue.md")
    return ExitCode(2)
}

/// `pooltop queue [NAME] [--url URL] [--schema S] [--queue Q]… [--json]`.
struct QueueCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "The PostgreSQL queue's figures: per queue, jobs available, scheduled, retrying, running and dead, the oldest one's wait, and done in the last minute.",
        discussion: """
            With NAME, the queues a running pool's queue groups work on, in the database they use; without it, every queue in --url (or the PG* variables) and --schema.
            """)

    @Argument(help: "A running pool whose queue groups to show.") var name: String?
    @OptionGroup var database: QueueDatabaseOptions
    @Option(name: .customLong("queue"), help: "Only this queue (repeatable).") var queues: [String] = []
    @Flag(help: "Print the figures as JSON, one queue per line.") var json = false

    func validate() throws {
        if name != nil && database.url != nil { throw ValidationError("give a pool's NAME or --url, not both") }
    }

    func execute() async throws {
        #if PostgresQueue
        var figures: [QueueFigures] = []
        if let name {
            let endpoints = QueueEndpoint.published(pool: name)
            guard !endpoints.isEmpty else {
                printError(
                    "\(CLIContext.shared.commandName): pool '\(name)' is not running here, or has no postgres-queue group; give --url to read a queue's database directly")
                throw ExitCode(1)
            }
            for endpoint in endpoints {
                let wanted = queues.isEmpty ? endpoint.queues : endpoint.queues.filter { queues.contains($0) }
                do {
                    figures += try await PostgresQueueClient.with(address: endpoint.address, schema: endpoint.schema) {
                        try await $0.figures(queues: wanted)
                    }
                } catch {
                    printError("\(CLIContext.shared.commandName): group '\(endpoint.group)' of pool '\(name)': \(error)")
                    throw ExitCode(1)
                }
            }
        } else {
            figures = try await withQueue(database) { try await $0.figures(queues: queues) }
        }
        if json {
            for figure in figures { print((try? JSONValue.encodeLine(figure)) ?? "{}") }
            return
        }
        guard !figures.isEmpty else {
            print("no job in \(queues.isEmpty ? "any queue" : queues.joined(separator: ", "))")
            return
        }
        var rows = [["QUEUE", "AVAILABLE", "SCHEDULED", "RETRYING", "RUNNING", "DEAD", "DONE/MIN", "OLDEST"]]
        for figure in figures {
            rows.append([
                figure.queue, String(figure.available), String(figure.scheduled), String(figure.retrying),
                String(figure.running), String(figure.dead), String(figure.doneLastMinute),
                figure.oldestAge.map(Formatting.shortDuration) ?? "-",
            ])
        }
        print(table(rows), terminator: "")
        #else
        throw queueNotBuilt()
        #endif
    }
}

/// `pooltop enqueue [--url URL] QUEUE PAYLOAD [--priority P] [--run-at WHEN] [--unique-key K]`.
struct EnqueueCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Put a job into a PostgreSQL queue; a pool whose queue group works that queue runs it.",
        discussion: """
            Prints the job's id, or says that a job with the same --unique-key is already pending or running (then nothing is enqueued).
            """)

    @OptionGroup var database: QueueDatabaseOptions
    @Argument(help: "The queue's name.") var queue: String
    @Argument(help: "The job's payload, as text.") var payload: String
    @Option(help: "Higher runs first (default 0).") var priority: Int = 0
    @Option(help: "Counts against the job executor's weight limit (default 1).") var weight: Int = 1
    @Option(name: .customLong("run-at"), help: "When it may run: a delay (30s, 5m, 2h) or seconds since the epoch.")
    var runAt: String?
    @Option(name: .customLong("unique-key"), help: "While a job with this key is pending or running, enqueue nothing.")
    var uniqueKey: String?
    @Option(name: .customLong("max-attempts"), help: "Tries in all before it is dead (default: the pool's retries + 1).")
    var maxAttempts: Int?

    func validate() throws {
        if weight < 1 { throw ValidationError("--weight must be at least 1 (got \(weight))") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1 (got \(maxAttempts))") }
        _ = try runAtValue()
    }

    /// `--run-at`: a delay (measured on the database's clock) or seconds since the epoch.
    func runAtValue() throws -> (delay: Duration?, epoch: Double?) {
        guard let runAt else { return (nil, nil) }
        if let delay = DurationParser.parse(runAt) { return (delay, nil) }
        if let epoch = Double(runAt), epoch.isFinite, epoch > 0 { return (nil, epoch) }
        throw ValidationError("--run-at must be a delay such as 30s or 5m, or seconds since the epoch (got '\(runAt)')")
    }

    func execute() async throws {
        #if PostgresQueue
        let value = try runAtValue()
        let runAt: RunAt? = value.delay.map { .after($0) } ?? value.epoch.map { .at($0) }
        let id = try await withQueue(database) { queue in
            try await queue.enqueue(
                self.queue, payload: Array(payload.utf8), priority: priority, weight: weight, runAt: runAt,
                uniqueKey: uniqueKey, maxAttempts: maxAttempts)
        }
        if let id {
            print(id)
        } else {
            print("not enqueued: a job with unique key '\(uniqueKey ?? "")' is pending or running")
        }
        #else
        throw queueNotBuilt()
        #endif
    }
}

/// `pooltop dead [--url URL] [--retry ID | --discard ID] [--json]`.
struct DeadCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead",
        abstract: "The PostgreSQL queue's dead jobs (failed on every attempt), newest first; retry or discard one.")

    @OptionGroup var database: QueueDatabaseOptions
    @Option(help: "Give this dead job fresh attempts.") var retry: Int64?
    @Option(help: "Delete this dead job.") var discard: Int64?
    @Option(help: "How many to list (default 50).") var last: Int = 50
    @Option(name: .customLong("queue"), help: "Only this queue's dead jobs (repeatable).") var queues: [String] = []
    @Flag(help: "Print the list as JSON, one job per line.") var json = false

    func validate() throws {
        if retry != nil && discard != nil { throw ValidationError("give --retry or --discard, not both") }
        if last < 1 { throw ValidationError("--last must be at least 1 (got \(last))") }
    }

    func execute() async throws {
        #if PostgresQueue
        if let id = retry ?? discard {
            let retrying = retry != nil
            let changed = try await withQueue(database) { queue in
                retrying ? try await queue.retryDead(id: id) : try await queue.discardDead(id: id)
            }
            guard changed else {
                printError("\(CLIContext.shared.commandName): no dead job has id \(id)")
                throw ExitCode(1)
            }
            print(retrying ? "job \(id) is pending again" : "job \(id) discarded")
            return
        }
        let jobs = try await withQueue(database) { try await $0.deadJobs(queues: queues, limit: last) }
        if json {
            for job in jobs { print((try? JSONValue.encodeLine(job)) ?? "{}") }
            return
        }
        guard !jobs.isEmpty else {
            print("no dead job")
            return
        }
        var rows = [["ID", "QUEUE", "ATTEMPTS", "DIED", "LAST ERROR", "PAYLOAD"]]
        for job in jobs {
            rows.append([
                String(job.id), job.queue, String(job.attempts),
                Formatting.shortDuration(max(0, ReplayTime.wallClock - job.finishedAt)) + " ago",
                String(job.lastError.prefix(60)), String(job.payloadHead.prefix(30)),
            ])
        }
        print(table(rows), terminator: "")
        #else
        throw queueNotBuilt()
        #endif
    }
}

/// `pooltop fleet [--url URL] [--json]`.
struct FleetCommand: PoolTopAsyncCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Every pool that uses the PostgreSQL queue, on every host: its workers, jobs per second and version, from the heartbeat each pool records.",
        discussion: """
            A pool's row is refreshed every 5 s by its queue group and removed when it stops gracefully; a row not refreshed for 15 s is marked STALE (the pool, its host or its database connection is gone). Exit status 1 when any row is stale.
            """)

    @OptionGroup var database: QueueDatabaseOptions
    @Flag(help: "Print the pools as JSON, one per line.") var json = false

    func execute() async throws {
        #if PostgresQueue
        let members = try await withQueue(database) { try await $0.fleet() }
        let staleAfter = 15.0
        if json {
            for member in members { print((try? JSONValue.encodeLine(member)) ?? "{}") }
        } else if members.isEmpty {
            print("no pool has recorded a heartbeat")
        } else {
            var rows = [["HOST", "POOL", "PID", "WORKERS", "JOBS/S", "UP", "SEEN", "VERSION", "GROUPS"]]
            for member in members {
                rows.append([
                    member.host, member.pool, String(member.pid), "\(member.workersReady)/\(member.workersTotal)",
                    String(Int(member.jobsPerSecond.rounded())), Formatting.shortDuration(member.uptime),
                    member.heartbeatAge > staleAfter
                        ? "STALE \(Formatting.shortDuration(member.heartbeatAge)) ago" : "\(Formatting.shortDuration(member.heartbeatAge)) ago",
                    member.version, member.summary,
                ])
            }
            print(table(rows), terminator: "")
        }
        if members.contains(where: { $0.heartbeatAge > staleAfter }) { throw ExitCode(1) }
        #else
        throw queueNotBuilt()
        #endif
    }
}

#if PostgresQueue
/// Runs `body` on a connected queue client; a failure is one line on stderr and exit status 1.
private func withQueue<T: Sendable>(
    _ database: QueueDatabaseOptions, _ body: (PostgresQueueClient) async throws -> T
) async throws -> T {
    do {
        return try await PostgresQueueClient.with(url: database.url, schema: database.schema, body)
    } catch {
        printError("\(CLIContext.shared.commandName): \(error)")
        throw ExitCode(1)
    }
}
#endif

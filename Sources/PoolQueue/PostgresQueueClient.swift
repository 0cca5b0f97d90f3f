#if PostgresQueue
import Logging
import PoolEngine
import PostgresNIO

/// Enqueues jobs and reads the queue's figures, from any Swift program: what `pooltop
/// enqueue`, `pooltop queue` and `pooltop dead` use. To enqueue in your own transaction with
/// your business data, call the SQL function instead (`SELECT pooltop.enqueue('emails',
/// 'payload')`, docs/queue.md).
///
/// ```swift
/// try await PostgresQueueClient.with(url: "postgres://app@db/app") { queue in
///     let id = try await queue.enqueue("emails", payload: Array("welcome 42".utf8), uniqueKey: "welcome-42")
/// }
/// ```
public struct PostgresQueueClient: Sendable {
    private let connection: PostgresConnection
    private let store: QueueStore
    private let logger: Logger
    /// The address connected to, without its password.
    public let address: DatabaseAddress

    /// Connects (to `url`, or by the `PG*` variables when nil), brings the schema up to date,
    /// runs `body`, and closes.
    public static func with<T: Sendable>(
        url: String?, schema: String = "pooltop", logger: Logger = Logger(label: "pooltop.queue"),
        _ body: (PostgresQueueClient) async throws -> T
    ) async throws -> T {
        let address = try DatabaseAddress(url: url, environment: DatabaseAddress.processEnvironment())
        return try await with(address: address, schema: schema, logger: logger, body)
    }

    /// Connects to `address`; see ``with(url:schema:logger:_:)``.
    public static func with<T: Sendable>(
        address: DatabaseAddress, schema: String = "pooltop", logger: Logger = Logger(label: "pooltop.queue"),
        _ body: (PostgresQueueClient) async throws -> T
    ) async throws -> T {
        let client = try await connect(address: address, schema: schema, logger: logger)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    /// Connects to `address` and brings the schema up to date, for a client kept open (the
    /// console's queue view reads every second); ``close()`` it when done. For one operation,
    /// prefer ``with(address:schema:logger:_:)``, which closes by itself.
    public static func connect(
        address: DatabaseAddress, schema: String = "pooltop", logger: Logger = Logger(label: "pooltop.queue")
    ) async throws -> PostgresQueueClient {
        try PostgresQueueConfiguration.checkIdentifier(schema, path: "schema")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try address.connectionConfiguration(), id: 1, logger: logger)
        } catch {
            throw QueueClientError(.connection, operation: "connect", address: address, underlying: error)
        }
        do {
            _ = try await QueueSchema(schema: schema).migrate(on: connection, logger: logger)
        } catch {
            try? await connection.close()  // The migration's error is the one to report.
            throw QueueClientError(.database, operation: "migrate schema \(schema)", address: address, underlying: error)
        }
        return PostgresQueueClient(connection: connection, store: QueueStore(schema: schema), logger: logger, address: address)
    }

    /// Closes the connection; a failed goodbye changes nothing for the caller.
    public func close() async {
        try? await connection.close()  // See above: nothing is left to do if the goodbye fails.
    }

    /// Enqueues a job; returns its id, or nil when a job with the same `uniqueKey` is pending
    /// or running (then nothing is enqueued).
    ///
    /// - Parameters:
    ///   - runAt: when it may run; nil for now.
    ///   - maxAttempts: tries in all before it is dead; nil for the claiming pool's `retries` + 1.
    public func enqueue(
        _ queue: String, payload: [UInt8], priority: Int = 0, weight: Int = 1, runAt: RunAt? = nil,
        uniqueKey: String? = nil, maxAttempts: Int? = nil
    ) async throws -> Int64? {
        try PostgresQueueConfiguration.checkQueueName(queue, path: "queue")
        guard weight >= 1 else { throw QueueClientError(argument: "weight must be 1 or more (got \(weight))", operation: "enqueue") }
        if let maxAttempts, maxAttempts < 1 {
            throw QueueClientError(argument: "maxAttempts must be 1 or more (got \(maxAttempts))", operation: "enqueue")
        }
        return try await run("enqueue to \(queue)") {
            try await store.enqueue(
                queue: queue, payload: ByteBuffer(bytes: payload), priority: priority, weight: weight, runAt: runAt,
                uniqueKey: uniqueKey, maxAttempts: maxAttempts, on: connection, logger: logger)
        }
    }

    /// Each queue's figures: the named queues in that order (one without a job with zeros),
    /// or every queue that has a job.
    public func figures(queues: [String] = []) async throws -> [QueueFigures] {
        try await run("read the figures") { try await store.figures(queues: queues, on: connection, logger: logger) }
    }

    /// The newest dead jobs (of the named queues, or of all).
    public func deadJobs(queues: [String] = [], limit: Int = 100) async throws -> [DeadJob] {
        try await run("list the dead jobs") { try await store.deadJobs(queues: queues, limit: limit, on: connection, logger: logger) }
    }

    /// Gives a dead job fresh attempts; false when no dead job has that id.
    public func retryDead(id: Int64) async throws -> Bool {
        try await run("retry dead job \(id)") { try await store.retryDead(id: id, on: connection, logger: logger) }
    }

    /// Deletes a dead job; false when no dead job has that id.
    public func discardDead(id: Int64) async throws -> Bool {
        try await run("discard dead job \(id)") { try await store.discardDead(id: id, on: connection, logger: logger) }
    }

    /// Every pool that records heartbeats in this schema.
    public func fleet() async throws -> [FleetMember] {
        try await run("read the fleet") { try await store.fleet(on: connection, logger: logger) }
    }

    private func run<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw QueueClientError(.database, operation: operation, address: address, underlying: error)
        }
    }
}

/// A queue operation of ``PostgresQueueClient`` that failed: what kind of failure, which
/// operation on which database, and the underlying error.
public struct QueueClientError: Error, CustomStringConvertible, Sendable {
    /// Why it failed; new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        /// The database could not be reached (address, credentials, server down).
        public static let connection = Code(rawValue: "connection")
        /// A statement failed on a live connection (or the connection dropped during it).
        public static let database = Code(rawValue: "database")
        /// An argument was refused before anything was sent.
        public static let argument = Code(rawValue: "argument")
        public var description: String { rawValue }
    }

    public var code: Code
    /// What was being done: "connect", "enqueue to emails", "retry dead job 42".
    public var operation: String
    /// The database, without its password; nil for a refused argument.
    public var address: DatabaseAddress?
    /// The server's or the driver's error, in a sentence.
    public var reason: String

    init(_ code: Code, operation: String, address: DatabaseAddress, underlying: any Error) {
        self.code = code
        self.operation = operation
        self.address = address
        reason = DatabaseFailure.describe(underlying)
    }

    init(argument reason: String, operation: String) {
        code = .argument
        self.operation = operation
        address = nil
        self.reason = reason
    }

    public var description: String {
        guard let address else { return "\(operation): \(reason)" }
        if code == .connection { return "cannot connect to \(address): \(reason)" }
        return "cannot \(operation) in \(address): \(reason)"
    }
}
#endif

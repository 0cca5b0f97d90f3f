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
        try PostgresQueueConfiguration.checkIdentifier(schema, path: "schema")
        let address = try DatabaseAddress(url: url, environment: DatabaseAddress.processEnvironment())
        return try await with(address: address, schema: schema, logger: logger, body)
    }

    /// Connects to `address`; see ``with(url:schema:logger:_:)``.
    public static func with<T: Sendable>(
        address: DatabaseAddress, schema: String = "pooltop", logger: Logger = Logger(label: "pooltop.queue"),
        _ body: (PostgresQueueClient) async throws -> T
    ) async throws -> T {
        try PostgresQueueConfiguration.checkIdentifier(schema, path: "schema")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: try address.connectionConfiguration(), id: 1, logger: logger)
        } catch {
            throw QueueClientError(message: "cannot connect to \(address): \(DatabaseFailure.describe(error))")
        }
        do {
            _ = try await QueueSchema(schema: schema).migrate(on: connection, logger: logger)
            let client = PostgresQueueClient(
                connection: connection, store: QueueStore(schema: schema), logger: logger, address: address)
            let result = try await body(client)
            try? await connection.close()  // The work is done; a failed goodbye changes nothing.
            return result
        } catch {
            try? await connection.close()  // The error below is the one to report.
            if error is QueueClientError { throw error }
            throw QueueClientError(message: DatabaseFailure.describe(error))
        }
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
        guard weight >= 1 else { throw QueueClientError(message: "weight must be 1 or more (got \(weight))") }
        if let maxAttempts, maxAttempts < 1 {
            throw QueueClientError(message: "maxAttempts must be 1 or more (got \(maxAttempts))")
        }
        return try await run {
            try await store.enqueue(
                queue: queue, payload: ByteBuffer(bytes: payload), priority: priority, weight: weight, runAt: runAt,
                uniqueKey: uniqueKey, maxAttempts: maxAttempts, on: connection, logger: logger)
        }
    }

    /// Each queue's figures (the named queues, or all).
    public func figures(queues: [String] = []) async throws -> [QueueFigures] {
        try await run { try await store.figures(queues: queues, on: connection, logger: logger) }
    }

    /// The newest dead jobs.
    public func deadJobs(limit: Int = 100) async throws -> [DeadJob] {
        try await run { try await store.deadJobs(limit: limit, on: connection, logger: logger) }
    }

    /// Gives a dead job fresh attempts; false when no dead job has that id.
    public func retryDead(id: Int64) async throws -> Bool {
        try await run { try await store.retryDead(id: id, on: connection, logger: logger) }
    }

    /// Deletes a dead job; false when no dead job has that id.
    public func discardDead(id: Int64) async throws -> Bool {
        try await run { try await store.discardDead(id: id, on: connection, logger: logger) }
    }

    /// Every pool that records heartbeats in this schema.
    public func fleet() async throws -> [FleetMember] {
        try await run { try await store.fleet(on: connection, logger: logger) }
    }

    private func run<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw QueueClientError(message: DatabaseFailure.describe(error))
        }
    }
}

/// A queue operation that failed, as a sentence.
public struct QueueClientError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
#endif

// The figures of a PostgreSQL job queue and its dead jobs, as plain values: the queue
// (`PoolQueue`, built with the `PostgresQueue` trait) reads them, `pooltop queue`, the
// console's queue view and the metrics show them. They live here, below both, so the
// console needs no database driver to draw them.

/// The figures of one queue (`pooltop queue`, the console's queue view, the metrics).
public struct QueueFigures: Sendable, Hashable, Codable {
    public var queue: String
    /// Claimable now.
    public var available: Int
    /// Waiting for their `runAt`.
    public var scheduled: Int
    /// Waiting for their next try after a failure.
    public var retrying: Int
    public var running: Int
    public var dead: Int
    /// Finished in the last minute.
    public var doneLastMinute: Int
    /// How long the oldest claimable job has waited, in seconds.
    public var oldestAge: Double?

    public init(
        queue: String, available: Int, scheduled: Int, retrying: Int, running: Int, dead: Int, doneLastMinute: Int,
        oldestAge: Double? = nil
    ) {
        self.queue = queue
        self.available = available
        self.scheduled = scheduled
        self.retrying = retrying
        self.running = running
        self.dead = dead
        self.doneLastMinute = doneLastMinute
        self.oldestAge = oldestAge
    }
}

/// A dead job, for the dead-letter list.
public struct DeadJob: Sendable, Hashable, Codable {
    public var id: Int64
    public var queue: String
    public var attempts: Int
    public var lastError: String
    /// The payload's first bytes, as text.
    public var payloadHead: String
    /// When it died, in seconds since the epoch.
    public var finishedAt: Double

    public init(id: Int64, queue: String, attempts: Int, lastError: String, payloadHead: String, finishedAt: Double) {
        self.id = id
        self.queue = queue
        self.attempts = attempts
        self.lastError = lastError
        self.payloadHead = payloadHead
        self.finishedAt = finishedAt
    }
}

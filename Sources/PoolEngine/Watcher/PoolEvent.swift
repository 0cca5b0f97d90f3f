/// A fact about the pool, in the order the watcher saw it: what logs, the console and
/// `events` subscribers are told.
public enum PoolEvent: Hashable, Sendable, Codable {
    case workerStarting(WorkerID, group: String, pid: Int32, generation: Int)
    case workerReady(WorkerID, group: String, pid: Int32, startup: Duration)
    case workerStopRequested(WorkerID, group: String, reason: ExitReason)
    case workerKilled(WorkerID, group: String, pid: Int32, why: String)
    case workerExited(WorkerExitRecord)
    case workerBackingOff(WorkerID, group: String, delay: Duration)
    case workerFailed(WorkerID, group: String, why: String)
    case workerSpawnFailed(WorkerID, group: String, error: String)
    /// The worker was found hung (why: how long its heartbeat stood still); its backtrace is
    /// being captured, then it is killed.
    case workerHung(WorkerID, group: String, pid: Int32, why: String)
    /// The backtrace of every thread of a hung worker (or why it could not be captured).
    case workerBacktrace(WorkerID, group: String, pid: Int32, backtrace: String)
    case groupScaled(group: String, from: Int, to: Int)
    /// A rolling restart of the group began, replaced a worker, finished or stopped.
    case groupRolling(group: String, RollingRestartProgress)
    /// The group waits for the groups it names in `after` before it starts (or, blocked, says why it never will).
    case groupWaiting(group: String, for: String)
    /// `pooltop apply` changed the pool's groups (the groups that changed, and how).
    case poolApplied([PoolChange.GroupChange])
    case poolRestarting(hard: Bool)
    case poolStopping(reason: String)
    case workerLog(WorkerID, group: String, record: LogRecord)
}

/// One worker exit as the watcher classified it.
public struct WorkerExitRecord: Hashable, Sendable, Codable {
    public var id: WorkerID
    public var group: String
    public var pid: Int32
    /// What the kernel said; nil when the process never started.
    public var status: TerminationStatus?
    public var reason: ExitReason
    /// The worker's own words, when it said why (an error message).
    public var message: String?
    /// How long the process lived.
    public var uptime: Duration

    public init(
        id: WorkerID, group: String, pid: Int32, status: TerminationStatus?, reason: ExitReason, message: String?,
        uptime: Duration
    ) {
        self.id = id
        self.group = group
        self.pid = pid
        self.status = status
        self.reason = reason
        self.message = message
        self.uptime = uptime
    }
}

/// A log record forwarded from a worker to the watcher.
public struct LogRecord: Hashable, Sendable, Codable {
    /// swift-log level name (`trace` … `critical`).
    public var level: String
    public var message: String
    public var metadata: [String: String]
    /// Seconds since the epoch when the worker logged it.
    public var timestamp: Double

    public init(level: String, message: String, metadata: [String: String] = [:], timestamp: Double) {
        self.level = level
        self.message = message
        self.metadata = metadata
        self.timestamp = timestamp
    }
}

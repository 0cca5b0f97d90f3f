/// What a worker says about its own end, just before it exits.
public enum WorkerExitReport: Hashable, Sendable, Codable {
    /// `run()` returned, or was stopped on request.
    case clean
    /// The worker threw `WorkerExit.terminate`: stop its slot for good.
    case terminate(String)
    /// The worker threw `WorkerExit.fatal`, or an uncaught error under `.stopPool`: stop the pool.
    case fatal(String)
    /// The worker threw `WorkerExit.restart`, or an uncaught error under `.restart`: a crash.
    case crash(String)
}

/// Why the watcher asks a worker to stop.
public struct StopRequest: Hashable, Sendable, Codable {
    public var reason: ExitReason
    /// How long the worker has before it is killed.
    public var timeout: Duration
}

/// Everything a worker needs to start: sent once, first, on its control channel.
public struct WorkerBootstrap: Hashable, Sendable, Codable {
    public var workerID: WorkerID
    public var generation: Int
    public var pool: PoolDescription
    public var watcherPID: Int32
    /// The swift-log level name the worker's logger starts at.
    public var logLevel: String
    /// The pool's shared-memory segment, where the worker writes its activity part.
    public var sharedMemoryName: String?
    /// The pool's runtime directory, where job workers listen.
    public var runtimeDirectory: String?
    /// For a standby taking a slot (decision 0023): the variables a worker spawned for the slot
    /// would have had from the start (its id, its listeners' `LISTEN_FDS`…), set by the worker
    /// before its entry point runs; its listening sockets come with this message. Empty otherwise.
    public var slotEnvironment: [String: String] = [:]
}

/// Messages from the watcher to a worker.
package enum WatcherMessage: Hashable, Sendable {
    case bootstrap(WorkerBootstrap)
    case stop(StopRequest)
}

/// Messages from a worker to the watcher.
package enum WorkerMessage: Hashable, Sendable {
    case ready
    case log(LogRecord)
    case exiting(WorkerExitReport)
    /// No worker of this group could take a job: one more, please (scaling by request).
    case scaleRequest(GroupID)
    /// The worker changed shared memory while the flight recorder dozed: record it now, and
    /// every second again (it was the writer that took the bell).
    case activity
}

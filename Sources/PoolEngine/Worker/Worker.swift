import NIOCore
import Logging
import Synchronization

/// The worker's view of itself, handed to ``WorkerEntryPoint/initialize(worker:)``.
public final class Worker: Sendable {
    /// This worker's slot id (stable across restarts).
    public let id: WorkerID
    /// How many times this slot has been spawned, this process included.
    public let generation: Int
    /// This worker's group.
    public let group: GroupDescription
    /// The whole pool, with every group and strategy parameter.
    public let pool: PoolDescription
    /// Records logged here are forwarded to the watcher and printed with this worker's id and group.
    public let logger: Logger
    /// The watcher's pid.
    public let watcherPID: Int32
    /// The listening sockets this reactor worker inherited, in its group's listener order.
    public let listeners: [InheritedListener]
    /// The pool's shared-memory segment, nil when the watcher runs without one.
    private let sharedMemoryName: String?

    private struct State: ~Copyable {
        var stopReason: StopReason?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var runTask: Task<Void, any Error>?
        var jobHandler: (any JobHandler)?
        var jobClient: JobClient?
    }

    /// Why a worker is stopping.
    public enum StopReason: Hashable, Sendable {
        /// The watcher asked: the pool is stopping, restarting, or scaling down.
        case requested(ExitReason)
        /// The process received SIGTERM or SIGINT directly.
        case signal(Int32)
        /// The watcher is gone (its control channel closed): the worker exits within a second.
        case watcherLost
    }

    private let state = Mutex(State())
    private let activityRecorder: WorkerActivityRecorder?
    /// Requests named by ``requestStarted(_:)`` and not yet finished.
    private let requestsInFlight = Atomic<Int>(0)
    private let makeJobClient: (@Sendable () -> JobClient)?
    private let eventLoops: EventLoopGroupHolder

    /// The process's NIO event loop group (one thread), for servers and clients the worker
    /// runs: pooltop's own (the job server, ``InheritedListener/serveHTTP(on:_:)``) use it too,
    /// so a worker process has one. The runtime shuts it down after `run()` returns.
    public var eventLoopGroup: any EventLoopGroup { eventLoops.group }

    init(
        bootstrap: WorkerBootstrap, group: GroupDescription, logger: Logger, activityRecorder: WorkerActivityRecorder? = nil,
        makeJobClient: (@Sendable () -> JobClient)? = nil, listeners: [InheritedListener] = [],
        eventLoops: EventLoopGroupHolder = EventLoopGroupHolder()
    ) {
        self.eventLoops = eventLoops
        self.listeners = listeners
        self.activityRecorder = activityRecorder
        self.makeJobClient = makeJobClient
        self.id = bootstrap.workerID
        self.generation = bootstrap.generation
        self.group = group
        self.pool = bootstrap.pool
        self.logger = logger
        self.watcherPID = bootstrap.watcherPID
        self.sharedMemoryName = bootstrap.sharedMemoryName
    }

    /// A read-only view of the pool's shared memory: every worker's state and counters, as the
    /// console and `status` see them (the metrics service renders from it).
    /// - Throws: ``SharedStateError`` when the pool has no segment or it cannot be mapped.
    public func poolState() throws -> PoolStateReader {
        guard let sharedMemoryName else {
            throw SharedStateError(code: .notFound, message: "pool '\(pool.name)' runs without shared memory")
        }
        return PoolStateReader(segment: try SharedSegment.open(name: sharedMemoryName, writable: false))
    }

    /// Updates this worker's activity counters in shared memory, where the console, `status`
    /// and the metrics read them. The job executor and reactor helpers keep them for you; call
    /// it from your own code to count work they do not see (a queue consumer's jobs, say).
    public func recordActivity(_ body: (inout WorkerActivity) -> Void) {
        activityRecorder?.update(body)
    }

    /// Says which request this reactor worker starts serving (for example `GET /report?id=7`),
    /// so that if it dies serving it, its post-mortem (`pooltop why`) names the request and how
    /// long it had run. Its first 24 bytes are kept, in shared memory, with a few stores and no
    /// lock. With several requests at once the last one started is named; call
    /// ``requestFinished()`` as each ends.
    public func requestStarted(_ line: String) {
        requestsInFlight.add(1, ordering: .relaxed)
        activityRecorder?.describeRequest(line.utf8)
    }

    /// A request ``requestStarted(_:)`` named has ended; once none is left, none is named.
    public func requestFinished() {
        if requestsInFlight.subtract(1, ordering: .relaxed).newValue <= 0 {
            requestsInFlight.store(0, ordering: .relaxed)
            activityRecorder?.clearRequest()
        }
    }

    /// Makes this worker run jobs with `handler`: call it in `initialize(worker:)` of a job worker.
    /// A job worker that registers none fails at start with an error that says so.
    public func handleJobs(with handler: any JobHandler) {
        state.withLock { $0.jobHandler = handler }
    }

    var jobHandler: (any JobHandler)? { state.withLock { $0.jobHandler } }

    /// Sends jobs to the groups this worker's group lists in `jobGroups`.
    public var jobs: JobClient {
        if let client = state.withLock({ $0.jobClient }) { return client }
        // Safe: every worker process is given a factory; only unit tests build a Worker without one.
        let client = makeJobClient!()
        return state.withLock { state -> JobClient in
            if let existing = state.jobClient { return existing }
            state.jobClient = client
            return client
        }
    }

    var existingJobClient: JobClient? { state.withLock { $0.jobClient } }

    /// The inherited listener named `name` (`listen0` for a group's first unnamed one).
    public func listener(named name: String) -> InheritedListener? {
        listeners.first { $0.name == name }
    }

    /// Whether the worker has been asked to stop.
    public var isStopRequested: Bool { state.withLock { $0.stopReason != nil } }

    /// Why the worker is stopping, once it is.
    public var stopReason: StopReason? { state.withLock { $0.stopReason } }

    /// Returns when the worker is asked to stop (or when the calling task is cancelled).
    public func awaitTermination() async {
        let id = state.withLock { state -> Int in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let stopped = state.withLock { state -> Bool in
                    if state.stopReason != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if stopped { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Asks this worker to stop: wakes `awaitTermination()` and cancels `run()`. Idempotent.
    func requestStop(_ reason: StopReason) {
        let (waiters, task) = state.withLock { state -> ([CheckedContinuation<Void, Never>], Task<Void, any Error>?) in
            guard state.stopReason == nil else { return ([], nil) }
            state.stopReason = reason
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), state.runTask)
        }
        for waiter in waiters { waiter.resume() }
        task?.cancel()
    }

    /// Records the task running `run()`, cancelling it at once if a stop came first.
    func attach(_ task: Task<Void, any Error>) {
        let cancelNow = state.withLock { state -> Bool in
            state.runTask = task
            return state.stopReason != nil
        }
        if cancelNow { task.cancel() }
    }
}

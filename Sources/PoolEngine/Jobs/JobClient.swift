import Logging
import Synchronization

/// Sends jobs to job workers: picks a ready worker of an allowed group from shared memory,
/// keeps one multiplexed connection per target worker, and ends every job with its result or
/// an explicit ``JobError``, never a hang.
///
/// In a worker it is ``Worker/jobs``; the groups it may send to are its group's `jobGroups`.
public final class JobClient: Sendable {
    /// Who sends: a worker (its id and group) or, with id 0, an operator through the watcher.
    let senderID: WorkerID?
    let senderGroup: GroupID?
    let pool: PoolDescription
    private let allowed: Set<GroupID>?
    private let runtimeDirectory: String
    private let reader: PoolStateReader
    private let pickup: any PickupStrategy
    /// The connections' I/O thread, started with the first connection; `.shutDown` once
    /// ``shutdown()`` ran, so that a late job cannot start a thread nobody joins.
    private let io = Mutex(IOThread.notStarted)

    private enum IOThread {
        case notStarted
        case running(JobClientIO)
        case shutDown
    }
    private let requestScale: (@Sendable (GroupID) -> Void)?
    /// Counts a job that found no ready worker with room in its target group (the metrics' pickup misses).
    private let countPickupMiss: (@Sendable (GroupID) -> Void)?
    private let connections = Mutex<[WorkerID: JobConnection]>([:])
    private let nextJobID = Atomic<UInt64>(0)
    let maximumPayload: Int
    /// The timeout of a job submitted without one.
    public let defaultTimeout: Duration

    init(
        pool: PoolDescription, senderID: WorkerID?, senderGroup: GroupID?, allowed: Set<GroupID>?, runtimeDirectory: String,
        reader: PoolStateReader, pickup: any PickupStrategy,
        requestScale: (@Sendable (GroupID) -> Void)? = nil, countPickupMiss: (@Sendable (GroupID) -> Void)? = nil,
        defaultTimeout: Duration = .seconds(30), maximumPayload: Int = JobFrame.defaultMaximumBody - JobRequestFrame.fixedSize
    ) {
        self.pool = pool
        self.senderID = senderID
        self.senderGroup = senderGroup
        self.allowed = allowed
        self.runtimeDirectory = runtimeDirectory
        self.reader = reader
        self.pickup = pickup
        self.requestScale = requestScale
        self.countPickupMiss = countPickupMiss
        self.defaultTimeout = defaultTimeout
        self.maximumPayload = maximumPayload
    }

    /// Closes every connection (pending jobs fail with `workerLost`) and stops the I/O thread.
    public func shutdown() async {
        let all = connections.withLock { connections -> [JobConnection] in
            defer { connections = [:] }
            return Array(connections.values)
        }
        for connection in all { connection.close() }
        let running = io.withLock { io -> JobClientIO? in
            defer { io = .shutDown }
            if case .running(let thread) = io { return thread }
            return nil
        }
        running?.shutdown()
    }

    /// Submits a text job; see ``submit(_:to:priority:weight:timeout:)-(([UInt8],_,_,_,_))``.
    public func submit(
        _ text: String, to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil
    ) async throws(JobError) -> JobResult {
        try await submit(Array(text.utf8), to: group, priority: priority, weight: weight, timeout: timeout)
    }

    /// Submits a job to a worker of `group` and waits for its result.
    ///
    /// - Throws: ``JobError`` with the handler's error, `timedOut`, `cancelled` (the calling task
    ///   was cancelled: the job is cancelled on the worker too), `rejected` (every worker tried was
    ///   full), `workerLost` (at once, when the worker dies mid-job), `noWorkerAvailable`,
    ///   `tooLarge`, or `notAllowed`.
    public func submit(
        _ payload: [UInt8], to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil
    ) async throws(JobError) -> JobResult {
        guard let target = pool.group(group) else {
            throw JobError(code: .notAllowed, message: "no group '\(group)' in pool '\(pool.name)'")
        }
        if let allowed, !allowed.contains(target.id) {
            let names = pool.groups.filter { allowed.contains($0.id) }.map(\.name)
            throw JobError(
                code: .notAllowed,
                message: "this worker's group may send jobs to \(names.isEmpty ? "no group" : names.joined(separator: ", ")), not to '\(target.name)' (see jobGroups)")
        }
        guard target.jobExecutor != nil else {
            throw JobError(code: .notAllowed, message: "group '\(target.name)' does not run jobs (its workers have no job executor)")
        }
        guard payload.count <= maximumPayload else {
            throw JobError(code: .tooLarge, message: "the payload is \(payload.count) bytes; the limit is \(maximumPayload)")
        }
        let deadline = PoolInstant.now + (timeout ?? defaultTimeout)
        var excluded: Set<WorkerID> = []
        var attempts = 0
        var lastRefusal: JobError?
        var lastScaleRequest: PoolInstant?
        var missed = false
        while true {
            if Task.isCancelled { throw JobError(code: .cancelled, message: "cancelled before it was sent") }
            guard PoolInstant.now < deadline else {
                throw lastRefusal ?? JobError(code: .timedOut, message: "the timeout passed before a worker of group '\(target.name)' took it")
            }
            var candidates: [PickupCandidate] = []
            candidates.reserveCapacity(target.maxWorkers)
            for id in target.workerIDs where id != senderID && !excluded.contains(id) {
                guard let load = reader.pickupLoad(of: id), load.state == .ready else { continue }
                candidates.append(PickupCandidate(id: id, jobsInFlight: load.jobsInFlight, inFlightWeight: load.inFlightWeight))
            }
            guard let (chosen, reason) = pickup.pick(from: candidates, weight: weight, priority: priority) else {
                let none = JobError(
                    code: .noWorkerAvailable, message: "no ready worker in group '\(target.name)' (\(Self.describe(reader.records(of: target), target)))")
                // Once per job, however long it then waits for a worker.
                if !missed {
                    missed = true
                    countPickupMiss?(target.id)
                }
                guard let requestScale, target.scaling.onDemand else { throw lastRefusal ?? none }
                // Scaling by request: ask for one more worker (again every 250 ms while waiting; the
                // watcher rate-limits), and wait for one within the deadline, trying refused workers
                // again since their queues may have room by then.
                let now = PoolInstant.now
                if lastScaleRequest.map({ now.duration(since: $0) >= .milliseconds(250) }) ?? true {
                    requestScale(target.id)
                    lastScaleRequest = now
                }
                excluded = []
                try await Self.pause(.milliseconds(5))
                if PoolInstant.now >= deadline { throw lastRefusal ?? none }
                continue
            }
            attempts += 1
            let connection: JobConnection
            do {
                connection = try self.connection(to: chosen)
            } catch {
                excluded.insert(chosen)
                lastRefusal = JobError(code: .workerLost, message: "cannot connect to worker \(chosen): \(error)", worker: chosen)
                continue
            }
            let jobID = nextJobID.add(1, ordering: .relaxed).newValue
            let request = JobRequestFrame(
                jobID: jobID, deadline: deadline.nanoseconds, priority: Int32(clamping: priority), weight: UInt32(clamping: max(weight, 0)),
                senderWorker: UInt32(senderID?.rawValue ?? 0), senderGroup: UInt32(senderGroup?.rawValue ?? 0), payload: payload)
            let answer = await connection.send(request, deadline: deadline)
            switch answer {
            case .result(let result):
                return JobResult(
                    payload: result.payload, worker: chosen, pickedBecause: reason,
                    queueWait: .nanoseconds(Int64(result.queueWaitNanoseconds)), runTime: .nanoseconds(Int64(result.runNanoseconds)),
                    attempts: attempts)
            case .error(let error) where error.code == .rejected || error.code == .stopping:
                // Full or stopping: another worker may take it.
                excluded.insert(chosen)
                lastRefusal = JobError(code: .rejected, message: error.message, worker: chosen)
            case .error(let error):
                throw JobError(code: Self.code(error.code), message: error.message, worker: chosen)
            case .lost(let why):
                connections.withLock { if $0[chosen] === connection { $0.removeValue(forKey: chosen) } }
                throw JobError(code: .workerLost, message: why, worker: chosen)
            case .timedOut:
                throw JobError(code: .timedOut, message: "no result within the timeout", worker: chosen)
            case .cancelled:
                throw JobError(code: .cancelled, message: "cancelled by its sender", worker: chosen)
            }
        }
    }

    /// Submits a job without waiting for it; its failure is logged to `logger`, never silent.
    public func send(_ payload: [UInt8], to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil, logger: Logger) {
        Task {
            do {
                _ = try await submit(payload, to: group, priority: priority, weight: weight, timeout: timeout)
            } catch {
                logger.warning("fire-and-forget job to \(group) failed: \(error)")
            }
        }
    }

    private static func pause(_ duration: Duration) async throws(JobError) {
        do {
            try await Task.sleep(for: duration)
        } catch {
            throw JobError(code: .cancelled, message: "cancelled while waiting for a worker")
        }
    }

    private static func code(_ code: JobErrorCode) -> JobError.Code {
        switch code {
        case .handlerFailed: return .handlerFailed
        case .rejected, .stopping: return .rejected
        case .timedOut: return .timedOut
        case .cancelled: return .cancelled
        case .badRequest: return .badRequest
        case .tooLarge: return .tooLarge
        }
    }

    private static func describe(_ records: PoolRecords, _ group: GroupDescription) -> String {
        var counts: [WorkerState: Int] = [:]
        for id in group.workerIDs { counts[records.state(of: id), default: 0] += 1 }
        return WorkerState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }.joined(separator: ", ")
    }

    private func connection(to worker: WorkerID) throws -> JobConnection {
        if let existing = connections.withLock({ $0[worker] }), existing.isActive { return existing }
        let io = try self.io.withLock { io -> JobClientIO in
            switch io {
            case .running(let thread): return thread
            case .shutDown: throw JobClientShutDown()
            case .notStarted:
                let started = try JobClientIO()
                io = .running(started)
                return started
            }
        }
        let connection = try JobConnection.connect(
            path: JobServer.socketPath(runtimeDirectory: runtimeDirectory, worker: worker), worker: worker, io: io)
        let kept = connections.withLock { connections -> JobConnection in
            if let other = connections[worker], other.isActive { return other }
            connections[worker] = connection
            return connection
        }
        if kept !== connection { connection.close() }
        return kept
    }
}

/// A job submitted after its client shut down (its worker or pool is stopping).
struct JobClientShutDown: Error, CustomStringConvertible {
    var description: String { "the job client has shut down (its worker or pool is stopping)" }
}

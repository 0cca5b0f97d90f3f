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
    /// The pool as this client knows it: a worker's, from its bootstrap; the operator's is
    /// updated by `apply` (``update(pool:)``), so jobs reach groups it added.
    var pool: PoolDescription { routing.withLock { $0.pool } }
    private let routing: Mutex<Routing>
    private let allowed: Set<GroupID>?
    private let runtimeDirectory: String
    private let reader: PoolStateReader
    /// The pickup, called as a built-in one (whose reason is kept as figures, ``PickupReason``):
    /// a strategy of one's own is wrapped. Never optional, so that each job calls it in place:
    /// taking it out of an optional copied the existential, and with it counted a reference to
    /// the strategy object every sending thread shares (decision 0033).
    private let pickup: any BuiltInPickup
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
    /// How a lone sender waits for its answer.
    private let waitPolicy: JobWaitPolicy
    private let nextJobID = Atomic<UInt64>(0)
    /// Tells this client's jobs apart from other senders' in a worker's running-jobs table.
    private let token = UInt64.random(in: 1...UInt64.max)
    let maximumPayload: Int
    /// The timeout of a job submitted without one.
    public let defaultTimeout: Duration

    init(
        pool: PoolDescription, senderID: WorkerID?, senderGroup: GroupID?, allowed: Set<GroupID>?, runtimeDirectory: String,
        reader: PoolStateReader, pickup: any PickupStrategy,
        requestScale: (@Sendable (GroupID) -> Void)? = nil, countPickupMiss: (@Sendable (GroupID) -> Void)? = nil,
        defaultTimeout: Duration = .seconds(30), maximumPayload: Int = JobFrame.defaultMaximumBody - JobRequestFrame.fixedSize,
        wait: JobWaitPolicy = .suspend
    ) {
        self.waitPolicy = JobWaitPolicy.effective(wait)
        self.routing = Mutex(Routing(pool))
        self.senderID = senderID
        self.senderGroup = senderGroup
        self.allowed = allowed
        self.runtimeDirectory = runtimeDirectory
        self.reader = reader
        self.pickup = pickup as? any BuiltInPickup ?? OwnPickup(strategy: pickup)
        self.requestScale = requestScale
        self.countPickupMiss = countPickupMiss
        self.defaultTimeout = defaultTimeout
        self.maximumPayload = maximumPayload
    }

    /// Takes the pool `apply` made. Groups keep their slots and tables, so jobs under way
    /// are unaffected.
    func update(pool: PoolDescription) {
        routing.withLock { $0 = Routing(pool) }
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

    /// Submits a text job; see ``submit(_:to:priority:weight:timeout:retries:)-(([UInt8],_,_,_,_,_))``.
    public func submit(
        _ text: String, to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil,
        retries: Int = 0
    ) async throws(JobError) -> JobResult {
        try await submit(Array(text.utf8), to: group, priority: priority, weight: weight, timeout: timeout, retries: retries)
    }

    /// The most `retries` a job may ask for.
    public static let maximumRetries = 100

    /// Submits a job to a worker of `group` and waits for its result.
    ///
    /// A job that finds no ready worker while one is starting, restarting or being replaced
    /// waits for it within the timeout. A job that never started on its worker (the worker died
    /// or stopped with it queued, or before it read it) always goes to another worker within
    /// the timeout: the worker says
    /// when a job starts before its handler runs, so the sender knows. A job that had started
    /// when its worker died ends `workerLost`, so that it runs at most once, unless `retries`
    /// allows more tries: then it is sent again after a backoff (10 ms, doubling, at most 1 s,
    /// within the timeout) up to `retries` times, so it runs at least once. Give retries only
    /// for idempotent work. ``JobResult/attempts`` says how many tries it took.
    ///
    /// - Parameter retries: How many times a job that started and lost its worker is sent
    ///   again (0...``maximumRetries``; 0, the default, means at most once).
    /// - Throws: ``JobError`` with the handler's error, `timedOut`, `cancelled` (the calling task
    ///   was cancelled: the job is cancelled on the worker too), `rejected` (every worker tried was
    ///   full), `workerLost` (at once, when the worker dies mid-job and no retry is left),
    ///   `noWorkerAvailable`, `tooLarge`, or `notAllowed`.
    public func submit(
        _ payload: [UInt8], to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil,
        retries: Int = 0
    ) async throws(JobError) -> JobResult {
        // Looked up under the lock: a job copies out a few fields, not the whole description.
        guard let target = routing.withLock({ $0.route(group) }) else {
            throw JobError(code: .notAllowed, message: "no group '\(group)' in pool '\(pool.name)'")
        }
        if let allowed, !allowed.contains(target.id) {
            let names = pool.groups.filter { allowed.contains($0.id) }.map(\.name)
            throw JobError(
                code: .notAllowed,
                message: "this worker's group may send jobs to \(names.isEmpty ? "no group" : names.joined(separator: ", ")), not to '\(target.name)' (see jobGroups)")
        }
        guard target.runsJobs else {
            throw JobError(code: .notAllowed, message: "group '\(target.name)' does not run jobs (its workers have no job executor)")
        }
        guard payload.count <= maximumPayload else {
            throw JobError(code: .tooLarge, message: "the payload is \(payload.count) bytes; the limit is \(maximumPayload)")
        }
        guard (0...Self.maximumRetries).contains(retries) else {
            throw JobError(code: .badRequest, message: "retries is \(retries); it must be from 0 to \(Self.maximumRetries)")
        }
        let window = timeout ?? defaultTimeout
        let deadline = PoolInstant.now + window
        // Full or stopping: not tried again for this job unless scaling on demand waits for room.
        var refused: Set<WorkerID> = []
        // Died or unreachable, by slot and the pid it had: a slot is a candidate again once
        // another process is ready in it, so a lone worker's replacement takes the job.
        var lost: [WorkerID: Int32] = [:]
        var attempts = 0
        var retriesLeft = retries
        var lastRefusal: JobError?
        var lastScaleRequest: PoolInstant?
        var missed = false
        // The first pass needs no clock read of its own: the deadline was set from one just now.
        var first = true
        while true {
            if Task.isCancelled { throw JobError(code: .cancelled, message: "cancelled before it was sent", attempts: attempts) }
            guard first ? window > .zero : PoolInstant.now < deadline else {
                throw lastRefusal.map { $0.with(attempts: attempts) }
                    ?? JobError(
                        code: .timedOut, message: "the timeout passed before a worker of group '\(target.name)' took it",
                        attempts: attempts)
            }
            first = false
            var candidates: [PickupCandidate] = []
            candidates.reserveCapacity(target.slots)
            // Whether a worker is on its way: starting, backing off before a restart, stopping
            // (a soft or rolling restart replaces it), or lost by this job while the watcher has
            // not yet seen it go.
            var coming = false
            for slot in 0..<target.slots {
                let id = WorkerID(target.firstWorkerID.rawValue + slot)
                // Most jobs are refused nowhere: no hashing then.
                guard id != senderID && (refused.isEmpty || !refused.contains(id)) else { continue }
                guard let load = reader.pickupLoad(of: id) else { continue }
                switch load.state {
                case .starting, .backoff, .stopping:
                    coming = true
                case .ready where !lost.isEmpty && lost[id] == load.pid:
                    coming = true
                case .ready:
                    candidates.append(PickupCandidate(id: id, jobsInFlight: load.jobsInFlight, inFlightWeight: load.inFlightWeight))
                default:
                    continue
                }
            }
            let picked = pickup.choose(from: candidates, weight: weight, priority: priority)
            guard let (chosen, reason) = picked else {
                if coming {
                    // A worker is being started or replaced (a restart, or the one this job lost):
                    // wait for it within the job's timeout, whether or not the group scales on
                    // demand, rather than fail the job in the gap.
                    try await Self.pause(.milliseconds(2))
                    continue
                }
                let none = JobError(
                    code: .noWorkerAvailable,
                    message: "no ready worker in group '\(target.name)' (\(describe(target.id)))",
                    attempts: attempts)
                // Once per job, however long it then waits for a worker.
                if !missed {
                    missed = true
                    countPickupMiss?(target.id)
                }
                guard let requestScale, target.scalesOnDemand else { throw lastRefusal.map { $0.with(attempts: attempts) } ?? none }
                // Scaling by request: ask for one more worker (again every 250 ms while waiting; the
                // watcher rate-limits), and wait for one within the deadline, trying refused workers
                // again since their queues may have room by then.
                let now = PoolInstant.now
                if lastScaleRequest.map({ now.duration(since: $0) >= .milliseconds(250) }) ?? true {
                    requestScale(target.id)
                    lastScaleRequest = now
                }
                refused = []
                try await Self.pause(.milliseconds(5))
                if PoolInstant.now >= deadline { throw lastRefusal.map { $0.with(attempts: attempts) } ?? none }
                continue
            }
            attempts += 1
            let chosenPID = reader.pickupLoad(of: chosen)?.pid ?? 0
            let connection: JobConnection
            do {
                connection = try self.connection(to: chosen)
            } catch let error as JobClientShutDown {
                throw JobError(code: .workerLost, message: error.description, attempts: attempts)
            } catch {
                lost[chosen] = chosenPID
                lastRefusal = JobError(code: .workerLost, message: "cannot connect to worker \(chosen): \(error)", worker: chosen)
                continue
            }
            let jobID = nextJobID.add(1, ordering: .relaxed).newValue
            let request = JobRequestFrame(
                jobID: jobID, deadline: deadline.nanoseconds, priority: Int32(clamping: priority), weight: UInt32(clamping: max(weight, 0)),
                senderWorker: UInt32(senderID?.rawValue ?? 0), senderGroup: UInt32(senderGroup?.rawValue ?? 0), senderToken: token,
                payload: payload)
            let answer = await connection.send(request, deadline: deadline)
            switch answer {
            case .result(let result):
                return JobResult(
                    payload: result.payload, worker: chosen, reason: reason,
                    queueWait: .nanoseconds(Int64(clamping: result.queueWaitNanoseconds)),
                    runTime: .nanoseconds(Int64(clamping: result.runNanoseconds)), attempts: attempts)
            case .error(let error) where error.code == .rejected || error.code == .stopping:
                // Full or stopping: another worker may take it.
                refused.insert(chosen)
                lastRefusal = JobError(code: .rejected, message: error.message, worker: chosen)
            case .error(let error):
                throw JobError(code: Self.code(error.code), message: error.message, worker: chosen, attempts: attempts)
            case .notStarted(let why):
                // It never ran: another worker takes it, with no retry spent.
                forget(connection, of: chosen)
                lost[chosen] = chosenPID
                lastRefusal = JobError(code: .workerLost, message: "\(why); the job had not started", worker: chosen)
            case .lost(let why):
                forget(connection, of: chosen)
                guard retriesLeft > 0 else {
                    throw JobError(code: .workerLost, message: why, worker: chosen, attempts: attempts)
                }
                retriesLeft -= 1
                lost[chosen] = chosenPID
                lastRefusal = JobError(code: .workerLost, message: why, worker: chosen)
                let retry = retries - retriesLeft
                let backoff = Duration.milliseconds(10 << min(retry - 1, 7))
                try await Self.pause(min(backoff, .seconds(1), max(deadline.duration(since: .now), .zero)))
            case .timedOut:
                throw JobError(code: .timedOut, message: "no result within the timeout", worker: chosen, attempts: attempts)
            case .cancelled:
                throw JobError(code: .cancelled, message: "cancelled by its sender", worker: chosen, attempts: attempts)
            }
        }
    }

    /// Drops a connection that ended, so the next job to that slot opens a new one.
    private func forget(_ connection: JobConnection, of worker: WorkerID) {
        connections.withLock { if $0[worker] === connection { $0.removeValue(forKey: worker) } }
    }

    /// Submits a job without waiting for it; its failure is logged to `logger`, never silent.
    public func send(
        _ payload: [UInt8], to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil,
        retries: Int = 0, logger: Logger
    ) {
        Task {
            do {
                _ = try await submit(payload, to: group, priority: priority, weight: weight, timeout: timeout, retries: retries)
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

    /// The states of a group's workers, for a job that found none ready.
    private func describe(_ id: GroupID) -> String {
        guard let group = pool.group(id) else { return "the group is gone" }
        let records = reader.records(of: group)
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
                let started = try JobClientIO(policy: waitPolicy)
                io = .running(started)
                return started
            }
        }
        // The process behind the socket, as far as shared memory says: its running-jobs table
        // is read only while it is still that process's.
        let pid = reader.pickupLoad(of: worker)?.pid ?? 0
        let (segment, location, token) = (reader.segment, routing.withLock { $0.runningJobs[worker] }, token)
        let connection = try JobConnection.connect(
            path: JobServer.socketPath(runtimeDirectory: runtimeDirectory, worker: worker), worker: worker, io: io
        ) {
            location.flatMap { RunningJobsTable.startedJobs(token: token, pid: pid, segment: segment, location: $0) }
        }
        let kept = connections.withLock { connections -> JobConnection in
            if let other = connections[worker], other.isActive { return other }
            connections[worker] = connection
            return connection
        }
        if kept !== connection { connection.close() }
        return kept
    }
}

/// The pool as a job client routes by it: the description, and for each of its groups (same
/// index) the few fields a job reads. A job copies out its group's route, not the group's
/// description, whose strings, arrays and dictionaries made a dozen reference counts per job
/// on objects every sending thread shares.
private struct Routing: Sendable {
    struct Route: Sendable {
        var id: GroupID
        var name: String
        var runsJobs: Bool
        var firstWorkerID: WorkerID
        var slots: Int
        var scalesOnDemand: Bool
    }

    var pool: PoolDescription
    var runningJobs: [WorkerID: RunningJobsTable.Location]
    var routes: [Route]

    init(_ pool: PoolDescription) {
        self.pool = pool
        runningJobs = RunningJobsTable.layout(of: pool).locations
        routes = pool.groups.map { group in
            Route(
                id: group.id, name: group.name, runsJobs: group.jobExecutor != nil, firstWorkerID: group.firstWorkerID,
                slots: group.slots, scalesOnDemand: group.scaling.onDemand)
        }
    }

    /// The route of the group ``PoolDescription/group(_:)-(GroupReference)`` finds.
    func route(_ reference: GroupReference) -> Route? {
        pool.groupIndex(reference).map { routes[$0] }
    }
}

/// A job submitted after its client shut down (its worker or pool is stopping).
struct JobClientShutDown: Error, CustomStringConvertible {
    var description: String { "the job client has shut down (its worker or pool is stopping)" }
}

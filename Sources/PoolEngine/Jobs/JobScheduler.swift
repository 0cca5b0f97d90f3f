import Synchronization

/// The executor's scheduler: higher priority first, first-in first-out within a priority,
/// within limits on concurrent jobs and weight, with a bounded queue.
final class JobScheduler: Sendable {
    typealias Reply = @Sendable (JobFrame) -> Void
    /// Runs before a job's handler may start: the connection tells its sender the job has
    /// started, and calls `launch(true)` once that is in the kernel (so a sender whose worker
    /// dies later knows the job ran), or `launch(false)` when the connection is gone.
    typealias StartGate = @Sendable (_ jobID: UInt64, _ launch: @escaping @Sendable (Bool) -> Void) -> Void

    struct Key: Hashable, Sendable {
        var connection: UInt64
        var job: UInt64
    }

    private struct Entry: Sendable {
        var key: Key
        var job: Job
        var reply: Reply
        var gate: StartGate?
        /// The sender's token, for the running-jobs table.
        var token: UInt64
        var sequence: UInt64
        var enqueuedAt: UInt64
    }

    private struct Running: Sendable {
        var task: Task<Void, Never>?
        var weight: Int
        var reply: Reply
        var cancelled: Bool
    }

    private struct State: ~Copyable {
        var queue = JobQueue()
        var running: [Key: Running] = [:]
        var runningWeight = 0
        var sequence: UInt64 = 0
        var isAccepting = true
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let limits: JobExecutorConfiguration
    let workerID: WorkerID
    private let handler: any JobHandler
    private let activity: (@Sendable ((inout WorkerActivity) -> Void) -> Void)?
    /// Describes a job as it starts, for its post-mortem should the worker die running it.
    private let describe: (@Sendable (Job) -> Void)?
    /// Records a job's queue wait and, when it ran, its run time (nanoseconds) for the metrics.
    private let latency: (@Sendable (_ wait: UInt64, _ run: UInt64?) -> Void)?
    /// Where a job is recorded as started before its handler runs (see ``RunningJobsTable``);
    /// without it, or when it is full, the connection's gate announces the start.
    private let runningJobs: RunningJobsTable?
    /// A fault drill's record of started jobs (``JobJournal``); nil in normal use.
    private let journal: JobJournal?
    private let state = Mutex(State())

    init(
        limits: JobExecutorConfiguration, workerID: WorkerID, handler: any JobHandler,
        activity: (@Sendable ((inout WorkerActivity) -> Void) -> Void)? = nil,
        describe: (@Sendable (Job) -> Void)? = nil,
        latency: (@Sendable (_ wait: UInt64, _ run: UInt64?) -> Void)? = nil,
        runningJobs: RunningJobsTable? = nil, journal: JobJournal? = nil
    ) {
        self.limits = limits
        self.workerID = workerID
        self.handler = handler
        self.activity = activity
        self.describe = describe
        self.latency = latency
        self.runningJobs = runningJobs
        self.journal = journal
    }

    /// The answers of these jobs are in the kernel, or their connection is gone: the
    /// running-jobs table forgets them.
    func answersWritten(connection: UInt64, jobIDs: [UInt64]) {
        guard let runningJobs else { return }
        for jobID in jobIDs { runningJobs.release(Key(connection: connection, job: jobID)) }
    }

    /// Jobs queued and running.
    var load: (queued: Int, running: Int) { state.withLock { ($0.queue.count, $0.running.count) } }

    /// Takes a request: runs it, queues it, or refuses it with an explicit error. With a
    /// `gate`, each job's handler runs only once the gate lets it (see ``StartGate``).
    func submit(_ request: JobRequestFrame, connection: UInt64, gate: StartGate? = nil, reply: @escaping Reply) {
        let now = Posix.monotonicNanoseconds()
        let job = Job(
            id: request.jobID, payload: request.payload, priority: Int(request.priority), weight: Int(request.weight),
            sender: request.senderWorker == 0 ? nil : WorkerID(Int(request.senderWorker)),
            senderGroup: request.senderGroup == 0 ? nil : GroupID(Int(request.senderGroup)),
            deadline: request.deadline == 0 ? nil : PoolInstant(nanoseconds: request.deadline))
        let refusal = state.withLock { state -> (JobErrorCode, String)? in
            guard state.isAccepting else { return (.stopping, "worker \(workerID) is stopping and takes no new jobs") }
            // The bound is on jobs that must wait: one that can start at once is never refused.
            let weight = max(job.weight, 0)
            let startsNow =
                state.queue.count == 0 && state.running.count < limits.maxConcurrentJobs
                && (limits.maxConcurrentWeight == 0 || state.running.isEmpty || state.runningWeight + weight <= limits.maxConcurrentWeight)
            if !startsNow && state.queue.count >= limits.maxQueuedJobs {
                return (.rejected, "worker \(workerID) is full: \(state.running.count) running, \(state.queue.count) queued (limit \(limits.maxQueuedJobs))")
            }
            state.sequence += 1
            state.queue.push(
                Entry(
                    key: Key(connection: connection, job: request.jobID), job: job, reply: reply, gate: gate,
                    token: request.senderToken, sequence: state.sequence, enqueuedAt: now))
            return nil
        }
        if let (code, message) = refusal {
            if code == .rejected { activity? { $0.jobsRejected += 1 } }
            reply(.error(JobErrorFrame(jobID: request.jobID, worker: UInt32(workerID.rawValue), code: code, queueWaitNanoseconds: 0, runNanoseconds: 0, message: message)))
            return
        }
        activity? { activity in
            activity.jobsAccepted += 1
            activity.jobsInFlight += 1
            activity.inFlightWeight += UInt64(max(job.weight, 0))
        }
        startEligible(now: now)
    }

    /// The sender cancelled: a queued job is answered at once, a running one is cancelled.
    func cancel(connection: UInt64, jobID: UInt64) {
        let key = Key(connection: connection, job: jobID)
        let (removed, task) = state.withLock { state -> (Entry?, Task<Void, Never>?) in
            if let entry = state.queue.remove(key) { return (entry, nil) }
            state.running[key]?.cancelled = true
            return (nil, state.running[key]?.task)
        }
        if let removed {
            finishAccounting(removed.job, error: false)
            removed.reply(.error(JobErrorFrame(jobID: jobID, worker: UInt32(workerID.rawValue), code: .cancelled, queueWaitNanoseconds: 0, runNanoseconds: 0, message: "cancelled by its sender before it started")))
            signalDrainIfIdle()
        }
        task?.cancel()
    }

    /// A sender's connection closed: nobody is left to answer, so its jobs are dropped or cancelled.
    func cancelAll(connection: UInt64) {
        let (removed, tasks) = state.withLock { state -> ([Entry], [Task<Void, Never>]) in
            let removed = state.queue.removeAll { $0.key.connection == connection }
            var tasks: [Task<Void, Never>] = []
            for (key, running) in state.running where key.connection == connection {
                state.running[key]?.cancelled = true
                if let task = running.task { tasks.append(task) }
            }
            return (removed, tasks)
        }
        for entry in removed { finishAccounting(entry.job, error: false) }
        tasks.forEach { $0.cancel() }
        signalDrainIfIdle()
    }

    /// Stops taking jobs and returns once every queued and running job has finished.
    func drain() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                state.isAccepting = false
                if state.queue.count == 0 && state.running.isEmpty { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Stops taking jobs and cancels every queued and running one (the worker cannot wait).
    func cancelEverything() {
        let (removed, tasks) = state.withLock { state -> ([Entry], [Task<Void, Never>]) in
            state.isAccepting = false
            let removed = state.queue.removeAll { _ in true }
            for key in state.running.keys { state.running[key]?.cancelled = true }
            return (removed, state.running.values.compactMap(\.task))
        }
        for entry in removed {
            finishAccounting(entry.job, error: false)
            entry.reply(.error(JobErrorFrame(jobID: entry.job.id, worker: UInt32(workerID.rawValue), code: .cancelled, queueWaitNanoseconds: 0, runNanoseconds: 0, message: "worker \(workerID) stopped before the job started")))
        }
        tasks.forEach { $0.cancel() }
        signalDrainIfIdle()
    }

    // MARK: - Running

    /// Starts what the limits let start. `now`, when the caller has just read the clock, serves
    /// for the first job's deadline check and start time: a job worker read the clock about
    /// ten times per job, and each read is dear in a VM (decision 0026).
    private func startEligible(now: UInt64? = nil) {
        var known = now
        while true {
            let started = state.withLock { state -> (Entry, Bool, Bool, UInt64)? in
                guard let head = state.queue.peek() else { return nil }
                let weight = max(head.job.weight, 0)
                guard state.running.count < limits.maxConcurrentJobs else { return nil }
                // A job heavier than the whole limit still runs alone; otherwise it would never run.
                if limits.maxConcurrentWeight > 0 && !state.running.isEmpty
                    && state.runningWeight + weight > limits.maxConcurrentWeight
                {
                    return nil
                }
                let entry = state.queue.pop()!
                let clock = known ?? Posix.monotonicNanoseconds()
                let expired = entry.job.deadline.map { $0.nanoseconds <= clock } ?? false
                if !expired {
                    state.running[entry.key] = Running(task: nil, weight: weight, reply: entry.reply, cancelled: false)
                    state.runningWeight += weight
                }
                let inline = !expired && handler.startsInline && state.running.count == 1 && state.queue.count == 0
                return (entry, expired, inline, clock)
            }
            guard let (entry, expired, inline, clock) = started else { return }
            // Good for the next job too, unless this one ran here meanwhile.
            known = inline ? nil : clock
            if expired {
                finishAccounting(entry.job, error: true)
                let waited = clock &- entry.enqueuedAt
                latency?(waited, nil)
                entry.reply(.error(JobErrorFrame(jobID: entry.job.id, worker: UInt32(workerID.rawValue), code: .timedOut, queueWaitNanoseconds: waited, runNanoseconds: 0, message: "its deadline passed while it waited in the queue")))
                signalDrainIfIdle()
                continue
            }
            run(entry, inline: inline, at: clock)
        }
    }

    private func run(_ entry: Entry, inline: Bool, at clock: UInt64) {
        journal?.record(entry.job)
        // The usual way: two stores in shared memory, nothing the sender is woken by.
        if let runningJobs, runningJobs.claim(entry.key, token: entry.token, jobID: entry.job.id) {
            launch(entry, inline: inline, startedAt: clock)
            return
        }
        guard let gate = entry.gate else {
            launch(entry, inline: inline, startedAt: clock)
            return
        }
        gate(entry.job.id) { [self] announced in
            if announced {
                launch(entry, inline: inline)
            } else {
                abandon(entry)
            }
        }
    }

    /// The connection closed before the job could start: nobody is left to answer.
    private func abandon(_ entry: Entry) {
        state.withLock { state in
            if let running = state.running.removeValue(forKey: entry.key) { state.runningWeight -= running.weight }
        }
        finishAccounting(entry.job, error: false)
        startEligible()
        signalDrainIfIdle()
    }

    /// Starts the job's handler; `startedAt` when the caller read the clock just before.
    private func launch(_ entry: Entry, inline: Bool, startedAt known: UInt64? = nil) {
        let startedAt = known ?? Posix.monotonicNanoseconds()
        let queueWait = startedAt &- entry.enqueuedAt
        // Described first: once the activity part names the job, its particulars are there.
        describe?(entry.job)
        activity? { activity in
            activity.currentJobID = entry.job.id
            // Shown as "running for", to the second: the last tick's time is close enough.
            activity.currentJobSince = Posix.coarseWallClockNanoseconds()
        }
        let handler = self.handler
        let worker = UInt32(workerID.rawValue)
        let body: @Sendable () async -> Void = { [self] in
            var frame: JobFrame
            var failed = false
            var endedAt: UInt64
            do {
                let result = try await handler.handle(entry.job)
                endedAt = Posix.monotonicNanoseconds()
                frame = .result(JobResultFrame(jobID: entry.job.id, worker: worker, queueWaitNanoseconds: queueWait, runNanoseconds: endedAt &- startedAt, payload: result))
            } catch {
                endedAt = Posix.monotonicNanoseconds()
                failed = true
                let cancelled = state.withLock { $0.running[entry.key]?.cancelled ?? false }
                let code: JobErrorCode = cancelled ? .cancelled : .handlerFailed
                let message = cancelled ? "cancelled while running" : String(describing: error)
                frame = .error(JobErrorFrame(jobID: entry.job.id, worker: worker, code: code, queueWaitNanoseconds: queueWait, runNanoseconds: endedAt &- startedAt, message: message))
            }
            finished(entry, frame: frame, failed: failed, at: endedAt)
        }
        // Inline only when this is the one job running: parallel jobs need tasks of their own,
        // and a job finishing inline starts the next through `startEligible`, which must not
        // recurse once per queued job.
        let task = inline ? Task.immediate(operation: body) : Task(operation: body)
        let cancelNow = state.withLock { state -> Bool in
            state.running[entry.key]?.task = task
            return state.running[entry.key]?.cancelled ?? false
        }
        if cancelNow { task.cancel() }
    }

    private func finished(_ entry: Entry, frame: JobFrame, failed: Bool, at endedAt: UInt64) {
        state.withLock { state in
            if let running = state.running.removeValue(forKey: entry.key) { state.runningWeight -= running.weight }
        }
        finishAccounting(entry.job, error: failed)
        switch frame {
        case .result(let result): latency?(result.queueWaitNanoseconds, result.runNanoseconds)
        case .error(let error): latency?(error.queueWaitNanoseconds, error.runNanoseconds)
        default: break
        }
        entry.reply(frame)
        startEligible(now: endedAt)
        signalDrainIfIdle()
    }

    private func finishAccounting(_ job: Job, error: Bool) {
        activity? { activity in
            activity.jobsProcessed += 1
            if error { activity.jobsErrors += 1 }
            activity.jobsInFlight = activity.jobsInFlight > 0 ? activity.jobsInFlight - 1 : 0
            let weight = UInt64(max(job.weight, 0))
            activity.inFlightWeight = activity.inFlightWeight >= weight ? activity.inFlightWeight - weight : 0
            if activity.currentJobID == job.id {
                activity.currentJobID = 0
                activity.currentJobSince = 0
            }
        }
    }

    private func signalDrainIfIdle() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.queue.count == 0 && state.running.isEmpty else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// A binary heap: highest priority first, then lowest sequence (arrival order).
    private struct JobQueue {
        private var heap: [Entry] = []

        var count: Int { heap.count }

        func peek() -> Entry? { heap.first }

        private static func before(_ a: Entry, _ b: Entry) -> Bool {
            a.job.priority != b.job.priority ? a.job.priority > b.job.priority : a.sequence < b.sequence
        }

        mutating func push(_ entry: Entry) {
            heap.append(entry)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.before(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> Entry? {
            guard !heap.isEmpty else { return nil }
            heap.swapAt(0, heap.count - 1)
            let top = heap.removeLast()
            siftDown(from: 0)
            return top
        }

        private mutating func siftDown(from start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var best = parent
                if left < heap.count && Self.before(heap[left], heap[best]) { best = left }
                if right < heap.count && Self.before(heap[right], heap[best]) { best = right }
                if best == parent { return }
                heap.swapAt(parent, best)
                parent = best
            }
        }

        mutating func remove(_ key: Key) -> Entry? {
            guard let index = heap.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = heap[index]
            heap.remove(at: index)
            rebuild()
            return entry
        }

        mutating func removeAll(where predicate: (Entry) -> Bool) -> [Entry] {
            let removed = heap.filter(predicate)
            guard !removed.isEmpty else { return [] }
            heap.removeAll(where: predicate)
            rebuild()
            return removed
        }

        private mutating func rebuild() {
            for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(from: index) }
        }
    }
}

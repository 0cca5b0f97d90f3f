import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
        var enqueuedAt: UInt64
    }

    private struct Running: Sendable {
        var task: Task<Void, Never>?
        var weight: Int
        var reply: Reply
        var cancelled: Bool
    }

    private struct State: ~Copyable {
        /// The jobs waiting: highest priority first, then in arrival order.
        var queue = PriorityLines<Entry>()
        var running: [Key: Running] = [:]
        var runningWeight = 0
        var isAccepting = true
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
        /// Queued jobs that could start at once but were held for the rest of their read
        /// (``submit(_:connection:gate:holdStart:reply:)``), and their weight: later jobs of
        /// the read count them as started.
        var held = (jobs: 0, weight: 0)
        /// When the last request was handed over: the clock ``startHeld()`` starts them by
        /// (one clock read less; what is left of the read since is a few instructions).
        var lastArrival: UInt64 = 0
        /// Held jobs not yet counted accepted in the activity part: counted once for the read.
        var uncounted = (jobs: 0, weight: 0)
    }

    /// A run of jobs started inline (``runInline(_:startedAt:)``), as the thread that started
    /// it sees it.
    private final class InlineRun: Sendable {
        private let thread = UInt(pthread_self())
        /// Whether that thread is still inside the run, and the job the run is on.
        private let state: Mutex<(synchronous: Bool, current: Key)>

        init(_ first: Key) {
            state = Mutex((true, first))
        }

        /// On the thread that started the run, before it returned: the run has not suspended.
        /// The thread alone would not tell: a pool thread may resume the run later.
        var isSynchronous: Bool {
            UInt(pthread_self()) == thread && state.withLock { $0.synchronous }
        }

        /// The run has gone on to job `key`.
        func goesOn(with key: Key) {
            state.withLock { $0.current = key }
        }

        /// The starting thread is back: the job the run suspended in, if it did not end.
        func returned() -> Key? {
            state.withLock { state in
                state.synchronous = false
                return state.current
            }
        }
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
    /// `gate`, each job's handler runs only once the gate lets it (see ``StartGate``). With
    /// `holdStart` it is queued even if it could start, until ``startHeld()``: the job server
    /// hands over the requests of one read together, so that jobs starting inline run one
    /// after another in one task (``runInline(_:startedAt:)``). It is never refused for that:
    /// jobs held count as started.
    func submit(_ request: JobRequestFrame, connection: UInt64, gate: StartGate? = nil, holdStart: Bool = false, reply: @escaping Reply) {
        let now = Posix.monotonicNanoseconds()
        let job = Job(
            id: request.jobID, payload: request.payload, priority: Int(request.priority), weight: Int(request.weight),
            sender: request.senderWorker == 0 ? nil : WorkerID(Int(request.senderWorker)),
            senderGroup: request.senderGroup == 0 ? nil : GroupID(Int(request.senderGroup)),
            deadline: request.deadline == 0 ? nil : PoolInstant(nanoseconds: request.deadline))
        let refusal = state.withLock { state -> (JobErrorCode, String)? in
            guard state.isAccepting else { return (.stopping, "worker \(workerID) is stopping and takes no new jobs") }
            // The bound is on jobs that must wait: one that can start at once is never refused.
            // Held jobs are about to start, so they count as running, not as waiting.
            let weight = max(job.weight, 0)
            let waiting = state.queue.count - state.held.jobs
            let startsNow =
                waiting == 0 && state.running.count + state.held.jobs < limits.maxConcurrentJobs
                && (limits.maxConcurrentWeight == 0 || (state.running.isEmpty && state.held.jobs == 0)
                    || state.runningWeight + state.held.weight + weight <= limits.maxConcurrentWeight)
            if !startsNow && waiting >= limits.maxQueuedJobs {
                return (.rejected, "worker \(workerID) is full: \(state.running.count) running, \(waiting) queued (limit \(limits.maxQueuedJobs))")
            }
            state.queue.append(
                Entry(
                    key: Key(connection: connection, job: request.jobID), job: job, reply: reply, gate: gate,
                    token: request.senderToken, enqueuedAt: now),
                priority: job.priority)
            state.lastArrival = now
            if holdStart {
                if startsNow { state.held = (state.held.jobs + 1, state.held.weight + weight) }
                state.uncounted = (state.uncounted.jobs + 1, state.uncounted.weight + weight)
            }
            return nil
        }
        if let (code, message) = refusal {
            if code == .rejected { activity? { $0.jobsRejected += 1 } }
            reply(.error(JobErrorFrame(jobID: request.jobID, worker: UInt32(workerID.rawValue), code: code, queueWaitNanoseconds: 0, runNanoseconds: 0, message: message)))
            return
        }
        if !holdStart {
            countAccepted(jobs: 1, weight: max(job.weight, 0))
            startEligible(now: now)
        }
    }

    private func countAccepted(jobs: Int, weight: Int) {
        activity? { activity in
            activity.jobsAccepted += UInt64(jobs)
            activity.jobsInFlight += UInt64(jobs)
            activity.inFlightWeight += UInt64(weight)
        }
    }

    /// Counts the held jobs not counted yet; under the lock, so that none of them ends (and
    /// is taken off the counts) before it was counted.
    private func countHeldAccepted(_ state: inout State) {
        guard state.uncounted.jobs > 0 else { return }
        countAccepted(jobs: state.uncounted.jobs, weight: state.uncounted.weight)
        state.uncounted = (0, 0)
    }

    /// The job server handed over every request of one read (submitted with `holdStart`):
    /// they start now, in priority order.
    func startHeld() {
        let arrival = state.withLock { state in
            countHeldAccepted(&state)
            return state.lastArrival
        }
        startEligible(now: arrival)
    }

    /// The sender cancelled: a queued job is answered at once, a running one is cancelled.
    func cancel(connection: UInt64, jobID: UInt64) {
        let key = Key(connection: connection, job: jobID)
        let (removed, task) = state.withLock { state -> (Entry?, Task<Void, Never>?) in
            // Counted before any is taken off the counts (a cancel may follow in the same read).
            countHeldAccepted(&state)
            if let entry = state.queue.removeFirst(where: { $0.key == key }) { return (entry, nil) }
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
            countHeldAccepted(&state)
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
            countHeldAccepted(&state)
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

    /// What ``popEligible(_:clock:alone:)`` took from the queue.
    private struct Popped {
        var entry: Entry
        /// Its deadline passed while it waited: it is answered, not run.
        var expired: Bool
        /// It is the one job running and its handler starts inline.
        var inline: Bool
        var clock: UInt64
    }

    /// Under the lock: the next job the limits let start, marked running unless its deadline
    /// passed; with `alone`, only while no other job runs. Held starts are taken here too.
    private func popEligible(_ state: inout State, clock known: UInt64?, alone: Bool) -> Popped? {
        state.held = (0, 0)
        // Another thread may take jobs of a read this thread is still handing over.
        countHeldAccepted(&state)
        guard let headWeight = state.queue.withFirst({ $0.job.weight }), !alone || state.running.isEmpty else { return nil }
        let weight = max(headWeight, 0)
        guard state.running.count < limits.maxConcurrentJobs else { return nil }
        // A job heavier than the whole limit still runs alone; otherwise it would never run.
        if limits.maxConcurrentWeight > 0 && !state.running.isEmpty && state.runningWeight + weight > limits.maxConcurrentWeight {
            return nil
        }
        let entry = state.queue.popFirst()!
        let clock = known ?? Posix.monotonicNanoseconds()
        let expired = entry.job.deadline.map { $0.nanoseconds <= clock } ?? false
        if !expired {
            state.running[entry.key] = Running(task: nil, weight: weight, reply: entry.reply, cancelled: false)
            state.runningWeight += weight
        }
        let inline = !expired && handler.startsInline && state.running.count == 1
        return Popped(entry: entry, expired: expired, inline: inline, clock: clock)
    }

    /// Starts what the limits let start. `now`, when the caller has just read the clock, serves
    /// for the first job's deadline check and start time: a job worker read the clock about
    /// ten times per job, and each read is dear in a VM (decision 0026).
    private func startEligible(now: UInt64? = nil) {
        var known = now
        while let popped = state.withLock({ popEligible(&$0, clock: known, alone: false) }) {
            // Good for the next job too, unless this one ran here meanwhile.
            known = popped.inline ? nil : popped.clock
            if popped.expired {
                expire(popped)
            } else if announce(popped.entry, inline: popped.inline) {
                launch(popped.entry, inline: popped.inline, startedAt: popped.clock)
            }
        }
    }

    /// A job whose deadline passed while it waited: answered timed-out, never run.
    private func expire(_ popped: Popped) {
        finishAccounting(popped.entry.job, error: true)
        let waited = popped.clock &- popped.entry.enqueuedAt
        latency?(waited, nil)
        popped.entry.reply(.error(JobErrorFrame(jobID: popped.entry.job.id, worker: UInt32(workerID.rawValue), code: .timedOut, queueWaitNanoseconds: waited, runNanoseconds: 0, message: "its deadline passed while it waited in the queue")))
        signalDrainIfIdle()
    }

    /// Records that the job starts, before its handler runs: true when the caller launches it
    /// now, false when the connection's gate must first tell the sender (it launches the job
    /// itself once that is done, with `inline`).
    private func announce(_ entry: Entry, inline: Bool) -> Bool {
        journal?.record(entry.job)
        // The usual way: two stores in shared memory, nothing the sender is woken by.
        if let runningJobs, runningJobs.claim(entry.key, token: entry.token, jobID: entry.job.id) { return true }
        guard let gate = entry.gate else { return true }
        gate(entry.job.id) { [self] announced in
            if announced {
                launch(entry, inline: inline)
            } else {
                abandon(entry)
            }
        }
        return false
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

    /// The job's handler is about to run: its description and the activity part name it.
    /// Returns its start time (`known` when the caller read the clock just before).
    private func begin(_ entry: Entry, startedAt known: UInt64?) -> UInt64 {
        // Described first: once the activity part names the job, its particulars are there.
        describe?(entry.job)
        activity? { activity in
            activity.currentJobID = entry.job.id
            // Shown as "running for", to the second: the last tick's time is close enough.
            activity.currentJobSince = Posix.coarseWallClockNanoseconds()
        }
        return known ?? Posix.monotonicNanoseconds()
    }

    /// Runs the job's handler: the frame that answers it, whether it failed, and when it ended.
    private func execute(_ entry: Entry, startedAt: UInt64) async -> (frame: JobFrame, failed: Bool, endedAt: UInt64) {
        let worker = UInt32(workerID.rawValue)
        let queueWait = startedAt &- entry.enqueuedAt
        do {
            let result = try await handler.handle(entry.job)
            let endedAt = Posix.monotonicNanoseconds()
            return (.result(JobResultFrame(jobID: entry.job.id, worker: worker, queueWaitNanoseconds: queueWait, runNanoseconds: endedAt &- startedAt, payload: result)), false, endedAt)
        } catch {
            let endedAt = Posix.monotonicNanoseconds()
            let cancelled = state.withLock { $0.running[entry.key]?.cancelled ?? false }
            let code: JobErrorCode = cancelled ? .cancelled : .handlerFailed
            let message = cancelled ? "cancelled while running" : String(describing: error)
            return (.error(JobErrorFrame(jobID: entry.job.id, worker: worker, code: code, queueWaitNanoseconds: queueWait, runNanoseconds: endedAt &- startedAt, message: message)), true, endedAt)
        }
    }

    /// Starts the job's handler in a task of its own, or inline: then on this thread until its
    /// first suspension, going on with the jobs queued behind it while none suspends.
    /// `startedAt` when the caller read the clock just before.
    private func launch(_ entry: Entry, inline: Bool, startedAt known: UInt64? = nil) {
        let startedAt = begin(entry, startedAt: known)
        if inline {
            runInline(entry, startedAt: startedAt)
            return
        }
        let task = Task { [self] in
            let (frame, failed, endedAt) = await execute(entry, startedAt: startedAt)
            _ = finished(entry, frame: frame, failed: failed, at: endedAt)
        }
        adopt(task, runningAs: entry.key)
    }

    /// Jobs started inline share one task while none of them suspends: the next job queued
    /// (those of one read are held until the read is handed over, see ``submit``) runs on this
    /// thread in the same task as soon as the one before has answered. A task per job cost a
    /// job worker 12-18 % of its CPU with 256 jobs in flight (decision 0033). Once a job
    /// suspends, the task ends with that job and the jobs behind it start as usual (this thread
    /// returns at the suspension and goes on starting them), so jobs that wait run in parallel.
    private func runInline(_ first: Entry, startedAt: UInt64) {
        let run = InlineRun(first.key)
        let task = Task.immediate { [self] in
            var entry = first
            var startedAt = startedAt
            while true {
                let (frame, failed, endedAt) = await execute(entry, startedAt: startedAt)
                // Only while the thread that started the run is still in it: a run that
                // suspended and resumed elsewhere must not take jobs this thread starts meanwhile.
                let goOn = run.isSynchronous && !Task.isCancelled
                guard let next = finished(entry, frame: frame, failed: failed, at: endedAt, goOn: goOn) else { return }
                run.goesOn(with: next.key)
                entry = next
                // `finished` described it and named it in the activity part.
                startedAt = endedAt
            }
        }
        if let suspended = run.returned() { adopt(task, runningAs: suspended) }
    }

    /// The task runs the job `key` beyond this call: kept, so that a cancel reaches it.
    private func adopt(_ task: Task<Void, Never>, runningAs key: Key) {
        let cancelNow = state.withLock { state -> Bool in
            state.running[key]?.task = task
            return state.running[key]?.cancelled ?? false
        }
        if cancelNow { task.cancel() }
    }

    /// The job ended: it is answered and the next jobs start. With `goOn` (an inline run that
    /// has not suspended) the next job, when it may run alone, is returned for the run to go on
    /// with instead, announced as started; any job left is started as usual.
    private func finished(_ entry: Entry, frame: JobFrame, failed: Bool, at endedAt: UInt64, goOn: Bool = false) -> Entry? {
        var popped = state.withLock { state -> Popped? in
            if let running = state.running.removeValue(forKey: entry.key) { state.runningWeight -= running.weight }
            return goOn ? popEligible(&state, clock: endedAt, alone: true) : nil
        }
        var next: Entry?
        while let candidate = popped {
            if !candidate.expired {
                if announce(candidate.entry, inline: false) { next = candidate.entry }
                break
            }
            // Answered here rather than by `startEligible`, which would start the job after it
            // in a run of its own, one deeper for each expired job.
            expire(candidate)
            popped = state.withLock { popEligible(&$0, clock: endedAt, alone: true) }
        }
        // The next job is described before the activity part names it, in the same update
        // that counts this one done: one update where there were two.
        if let next { describe?(next.job) }
        finishAccounting(entry.job, error: failed, next: next?.job)
        switch frame {
        case .result(let result): latency?(result.queueWaitNanoseconds, result.runNanoseconds)
        case .error(let error): latency?(error.queueWaitNanoseconds, error.runNanoseconds)
        default: break
        }
        entry.reply(frame)
        if next == nil { startEligible(now: endedAt) }
        signalDrainIfIdle()
        return next
    }

    /// Counts the job done; with `next`, names that job as the one running now.
    private func finishAccounting(_ job: Job, error: Bool, next: Job? = nil) {
        activity? { activity in
            activity.jobsProcessed += 1
            if error { activity.jobsErrors += 1 }
            activity.jobsInFlight = activity.jobsInFlight > 0 ? activity.jobsInFlight - 1 : 0
            let weight = UInt64(max(job.weight, 0))
            activity.inFlightWeight = activity.inFlightWeight >= weight ? activity.inFlightWeight - weight : 0
            if let next {
                activity.currentJobID = next.id
                activity.currentJobSince = Posix.coarseWallClockNanoseconds()
            } else if activity.currentJobID == job.id {
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
}

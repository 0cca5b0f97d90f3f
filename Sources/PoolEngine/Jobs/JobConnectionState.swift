import NIOCore

/// The state of one job connection (``JobConnection``), as a state machine: every transition
/// is a mutating method that returns what the caller must do (write bytes, resume senders,
/// change the epoll interest, close the descriptor), and the caller does it outside the lock.
/// Pure: no system call, no clock, no continuation resumed here, so it is tested as a unit
/// (generic over the waiter, which is a continuation in the connection and a number in tests).
///
/// Three roles touch the descriptor, each held by at most one thread at a time and taken and
/// released here: the **reader** (the I/O thread, or a sender polling for its answer), the
/// **writer** (whoever sends; others queue their bytes for it) and the **interest applier**
/// (`epoll_ctl`). The descriptor is closed only once the connection ended and no role is held,
/// so a descriptor number is never reused under a thread still using it.
struct JobConnectionState<Waiter: Sendable>: Sendable {
    enum WaiterState: Sendable {
        /// Written; the sender has not suspended yet (it is writing or polling).
        case sending
        case waiting(Waiter)
        /// Answered before the sender suspended: it takes the answer without suspending.
        case answered(JobAnswer)
    }

    struct Pending: Sendable {
        var waiter: WaiterState
        var deadline: UInt64
        /// The worker said the job started (a `started` frame named it).
        var started = false
    }

    /// Who reads the socket now.
    enum Reader: Hashable, Sendable {
        /// The I/O thread, handing out the answers it read: the senders they resume queue
        /// their next frames, and it writes them all when it is done.
        case ioThread
        /// A lone sender waiting for its answer on its own thread: the I/O thread is not woken
        /// for this socket's answers meanwhile.
        case poller
    }

    let worker: WorkerID
    private(set) var pending: [UInt64: Pending] = [:]
    /// Bytes waiting for the writer, in order.
    private(set) var outbound = ByteBuffer()
    private(set) var reader: Reader?
    private(set) var isWriting = false
    private(set) var isApplyingInterest = false
    /// The interest epoll holds now.
    private(set) var appliedInterest: Epoll.Events = Self.hangUpInterest
    /// Why the connection ended; nil while it is open.
    private(set) var closed: String?
    /// The worker said it is closing: no new job goes here.
    private(set) var isClosing = false
    private(set) var descriptorClosed = false
    /// Consecutive polls that ended without the answer; at 3 senders suspend at once, trying a
    /// poll again every 64th job in case the worker got faster.
    private(set) var pollMisses = 0
    private(set) var sent: UInt64 = 0

    /// Always watched: the worker shutting its side (after `closing`, or dying).
    static var hangUpInterest: Epoll.Events { .peerHangUp }

    init(worker: WorkerID) {
        self.worker = worker
    }

    // MARK: - Sending

    enum SendStart {
        /// Not sent: answer the sender with this at once.
        case refused(JobAnswer)
        /// Accepted. `write`: the caller is the writer and sends these bytes (nil: queued for
        /// the writer). `poll`: the caller reads for its answer itself; `adaptive`: it may use
        /// the measured wait mode (its last poll was answered), else `ppoll`. `gather`: many
        /// jobs are in flight, so the writer lets other senders queue behind it before it sends
        /// (``batchAbove``).
        case accepted(write: ByteBuffer?, poll: Bool, adaptive: Bool, gather: Bool)
    }

    /// A sender sends job `jobID` (`frame` is its request); `mayPoll` when its policy lets a
    /// lone sender wait on its own thread.
    mutating func send(_ jobID: UInt64, frame: ByteBuffer, deadline: UInt64, mayPoll: Bool) -> SendStart {
        if let closed { return .refused(.notStarted(closed)) }
        if isClosing {
            // Like the worker's own `stopping` answer, so the job goes to another worker.
            return .refused(.error(stopping(jobID, "worker \(worker) is stopping and takes no new jobs")))
        }
        pending[jobID] = Pending(waiter: .sending, deadline: deadline)
        sent += 1
        // Decided before the write: on a busy machine the answer can be back before the next
        // instruction, and it must find the I/O thread's interest already off.
        let polls =
            mayPoll && reader == nil && !isWriting && pending.count == 1 && outbound.readableBytes == 0
            && (pollMisses < 3 || sent % 64 == 0)
        if polls { reader = .poller }
        let write = enqueue(frame)
        return .accepted(
            write: write, poll: polls, adaptive: polls && pollMisses == 0, gather: write != nil && pending.count > Self.batchAbove)
    }

    /// Jobs in flight on the connection (its own included) above which the sender that becomes
    /// the writer yields once before it sends, so that the senders resumed with it (the I/O
    /// thread hands out answers in batches) queue their requests behind it and leave in the
    /// same `send`. With 256 jobs in flight nearly every request was a `send` of its own (465,116
    /// `sendto` for 512,000 jobs, both sides; 25,474 with this, decision 0021); a lone job, or a
    /// few, still leave at once.
    static var batchAbove: Int { 8 }

    /// The writer, back from letting others queue: what they queued, to send with its own bytes.
    mutating func takeQueued() -> ByteBuffer? {
        guard isWriting, closed == nil, outbound.readableBytes > 0 else { return nil }
        defer { outbound = ByteBuffer() }
        return outbound
    }

    /// The sender found no answer while sending or polling and suspends with `waiter`: returns
    /// the answer if it came meanwhile (then it does not suspend), and whether that drained a
    /// closing connection.
    mutating func suspend(_ jobID: UInt64, _ waiter: Waiter) -> (answer: JobAnswer?, drained: Bool) {
        guard let entry = pending[jobID] else { return (.cancelled, false) }
        if case .answered(let answer) = entry.waiter {
            pending.removeValue(forKey: jobID)
            return (answer, isDrained)
        }
        pending[jobID]?.waiter = .waiting(waiter)
        return (nil, false)
    }

    /// The sender's task was cancelled: its waiter to resume with `.cancelled`, if it waits, and
    /// a cancel frame for the worker (written by the caller if it became the writer).
    mutating func cancel(_ jobID: UInt64, cancelFrame: ByteBuffer) -> (waiter: Waiter?, write: ByteBuffer?) {
        guard let entry = pending[jobID] else { return (nil, nil) }
        switch entry.waiter {
        case .answered:
            return (nil, nil)
        case .sending:
            pending[jobID]?.waiter = .answered(.cancelled)
            return (nil, closed == nil ? enqueue(cancelFrame) : nil)
        case .waiting(let waiter):
            pending.removeValue(forKey: jobID)
            return (waiter, closed == nil ? enqueue(cancelFrame) : nil)
        }
    }

    /// Queues bytes behind what waits, or makes the caller the writer: then returns them for it to send.
    private mutating func enqueue(_ frame: ByteBuffer) -> ByteBuffer? {
        if isWriting || reader == .ioThread || outbound.readableBytes > 0 || descriptorClosed {
            var frame = frame
            outbound.writeBuffer(&frame)
            return nil
        }
        isWriting = true
        return frame
    }

    /// The I/O thread saw room to write: it becomes the writer of what waits, if nobody is.
    mutating func takeOutbound() -> ByteBuffer? {
        guard !descriptorClosed, !isWriting, reader != .ioThread, outbound.readableBytes > 0 else { return nil }
        isWriting = true
        defer { outbound = ByteBuffer() }
        return outbound
    }

    /// The writer sent what the socket took of its bytes; `left` is the rest (the socket was
    /// full), `failed` when the connection broke. Returns more for it to send (queued meanwhile),
    /// or nil: it is no longer the writer.
    mutating func wrote(left: ByteBuffer, failed: Bool) -> ByteBuffer? {
        if !failed, left.readableBytes == 0, outbound.readableBytes > 0, closed == nil {
            defer { outbound = ByteBuffer() }
            return outbound
        }
        if left.readableBytes > 0 && !failed {
            // Ahead of anything queued meanwhile, for the I/O thread to write when there is room.
            var rest = left
            rest.writeBuffer(&outbound)
            outbound = rest
        }
        isWriting = false
        return nil
    }

    // MARK: - Reading

    /// The I/O thread wants to read: true when it may (no sender polls, the socket is open).
    mutating func claimRead() -> Bool {
        guard reader == nil, !descriptorClosed else { return false }
        reader = .ioThread
        return true
    }

    /// The I/O thread is done reading and handing out answers: what the senders it resumed
    /// queued meanwhile, for it to write now as the writer.
    mutating func releaseRead() -> ByteBuffer? {
        reader = nil
        guard closed == nil, !isWriting, outbound.readableBytes > 0 else { return nil }
        isWriting = true
        defer { outbound = ByteBuffer() }
        return outbound
    }

    /// Whether job `jobID` has its answer (a polling sender checks after each read).
    func isAnswered(_ jobID: UInt64) -> Bool {
        if case .answered = pending[jobID]?.waiter { return true }
        return false
    }

    /// A polling sender stops reading: its answer if it came (taken here, it needs no
    /// suspension), and whether that drained a closing connection.
    mutating func pollEnded(_ jobID: UInt64, answered: Bool) -> (answer: JobAnswer?, drained: Bool) {
        reader = nil
        pollMisses = answered ? 0 : pollMisses + 1
        guard case .answered(let answer) = pending[jobID]?.waiter else { return (nil, false) }
        pending.removeValue(forKey: jobID)
        return (answer, isDrained)
    }

    /// An answer arrived: the waiter to resume with it (nil when the sender has not suspended
    /// yet: it finds the answer itself), and whether that drained a closing connection.
    /// Answers for jobs no longer waited for (timed out, cancelled) are dropped.
    mutating func answer(_ jobID: UInt64, _ answer: JobAnswer) -> (waiter: Waiter?, drained: Bool) {
        guard let entry = pending[jobID] else { return (nil, false) }
        switch entry.waiter {
        case .answered:
            return (nil, false)
        case .sending:
            pending[jobID]?.waiter = .answered(answer)
            return (nil, false)
        case .waiting(let waiter):
            pending.removeValue(forKey: jobID)
            return (waiter, isDrained)
        }
    }

    /// What a batch of frames read together asks of the connection (``received(_:)``).
    struct Received {
        /// Senders to resume, in the order their answers came.
        var waiters: [(Waiter, JobAnswer)] = []
        /// The batch held the worker's `closing`.
        var closing = false
        /// An answer or the `closing` drained the connection: time to close it.
        var drained = false
        /// The first step of settling, decided in the same turn of the lock.
        var settle: SettleStep = .nothing
    }

    /// The frames of one read, in order, under one turn of the lock where each answer took two
    /// (its own and its settling): with 256 jobs in flight a read holds dozens of answers, and
    /// the I/O thread contends for this lock with every sender (decision 0026).
    mutating func received(_ frames: [JobFrame]) -> Received {
        var done = Received()
        func deliver(_ jobID: UInt64, _ reply: JobAnswer) {
            let (waiter, drained) = answer(jobID, reply)
            if let waiter { done.waiters.append((waiter, reply)) }
            done.drained = done.drained || drained
        }
        for frame in frames {
            switch frame {
            case .result(let result):
                deliver(result.jobID, .result(result))
            case .error(let error):
                deliver(error.jobID, .error(error))
            case .closing:
                done.closing = true
                done.drained = workerClosing() || done.drained
            case .started(let jobIDs):
                started(jobIDs)
            case .request, .cancel, .lane:
                // A sender's frames; a worker does not send them.
                break
            }
        }
        if !done.waiters.isEmpty { done.settle = settleStep() }
        return done
    }

    /// The worker named jobs it started.
    mutating func started(_ jobIDs: [UInt64]) {
        for jobID in jobIDs { pending[jobID]?.started = true }
    }

    /// The worker said `closing`: no new job goes here, the ones sent are answered `stopping`
    /// and sent elsewhere. Returns whether none is left (then the connection closes).
    mutating func workerClosing() -> Bool {
        isClosing = true
        return isDrained
    }

    /// The worker said it is closing and no job waits here any more: time to close.
    var isDrained: Bool { isClosing && closed == nil && pending.isEmpty }

    // MARK: - Deadlines and the end

    /// Times out the jobs past `now`: their waiters to resume with `.timedOut`, the cancel
    /// frames to write (if the caller became the writer), and the next deadline of those left.
    mutating func expire(now: UInt64, cancelFrame: (UInt64) -> ByteBuffer) -> (
        expired: [Waiter], write: ByteBuffer?, next: UInt64?
    ) {
        var next: UInt64?
        var expired: [Waiter] = []
        var cancels = ByteBuffer()
        for (jobID, entry) in pending {
            guard entry.deadline <= now else {
                next = min(next ?? entry.deadline, entry.deadline)
                continue
            }
            switch entry.waiter {
            case .answered: continue
            case .sending: pending[jobID]?.waiter = .answered(.timedOut)
            case .waiting(let waiter):
                pending.removeValue(forKey: jobID)
                expired.append(waiter)
            }
            var frame = cancelFrame(jobID)
            cancels.writeBuffer(&frame)
        }
        let write = closed == nil && cancels.readableBytes > 0 ? enqueue(cancels) : nil
        return (expired, write, next)
    }

    /// Whether ending now needs the worker's running-jobs table: the worker ended the
    /// connection (not the sender, not after `closing`) with jobs in flight it never said it started.
    func needsStartedTable(endedByWorker: Bool) -> Bool {
        endedByWorker && closed == nil && !isClosing && pending.values.contains { !$0.started }
    }

    /// The connection ended: every job in flight on it ends at once. One the worker said had
    /// started fails as `lost` (it may have had effects); one it never said so about did not
    /// run (the worker writes `started` before a handler runs; `startedJobs` is its table
    /// when it could be read) and is answered `notStarted`, for its sender to send elsewhere.
    /// After the worker said `closing` no job is left that it took here, so each one still
    /// waiting crossed the goodbye and is answered `stopping`. Returns the waiters to resume.
    mutating func end(_ why: String, startedJobs: Set<UInt64>?) -> [(Waiter, JobAnswer)] {
        let ending = closed == nil
        if ending { closed = why }
        var waiting: [(Waiter, JobAnswer)] = []
        for (jobID, entry) in pending {
            if case .answered = entry.waiter { continue }
            let answer: JobAnswer
            if isClosing {
                answer = .error(stopping(jobID, "worker \(worker) is stopping and did not take the job"))
            } else if !ending || entry.started || startedJobs?.contains(jobID) != false {
                // Started, or nobody can say it did not: it may have had effects.
                answer = .lost(why)
            } else {
                answer = .notStarted(why)
            }
            switch entry.waiter {
            case .answered: continue
            case .sending: pending[jobID]?.waiter = .answered(answer)
            case .waiting(let waiter):
                pending.removeValue(forKey: jobID)
                waiting.append((waiter, answer))
            }
        }
        return waiting
    }

    /// Whether the caller must close the descriptor now: the connection ended and nobody
    /// holds a role. Marks it closed, so only one caller does.
    mutating func takeDescriptorToClose() -> Bool {
        guard closed != nil, !descriptorClosed, reader == nil, !isWriting, !isApplyingInterest else { return false }
        descriptorClosed = true
        return true
    }

    // MARK: - Epoll interest

    /// The interest this state needs: the worker's hang-up always; answers while a job waits
    /// that no polling sender reads for; room to write while bytes wait for the I/O thread. So a
    /// run of polled jobs costs no `epoll_ctl` at all, and an answer a sender polls for does not
    /// wake the I/O thread too, while a worker that says `closing` (and shuts its side) or dies
    /// is noticed at once even on an idle connection.
    var wantedInterest: Epoll.Events {
        var wanted = Self.hangUpInterest
        if reader != .poller && !pending.isEmpty { wanted.insert(.readable) }
        if outbound.readableBytes > 0 && !isWriting { wanted.insert(.writable) }
        return wanted
    }

    /// The interest for the caller to apply, making it the applier; nil when epoll already has
    /// it, someone else applies, or the descriptor is closed.
    mutating func beginApplyingInterest() -> Epoll.Events? {
        guard !isApplyingInterest, !descriptorClosed, wantedInterest != appliedInterest else { return nil }
        isApplyingInterest = true
        return wantedInterest
    }

    /// The applier set `interest`: returns the next one to apply if the state changed
    /// meanwhile, or nil, and then it is no longer the applier.
    mutating func appliedInterest(_ interest: Epoll.Events) -> Epoll.Events? {
        appliedInterest = interest
        if wantedInterest != appliedInterest && closed == nil { return wantedInterest }
        isApplyingInterest = false
        return nil
    }

    /// What a connection does after a transition, decided under one turn of the lock.
    enum SettleStep: Equatable {
        case nothing
        /// Give epoll this interest, then report it with ``applied(_:)``.
        case apply(Epoll.Events)
        /// Close the descriptor: the connection ended and nobody uses it.
        case close
    }

    /// The first step of settling: the interest to apply, else whether to close. One turn of
    /// the lock where it took two: a busy sender settles several times per job (decision 0024).
    mutating func settleStep() -> SettleStep {
        if let interest = beginApplyingInterest() { return .apply(interest) }
        return takeDescriptorToClose() ? .close : .nothing
    }

    /// The applier set `interest`: the next interest if the state changed meanwhile, else whether to close.
    mutating func applied(_ interest: Epoll.Events) -> SettleStep {
        if let next = appliedInterest(interest) { return .apply(next) }
        return takeDescriptorToClose() ? .close : .nothing
    }

    private func stopping(_ jobID: UInt64, _ message: String) -> JobErrorFrame {
        JobErrorFrame(
            jobID: jobID, worker: UInt32(worker.rawValue), code: .stopping, queueWaitNanoseconds: 0, runNanoseconds: 0,
            message: message)
    }
}

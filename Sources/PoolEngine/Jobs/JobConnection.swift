import NIOCore
import Synchronization

/// How one job ended on a connection.
enum JobAnswer: Sendable {
    case result(JobResultFrame)
    case error(JobErrorFrame)
    /// The connection ended with the job started: it may have had effects (`workerLost`).
    case lost(String)
    /// The connection ended before the worker said the job started: it never ran, and may go
    /// to another worker.
    case notStarted(String)
    case timedOut
    case cancelled
}

/// One multiplexed connection from a sender to a job worker: jobs in flight by id, each
/// answered exactly once.
///
/// A plain Unix socket rather than a NIO channel, for the round trip
/// (docs/decisions/0007-job-client-sockets.md): a sender writes its request from its own
/// thread, with no hop to an event loop. When its group opts in (``JobWaitPolicy/adaptive``,
/// decision 0010), a sender whose job is the only one in flight waits for the answer on its
/// own thread for a short while (``pollBudget``, in `ppoll` or in `recv`: ``JobWaitMode``)
/// instead of suspending at once: a quick job then costs two wake-ups, as a bare socket
/// ping-pong does. By default it suspends, and holds no Swift concurrency thread.
/// Everything else (answers for suspended senders, writes a full socket could not take,
/// deadlines) is done by the client's I/O thread, ``JobClientIO``. The socket is in blocking
/// mode only for that polling `recv`; every other call passes `MSG_DONTWAIT`.
final class JobConnection: Sendable {
    let worker: WorkerID
    let fd: Int32
    let token: UInt64
    private let io: JobClientIO

    /// How long a lone sender waits for its answer on its own thread before it suspends. It
    /// holds a Swift concurrency thread meanwhile, so it is short, and a connection whose
    /// answers keep missing it stops trying (``State/pollMisses``). Waiting in `recv`
    /// (``JobWaitMode/receive``) the kernel rounds it up to whole timer ticks (4 ms each at
    /// HZ 250), which is why that mode is used only after an answered poll.
    static let pollBudget: Int64 = 200_000
    /// Always watched: the worker shutting its side (after `closing`, or dying). Answers
    /// (EPOLLIN) are watched only while a job waits that no polling sender reads for.
    static let hangUpInterest = Epoll.Events.peerHangUp

    private enum Waiter {
        /// Written; the sender has not suspended yet (it is writing or polling).
        case sending
        case waiting(CheckedContinuation<JobAnswer, Never>)
        /// Answered before the sender suspended: it takes the answer without suspending.
        case answered(JobAnswer)
    }

    private struct Pending {
        var waiter: Waiter
        var deadline: UInt64
        /// The worker said the job started (a `started` frame named it).
        var started = false
    }

    private struct State: ~Copyable {
        var pending: [UInt64: Pending] = [:]
        /// Bytes the socket had no room for, in order; the I/O thread writes them as it drains.
        var outbound = ByteBuffer()
        /// One thread reads at a time: the I/O thread or a polling sender.
        var isReading = false
        /// A sender polls: the I/O thread is not woken for this socket's answers meanwhile.
        var isPolling = false
        /// A sender is in `send` outside the lock: others queue their frames for it.
        var isWriting = false
        /// The I/O thread is handing out answers it read: the senders they resume queue their
        /// next frames, and it writes them all when it is done (it is running, so that is soon).
        var isDispatching = false
        /// The epoll interest set now.
        var interest: Epoll.Events = JobConnection.hangUpInterest
        var closed: String?
        /// The worker said it is closing: no new job goes here.
        var isClosing = false
        var descriptorClosed = false
        /// Consecutive polls that ended without the answer; at 3 the sender suspends at once,
        /// trying a poll again every 64th job in case the worker got faster.
        var pollMisses = 0
        var sent: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Bytes read but not yet a whole frame: only the thread holding `isReading` touches it.
    private let inbound = Mutex(ByteBuffer())

    /// The jobs of ours the worker had started when the connection ended without `closing`
    /// (from its running-jobs table); nil when that cannot be told.
    private let startedJobs: @Sendable () -> Set<UInt64>?

    private init(worker: WorkerID, fd: Int32, token: UInt64, io: JobClientIO, startedJobs: @escaping @Sendable () -> Set<UInt64>?) {
        self.worker = worker
        self.fd = fd
        self.token = token
        self.io = io
        self.startedJobs = startedJobs
    }

    /// Connects to a job worker's socket without blocking: a worker whose backlog is full
    /// (stuck or overwhelmed) is an error here, not a wait.
    static func connect(
        path: String, worker: WorkerID, io: JobClientIO, startedJobs: @escaping @Sendable () -> Set<UInt64>? = { nil }
    ) throws -> JobConnection {
        let fd = try Posix.connectUnixSocket(path, nonBlocking: true)
        let connection = JobConnection(worker: worker, fd: fd, token: io.makeToken(), io: io, startedJobs: startedJobs)
        do {
            // Connected without waiting; from now on every call says whether it may wait: only
            // a polling sender's `recv` does, for at most the poll budget.
            try Posix.setBlocking(fd)
            try Posix.setReceiveTimeout(fd, microseconds: Int(Self.pollBudget / 1000))
            try io.add(connection)
        } catch {
            Posix.close(fd)
            throw error
        }
        return connection
    }

    /// Whether new jobs may go here: not closed, and the worker has not said `closing`. Read by
    /// every sender before every job, so it is an atomic rather than a turn of the lock.
    var isActive: Bool { active.load(ordering: .relaxed) }
    private let active = Atomic<Bool>(true)

    /// Closes the connection; jobs still in flight on it fail as `workerLost`.
    func close() { lost("the sender closed its connection to worker \(worker)", byWorker: false) }

    // MARK: - Sending

    /// Sends a request and waits for its answer; the deadline and the caller's cancellation both end the wait.
    func send(_ request: JobRequestFrame, deadline: PoolInstant) async -> JobAnswer {
        let jobID = request.jobID
        var frame = ByteBufferAllocator().buffer(capacity: JobFrame.headerSize + JobRequestFrame.fixedSize + request.payload.count)
        JobFrame.request(request).write(to: &frame)
        let (refusal, polls, toSend, mode) = state.withLock { state -> (JobAnswer?, Bool, ByteBuffer?, JobWaitMode) in
            if let closed = state.closed { return (.notStarted(closed), false, nil, .poll) }
            if state.isClosing {
                // Like the worker's own `stopping` answer, so the job goes to another worker.
                let stopping = JobErrorFrame(
                    jobID: jobID, worker: UInt32(worker.rawValue), code: .stopping, queueWaitNanoseconds: 0, runNanoseconds: 0,
                    message: "worker \(worker) is stopping and takes no new jobs")
                return (.error(stopping), false, nil, .poll)
            }
            state.pending[jobID] = Pending(waiter: .sending, deadline: deadline.nanoseconds)
            state.sent += 1
            // Decided before the write: on a busy machine the answer can be back before the
            // next instruction, and it must find the I/O thread's interest already off.
            let polls =
                io.policy != .suspend && !state.isReading && !state.isWriting && state.pending.count == 1
                && state.outbound.readableBytes == 0 && (state.pollMisses < 3 || state.sent % 64 == 0)
            if polls {
                state.isReading = true
                state.isPolling = true
            }
            updateInterest(&state)
            // A waiting `recv` gives up only after whole timer ticks (milliseconds for 200 µs), so it
            // is used only while answers come in time; after a miss, `ppoll` keeps the budget.
            let mode = polls && state.pollMisses == 0 ? io.nextWaitMode() : JobWaitMode.poll
            return (nil, polls, enqueue(frame, &state), mode)
        }
        if let refusal { return refusal }
        io.noteDeadline(deadline.nanoseconds)
        if let toSend { sendQueued(toSend) }
        if polls, let (answer, drained) = poll(for: jobID, mode) {
            if drained { lost("worker \(worker) is closing") }
            return answer
        }
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<JobAnswer, Never>) in
                let (answer, drained) = state.withLock { state -> (JobAnswer?, Bool) in
                    guard let entry = state.pending[jobID] else { return (.cancelled, false) }
                    if case .answered(let answer) = entry.waiter {
                        state.pending.removeValue(forKey: jobID)
                        updateInterest(&state)
                        return (answer, Self.isDrained(state))
                    }
                    state.pending[jobID]?.waiter = .waiting(continuation)
                    return (nil, false)
                }
                if drained { lost("worker \(worker) is closing") }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<JobAnswer, Never>? in
                guard let entry = state.pending[jobID] else { return nil }
                switch entry.waiter {
                case .answered: return nil
                case .sending:
                    state.pending[jobID]?.waiter = .answered(.cancelled)
                    writeCancel(jobID, &state)
                    return nil
                case .waiting(let continuation):
                    state.pending.removeValue(forKey: jobID)
                    writeCancel(jobID, &state)
                    updateInterest(&state)
                    return continuation
                }
            }
            continuation?.resume(returning: .cancelled)
        }
        // An answer handed to a suspended sender was taken off by its reader, which closes a
        // drained closing connection itself (``answer(_:_:)``).
        return answer
    }

    /// The worker said it is closing and no job waits here any more: time to close.
    private static func isDrained(_ state: borrowing State) -> Bool {
        state.isClosing && state.closed == nil && state.pending.isEmpty
    }

    /// Queues a frame behind bytes still waiting, or makes the caller the writer: then it
    /// returns the frame, for ``sendQueued(_:)`` outside the lock. Many senders at once thus
    /// share one `send` call while one of them is in it, instead of queueing on the lock.
    private func enqueue(_ frame: ByteBuffer, _ state: inout State) -> ByteBuffer? {
        if state.isWriting || state.isDispatching || state.outbound.readableBytes > 0 || state.descriptorClosed {
            var frame = frame
            state.outbound.writeBuffer(&frame)
            return nil
        }
        state.isWriting = true
        return frame
    }

    /// The writer's loop: sends `first`, then whatever other senders queued meanwhile; bytes a
    /// full socket does not take go to the I/O thread. The descriptor stays open while it runs.
    private func sendQueued(_ first: ByteBuffer) {
        var bytes = first
        var failure: String?
        while true {
            failure = Self.sendAvailable(fd, &bytes, worker: worker)
            let more = state.withLock { state -> ByteBuffer? in
                if failure == nil, bytes.readableBytes == 0, state.outbound.readableBytes > 0, state.closed == nil {
                    defer { state.outbound.clear() }
                    return state.outbound
                }
                if bytes.readableBytes > 0 && failure == nil {
                    // Ahead of anything queued meanwhile, for the I/O thread to write when there is room.
                    bytes.writeBuffer(&state.outbound)
                    state.outbound = bytes
                }
                state.isWriting = false
                updateInterest(&state)
                if state.closed != nil { closeDescriptor(&state) }
                return nil
            }
            guard let more else { break }
            bytes = more
        }
        if let failure { lost(failure) }
    }

    /// Sends what the socket takes of `bytes` without blocking; returns why the connection broke if it did.
    private static func sendAvailable(_ fd: Int32, _ bytes: inout ByteBuffer, worker: WorkerID) -> String? {
        while bytes.readableBytes > 0 {
            do {
                guard let n = try bytes.withUnsafeReadableBytes({ try Posix.sendNonBlocking(fd, $0) }) else { return nil }
                bytes.moveReaderIndex(forwardBy: n)
            } catch {
                return "sending to worker \(worker) failed: \(error)"
            }
        }
        return nil
    }

    /// Queues a cancel frame for the writer or the I/O thread, or sends it now under the lock
    /// (it is small, and the socket does not block).
    private func writeCancel(_ jobID: UInt64, _ state: inout State) {
        guard state.closed == nil else { return }
        var frame = ByteBufferAllocator().buffer(capacity: JobFrame.headerSize + 8)
        JobFrame.cancel(jobID: jobID).write(to: &frame)
        guard var frame = enqueue(frame, &state) else { return }
        // A broken connection fails its jobs through the reader, which sees it too.
        _ = Self.sendAvailable(fd, &frame, worker: worker)
        if frame.readableBytes > 0 { state.outbound = frame }
        state.isWriting = false
        updateInterest(&state)
    }

    /// The epoll interest this state needs: the worker's hang-up always; answers while a job
    /// waits that no polling sender reads for; room to write while bytes wait. So a run of
    /// polled jobs costs no `epoll_ctl` at all, and an answer a sender polls for does not wake
    /// the I/O thread too, while a worker that says `closing` (and shuts its side) or dies is
    /// noticed at once even on an idle connection.
    private func updateInterest(_ state: inout State) {
        guard !state.descriptorClosed else { return }
        let answers = !state.isPolling && !state.pending.isEmpty
        var wanted = Self.hangUpInterest
        if answers { wanted.insert(.readable) }
        if state.outbound.readableBytes > 0 && !state.isWriting { wanted.insert(.writable) }
        guard wanted != state.interest else { return }
        state.interest = wanted
        // Fails only for a descriptor epoll does not hold, which the lock rules out.
        try? io.epoll.modify(fd, wanted, token: token)
    }

    /// The lone sender's wait: reads the socket itself until its answer is in, the budget is
    /// spent or the connection ends; other jobs' answers read meanwhile are handed out as usual.
    private func poll(for jobID: UInt64, _ mode: JobWaitMode) -> (JobAnswer, drained: Bool)? {
        let until = Int64(Posix.monotonicNanoseconds()) + Self.pollBudget
        var answered = false
        // The request has only just left: wait first, then read.
        waiting: while true {
            let left = until - Int64(Posix.monotonicNanoseconds())
            guard left > 0 else { break }
            switch mode {
            case .poll:
                // A failed ppoll (it cannot fail on a descriptor held open) ends the poll like a timeout.
                guard (try? Posix.pollReadable(fd, timeoutNanoseconds: left)) == true, readAvailable() else { break waiting }
            case .receive:
                guard readAvailable(waiting: true) else { break waiting }
            }
            answered = state.withLock { state in
                if case .answered = state.pending[jobID]?.waiter { return true }
                return false
            }
            if answered { break }
        }
        io.waitEnded(mode, answered: answered)
        return state.withLock { state -> (JobAnswer, drained: Bool)? in
            state.isReading = false
            state.isPolling = false
            state.pollMisses = answered ? 0 : state.pollMisses + 1
            // Taken here, the answer needs no continuation, and the interest stays off.
            var answer: JobAnswer?
            if case .answered(let taken) = state.pending[jobID]?.waiter {
                state.pending.removeValue(forKey: jobID)
                answer = taken
            }
            if state.closed != nil {
                closeDescriptor(&state)
            } else {
                // Level-triggered: answers that came in after the last read wake the I/O thread now.
                updateInterest(&state)
            }
            return answer.map { ($0, Self.isDrained(state)) }
        }
    }

    // MARK: - Receiving (I/O thread, or a polling sender)

    /// The I/O thread saw `events` on the socket.
    func handle(_ events: Epoll.Events) {
        if events.contains(.writable) { flush() }
        guard !events.isDisjoint(with: [.readable, .peerHangUp, .hangUp, .error]) else { return }
        let claimed = state.withLock { state -> Bool in
            // A polling sender reads it; it hands back to this thread when it is done.
            guard !state.isReading, !state.descriptorClosed else { return false }
            state.isReading = true
            state.isDispatching = true
            return true
        }
        guard claimed else { return }
        _ = readAvailable()
        let failure = state.withLock { state -> String? in
            state.isReading = false
            state.isDispatching = false
            if state.closed != nil {
                closeDescriptor(&state)
                return nil
            }
            // What the senders it resumed sent meanwhile leaves in one write.
            guard state.outbound.readableBytes > 0, !state.isWriting else { return nil }
            let failure = Self.sendAvailable(fd, &state.outbound, worker: worker)
            if state.outbound.readableBytes == 0 { state.outbound.clear() }
            updateInterest(&state)
            return failure
        }
        if let failure { lost(failure) }
    }

    /// Writes bytes that waited for room (unless a sender is writing: it takes them along).
    private func flush() {
        let failure = state.withLock { state -> String? in
            guard !state.descriptorClosed, !state.isWriting else { return nil }
            let failure = Self.sendAvailable(fd, &state.outbound, worker: worker)
            if state.outbound.readableBytes == 0 { state.outbound.clear() }
            updateInterest(&state)
            return failure
        }
        if let failure { lost(failure) }
    }

    /// Reads what the socket holds without blocking and hands out the answers. Only the
    /// thread holding `isReading` calls it. False once the connection has ended.
    private func readAvailable(waiting: Bool = false) -> Bool {
        var frames: [JobFrame] = []
        let failure = inbound.withLock { buffer -> String? in
            // Until a read leaves room in the buffer: then the socket was empty, and no second
            // call is needed to learn it (the interest is level-triggered, so more bytes show).
            var filled = true
            // Only the first read may wait.
            var blocks = waiting
            while filled {
                defer { blocks = false }
                var failure: (any Error)?
                var wouldBlock = false
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { raw -> Int in
                    do {
                        guard let n = try Posix.receive(fd, into: raw, nonBlocking: !blocks) else {
                            wouldBlock = true
                            return 0
                        }
                        filled = n == raw.count
                        return n
                    } catch {
                        failure = error
                        return 0
                    }
                }
                if wouldBlock { break }
                if let failure { return "the connection to worker \(worker) failed: \(failure)" }
                if n == 0 { return "worker \(worker) closed the connection with the job in flight (it stopped or died)" }
                do {
                    while let frame = try JobFrame.read(from: &buffer) { frames.append(frame) }
                } catch {
                    return "worker \(worker) sent a malformed frame (\(error)); the connection was closed"
                }
            }
            if buffer.readableBytes == 0 { buffer.clear() } else { buffer.discardReadBytes() }
            return nil
        }
        // Answers that came before the end are delivered before it fails the rest.
        for frame in frames { receive(frame) }
        if let failure {
            lost(failure)
            return false
        }
        return state.withLock { $0.closed == nil }
    }

    /// An answer arrived; answers for jobs no longer waited for (timed out, cancelled) are dropped.
    private func receive(_ frame: JobFrame) {
        let drained: Bool
        switch frame {
        case .result(let result): drained = answer(result.jobID, .result(result))
        case .error(let error): drained = answer(error.jobID, .error(error))
        case .closing:
            // No new job goes here (``isActive`` is false from now on); the ones already sent are
            // answered `stopping` and retried elsewhere. Closed once none is left.
            active.store(false, ordering: .relaxed)
            drained = state.withLock { state in
                state.isClosing = true
                return Self.isDrained(state)
            }
        case .started(let jobIDs):
            state.withLock { state in
                for jobID in jobIDs { state.pending[jobID]?.started = true }
            }
            drained = false
        case .request, .cancel: drained = false
        }
        if drained { lost("worker \(worker) is closing") }
    }

    /// Hands an answer to its sender; returns whether that drained a closing connection.
    private func answer(_ jobID: UInt64, _ answer: JobAnswer) -> Bool {
        let (continuation, drained) = state.withLock { state -> (CheckedContinuation<JobAnswer, Never>?, Bool) in
            guard let entry = state.pending[jobID] else { return (nil, false) }
            switch entry.waiter {
            case .answered: return (nil, false)
            case .sending:
                state.pending[jobID]?.waiter = .answered(answer)
                return (nil, false)
            case .waiting(let continuation):
                state.pending.removeValue(forKey: jobID)
                updateInterest(&state)
                return (continuation, Self.isDrained(state))
            }
        }
        continuation?.resume(returning: answer)
        return drained
    }

    /// Times out the jobs past their deadline (telling the worker to cancel them); returns the
    /// next deadline of those left.
    func expire(now: UInt64) -> UInt64? {
        var next: UInt64?
        let expired = state.withLock { state -> [CheckedContinuation<JobAnswer, Never>] in
            var expired: [CheckedContinuation<JobAnswer, Never>] = []
            for (jobID, entry) in state.pending {
                guard entry.deadline <= now else {
                    next = min(next ?? entry.deadline, entry.deadline)
                    continue
                }
                switch entry.waiter {
                case .answered: continue
                case .sending: state.pending[jobID]?.waiter = .answered(.timedOut)
                case .waiting(let continuation):
                    state.pending.removeValue(forKey: jobID)
                    expired.append(continuation)
                }
                writeCancel(jobID, &state)
            }
            updateInterest(&state)
            return expired
        }
        for continuation in expired { continuation.resume(returning: .timedOut) }
        return next
    }

    /// The connection ended: every job in flight on it ends at once. One the worker said had
    /// started fails as `lost` (it may have had effects); one it never said so about did not
    /// run (the worker writes `started` before a handler runs) and is answered `notStarted`,
    /// for its sender to send elsewhere. After the worker said `closing` no job is left that
    /// it took here, so each one still waiting crossed the goodbye and is answered `stopping`.
    private func lost(_ why: String, byWorker: Bool = true) {
        // Asked once, outside the lock (it may wait a moment for the process to be gone), and
        // only when the worker ended the connection with jobs of ours in flight.
        let needsTable = byWorker && state.withLock { state in
            state.closed == nil && !state.isClosing && state.pending.values.contains { !$0.started }
        }
        let started = needsTable ? startedJobs() : nil
        let waiting = state.withLock { state -> [(CheckedContinuation<JobAnswer, Never>, JobAnswer)] in
            let ending = state.closed == nil
            if ending { state.closed = why }
            active.store(false, ordering: .relaxed)
            var waiting: [(CheckedContinuation<JobAnswer, Never>, JobAnswer)] = []
            for (jobID, entry) in state.pending {
                let answer: JobAnswer
                if case .answered = entry.waiter { continue }
                if state.isClosing {
                    answer = .error(
                        JobErrorFrame(
                            jobID: jobID, worker: UInt32(worker.rawValue), code: .stopping, queueWaitNanoseconds: 0, runNanoseconds: 0,
                            message: "worker \(worker) is stopping and did not take the job"))
                } else if !ending || entry.started || started?.contains(jobID) != false {
                    // Started, or nobody can say it did not: it may have had effects.
                    answer = .lost(why)
                } else {
                    answer = .notStarted(why)
                }
                switch entry.waiter {
                case .answered: continue
                case .sending: state.pending[jobID]?.waiter = .answered(answer)
                case .waiting(let continuation):
                    state.pending.removeValue(forKey: jobID)
                    waiting.append((continuation, answer))
                }
            }
            closeDescriptor(&state)
            return waiting
        }
        for (continuation, answer) in waiting { continuation.resume(returning: answer) }
    }

    /// Closes the socket once nobody reads it (the reader closes it when it lets go).
    private func closeDescriptor(_ state: inout State) {
        guard !state.descriptorClosed, !state.isReading, !state.isWriting else { return }
        state.descriptorClosed = true
        io.forget(token)
        io.epoll.remove(fd)
        Posix.close(fd)
    }
}

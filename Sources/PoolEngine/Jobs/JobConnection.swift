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
/// thread, with no hop to an event loop; with many jobs in flight the writer first lets the
/// senders resumed with it queue behind it, and sends theirs with its own (decision 0021).
/// When its group opts in (``JobWaitPolicy/adaptive``, decision 0010), a sender whose job is
/// the only one in flight waits for the answer on its own thread for a short while
/// (``pollBudget``, in `ppoll`, in `recv` or spinning: ``JobWaitMode``) instead of suspending at once:
/// a quick job then costs two wake-ups, as a bare socket ping-pong does. By default it
/// suspends, and holds no Swift concurrency thread. Everything else (answers for suspended
/// senders, writes a full socket could not take, deadlines) is done by the client's I/O
/// thread, ``JobClientIO``. The socket is in blocking mode only for that polling `recv`; every
/// other call passes `MSG_DONTWAIT`.
///
/// The decisions are ``JobConnectionState``'s, a pure state machine under one lock; this class
/// performs what it returns (writes, reads, `epoll_ctl`, resuming senders, closing) outside
/// the lock.
final class JobConnection: Sendable {
    let worker: WorkerID
    let fd: Int32
    let token: UInt64
    private let io: JobClientIO
    /// Shared memory with the worker for a spinning lone sender's job and answer (decision
    /// 0031); nil unless the policy may spin.
    private let lane: JobLane?
    /// Jobs whose request went through the lane (for tests and the bench: an uncontended add).
    let lanePosts = Atomic<Int>(0)

    /// How long a lone sender waits for its answer on its own thread before it suspends (only
    /// under an opt-in ``JobWaitPolicy``). It holds its thread meanwhile, so it is short, and a
    /// connection whose answers keep missing it stops trying. Waiting in `recv`
    /// (``JobWaitMode/receive``) the kernel rounds it up to whole timer ticks (4 ms each at
    /// HZ 250), which is why that mode is used only after an answered poll.
    static let pollBudget: Int64 = 200_000
    /// Always watched: the worker shutting its side (after `closing`, or dying). Answers
    /// (EPOLLIN) are watched only while a job waits that no polling sender reads for.
    static var hangUpInterest: Epoll.Events { JobConnectionState<Never>.hangUpInterest }

    /// Unchecked continuations: the state machine hands each waiter out exactly once (an answer,
    /// a cancel, a deadline or the end removes it from `pending`, and its unit tests hold it
    /// to that), and a checked one costs every job an allocation and a release (decision 0026).
    private typealias State = JobConnectionState<UnsafeContinuation<JobAnswer, Never>>
    private let state: Mutex<State>
    /// Bytes read but not yet a whole frame: only the thread holding the reader role touches it.
    private let inbound = Mutex(ByteBuffer())

    /// The jobs of ours the worker had started when the connection ended without `closing`
    /// (from its running-jobs table); nil when that cannot be told.
    private let startedJobs: @Sendable () -> Set<UInt64>?

    private init(
        worker: WorkerID, fd: Int32, token: UInt64, io: JobClientIO, lane: JobLane?, startedJobs: @escaping @Sendable () -> Set<UInt64>?
    ) {
        self.worker = worker
        self.fd = fd
        self.token = token
        self.io = io
        self.lane = lane
        self.startedJobs = startedJobs
        self.state = Mutex(JobConnectionState(worker: worker))
    }

    /// Connects to a job worker's socket without blocking: a worker whose backlog is full
    /// (stuck or overwhelmed) is an error here, not a wait.
    static func connect(
        path: String, worker: WorkerID, io: JobClientIO, startedJobs: @escaping @Sendable () -> Set<UInt64>? = { nil }
    ) throws -> JobConnection {
        let fd = try Posix.connectUnixSocket(path, nonBlocking: true)
        let lane: JobLane?
        do {
            lane = io.policy.mayUseLane ? try offerLane(on: fd, worker: worker) : nil
        } catch {
            Posix.close(fd)
            throw error
        }
        let connection = JobConnection(worker: worker, fd: fd, token: io.makeToken(), io: io, lane: lane, startedJobs: startedJobs)
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

    /// Creates the connection's lane and passes it to the worker with the first frame. A lane
    /// that cannot be made (out of memory or descriptors) is no error: the socket serves alone.
    /// One that was made but could not be passed whole is, since the stream would be broken.
    private static func offerLane(on fd: Int32, worker: WorkerID) throws -> JobLane? {
        guard let (lane, shared) = try? JobLane.create() else { return nil }
        defer { Posix.close(shared) }
        var frame = ByteBufferAllocator().buffer(capacity: JobFrame.headerSize + 4)
        JobFrame.lane(bytes: UInt32(JobLane.size)).write(to: &frame)
        let bytes = Array(frame.readableBytesView)
        // A new connection's socket is empty: its first dozen bytes go at once.
        let sent = try Posix.send(fd, bytes, passing: [shared])
        guard sent == bytes.count else {
            throw JobFrameError(message: "the 'lane' frame to worker \(worker) went out \(sent) of \(bytes.count) bytes")
        }
        return lane
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
        let mayPoll = io.policy != .suspend
        // The interest first, decided in the same turn of the lock: a polled job's answer must
        // find the I/O thread's already off.
        let (start, step) = state.withLock { state -> (State.SendStart, State.SettleStep) in
            let start = state.send(jobID, frame: frame, deadline: deadline.nanoseconds, mayPoll: mayPoll)
            guard case .accepted = start else { return (start, .nothing) }
            return (start, state.settleStep())
        }
        guard case .accepted(let toWrite, let polls, let adaptive, let gather) = start else {
            if case .refused(let answer) = start { return answer }
            return .cancelled
        }
        settle(from: step)
        io.noteDeadline(deadline.nanoseconds)
        let mode = polls ? (adaptive ? io.nextWaitMode() : .poll) : nil
        // A spinning lone sender waits for its answer in the lane, and posts its request there
        // if the worker polls it (the socket otherwise); the writer's role, which it holds with
        // nothing else queued, is then given back without a write.
        var laned = false
        if let lane, let mode {
            lane.setClientSpins(mode == .spin)
            if mode == .spin {
                lane.expectAnswer(jobID)
                laned = toWrite?.readableBytes == frame.readableBytes && lane.post(frame)
                if laned { lanePosts.add(1, ordering: .relaxed) }
            }
        }
        if var toWrite {
            if laned {
                toWrite.clear()
            } else if gather {
                // Others queue behind the writer meanwhile; their requests leave in this `send`.
                await Task.yield()
                if var queued = state.withLock({ $0.takeQueued() }) { toWrite.writeBuffer(&queued) }
            }
            write(toWrite)
        }
        if let mode, let (answer, drained) = poll(for: jobID, mode) {
            if drained { lost("worker \(worker) is closing") }
            return answer
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<JobAnswer, Never>) in
                let (answer, drained) = state.withLock { $0.suspend(jobID, continuation) }
                if drained { lost("worker \(worker) is closing") }
                if let answer {
                    settle()
                    continuation.resume(returning: answer)
                }
            }
        } onCancel: {
            let (waiter, toWrite) = state.withLock { $0.cancel(jobID, cancelFrame: Self.cancelFrame(jobID)) }
            waiter?.resume(returning: .cancelled)
            if let toWrite { write(toWrite) } else { settle() }
        }
    }

    private static func cancelFrame(_ jobID: UInt64) -> ByteBuffer {
        var frame = ByteBufferAllocator().buffer(capacity: JobFrame.headerSize + 8)
        JobFrame.cancel(jobID: jobID).write(to: &frame)
        return frame
    }

    /// The writer's loop: sends `first`, then whatever other senders queued meanwhile; bytes a
    /// full socket does not take wait for the I/O thread. The descriptor stays open while it runs.
    private func write(_ first: ByteBuffer) {
        var bytes = first
        var failure: String?
        var step = State.SettleStep.nothing
        while true {
            failure = Self.sendAvailable(fd, &bytes, worker: worker)
            let left = bytes
            let failed = failure != nil
            // The writer's last turn of the lock settles too.
            let more = state.withLock { state -> ByteBuffer? in
                let more = state.wrote(left: left, failed: failed)
                if more == nil && !failed { step = state.settleStep() }
                return more
            }
            guard let more else { break }
            bytes = more
        }
        if let failure { lost(failure) } else { settle(from: step) }
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

    /// After a transition: gives epoll the interest the state needs, and closes the descriptor
    /// once the connection ended and nobody uses it.
    private func settle() {
        settle(from: state.withLock { $0.settleStep() })
    }

    /// Settles from a first step decided under a turn of the lock the caller took anyway.
    private func settle(from first: State.SettleStep) {
        var step = first
        while case .apply(let interest) = step {
            // Fails only for a descriptor epoll does not hold, which the applier role rules out.
            try? io.epoll.modify(fd, interest, token: token)
            step = state.withLock { $0.applied(interest) }
        }
        guard step == .close else { return }
        io.forget(token)
        io.epoll.remove(fd)
        Posix.close(fd)
    }

    /// The lone sender's wait: reads the socket itself until its answer is in, the budget is
    /// spent or the connection ends; other jobs' answers read meanwhile are handed out as usual.
    private func poll(for jobID: UInt64, _ mode: JobWaitMode) -> (JobAnswer, drained: Bool)? {
        let until = Int64(Posix.monotonicNanoseconds()) + Self.pollBudget
        let lane = mode == .spin ? self.lane : nil
        var answered = false
        var turns = 0
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
            case .spin:
                if let lane {
                    if let isOpen = readLane(lane) {
                        guard isOpen else { break waiting }
                    } else if turns % Self.socketLookEvery == Self.socketLookEvery - 1 {
                        // The socket too, now and then: an answer too large for the lane, the
                        // worker's `closing`, its end.
                        guard readAvailable() else { break waiting }
                    }
                    turns += 1
                } else {
                    guard readAvailable() else { break waiting }
                }
            }
            answered = state.withLock { $0.isAnswered(jobID) }
            if answered { break }
            // Spinning: a worker on this CPU (or anything else due on it) runs now.
            if mode == .spin { Posix.yieldProcessor() }
        }
        if let lane { answered = stopWaitingInLane(lane, for: jobID) || answered }
        io.waitEnded(mode, answered: answered)
        let (answer, drained) = state.withLock { $0.pollEnded(jobID, answered: answered) }
        // Level-triggered: answers that came in after the last read wake the I/O thread now.
        settle()
        return answer.map { ($0, drained) }
    }

    /// How many turns of a spinning sender's wait in the lane go by between two reads of the socket.
    private static let socketLookEvery = 8

    /// The spinning sender is done waiting in the lane for `jobID`: from now on its answer goes
    /// by the socket. One the worker is putting there meanwhile is waited for (a copy of a few
    /// kilobytes at most), unless the connection ends first. True when that answered the job.
    private func stopWaitingInLane(_ lane: JobLane, for jobID: UInt64) -> Bool {
        var stop = lane.stopWaiting(for: jobID)
        while stop == .writing {
            Posix.yieldProcessor()
            guard readAvailable() else { return false }
            stop = lane.stopWaiting(for: jobID)
        }
        guard stop == .ready else { return false }
        return readLane(lane) == true && state.withLock { $0.isAnswered(jobID) }
    }

    /// Hands out the answer the worker put in the lane, as one read from the socket would: nil
    /// when none is there, else whether the connection is still open (a malformed answer ends it).
    private func readLane(_ lane: JobLane) -> Bool? {
        let answer: JobFrame?
        do {
            answer = try lane.takeAnswer()
        } catch {
            lost("worker \(worker): \(error); the connection was closed")
            return false
        }
        guard let answer else { return nil }
        receive([answer])
        return state.withLock { $0.closed == nil }
    }

    // MARK: - Receiving (I/O thread, or a polling sender)

    /// The I/O thread saw `events` on the socket.
    func handle(_ events: Epoll.Events) {
        if events.contains(.writable), let bytes = state.withLock({ $0.takeOutbound() }) { write(bytes) }
        guard !events.isDisjoint(with: [.readable, .peerHangUp, .hangUp, .error]) else {
            settle()
            return
        }
        // A polling sender reads it; it hands back to this thread when it is done.
        guard state.withLock({ $0.claimRead() }) else { return }
        _ = readAvailable()
        // What the senders it resumed sent meanwhile leaves in one write; with nothing to
        // write, it settles in the same turn of the lock.
        let (bytes, step) = state.withLock { state -> (ByteBuffer?, State.SettleStep) in
            let bytes = state.releaseRead()
            return (bytes, bytes == nil ? state.settleStep() : .nothing)
        }
        if let bytes { write(bytes) } else { settle(from: step) }
    }

    /// Reads what the socket holds without blocking and hands out the answers. Only the
    /// thread holding the reader role calls it. False once the connection has ended.
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
        if !frames.isEmpty { receive(frames) }
        if let failure {
            lost(failure)
            return false
        }
        return state.withLock { $0.closed == nil }
    }

    /// Answers and notices arrived, in this order.
    private func receive(_ frames: [JobFrame]) {
        // No new job goes here once the worker said `closing` (``isActive`` is false from now
        // on); the ones already sent are answered `stopping` and retried elsewhere, and the
        // connection closes once none is left.
        if frames.contains(where: { if case .closing = $0 { true } else { false } }) {
            active.store(false, ordering: .relaxed)
        }
        let received = state.withLock { $0.received(frames) }
        // The interest first, as for one answer: a resumed sender's next job must find it set.
        settle(from: received.settle)
        for (waiter, answer) in received.waiters { waiter.resume(returning: answer) }
        if received.drained { lost("worker \(worker) is closing") }
    }

    /// Times out the jobs past their deadline (telling the worker to cancel them); returns the
    /// next deadline of those left.
    func expire(now: UInt64) -> UInt64? {
        let (expired, toWrite, next) = state.withLock { $0.expire(now: now, cancelFrame: Self.cancelFrame) }
        for waiter in expired { waiter.resume(returning: .timedOut) }
        if let toWrite { write(toWrite) } else { settle() }
        return next
    }

    /// The connection ended (see ``JobConnectionState/end(_:startedJobs:)``): every job in flight
    /// on it ends at once, and the descriptor closes once nobody uses it.
    private func lost(_ why: String, byWorker: Bool = true) {
        // Asked once, outside the lock (it may wait a moment for the process to be gone), and
        // only when the worker ended the connection with jobs of ours in flight.
        let started = state.withLock { $0.needsStartedTable(endedByWorker: byWorker) } ? startedJobs() : nil
        let waiting = state.withLock { $0.end(why, startedJobs: started) }
        active.store(false, ordering: .relaxed)
        for (waiter, answer) in waiting { waiter.resume(returning: answer) }
        settle()
    }
}

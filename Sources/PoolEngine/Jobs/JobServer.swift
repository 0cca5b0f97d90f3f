import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A job worker's listening socket, `<runtime dir>/worker-<id>.sock`: requests in, results out.
///
/// One thread of its own (`pool-jobs`) waits in `epoll_wait` on the socket, the senders'
/// connections and a wake-up eventfd, reads requests and hands them to the scheduler; answers
/// go out from whichever thread finishes a job (``JobServerConnection``). Not SwiftNIO: a job
/// worker that needs no event loop starts none, which saves it about 2 ms of its start, and a
/// job costs what the sockets cost (decision 0016). The same thread beats the worker's
/// heartbeat: handlers that start inline run on it, so a handler that blocks it stops the
/// beat, and the hang watchdog sees it.
final class JobServer: Sendable {
    let path: String
    let scheduler: JobScheduler
    let logger: Logger
    private let epoll: Epoll
    private let wakeUp: WakeUpEvent
    private let listener: Posix.FD
    private let heartbeat: WorkerHeartbeat?
    private let state = Mutex(State())
    private let thread = Mutex<PosixThread?>(nil)
    /// `pthread_self()` of the loop's thread, 0 before it runs.
    private let loopThread = Atomic<UInt>(0)
    /// Lanes may be armed: false from the goodbye on, so that no request goes where the
    /// stopping loop no longer looks.
    let lanesOpen = Atomic<Bool>(true)

    private struct State: ~Copyable {
        var connections: [UInt64: JobServerConnection] = [:]
        /// Connection ids (and epoll tokens) start above the loop's own tokens.
        var nextID: UInt64 = firstConnectionToken
        /// Connections with frames for the loop to send at the end of its batch.
        var deferred: [JobServerConnection] = []
        /// The loop waits in `epoll_wait` (decided under the lock, with `deferred` empty).
        var isSleeping = false
        /// The listening socket is open (closed by the goodbye, or at release).
        var isListening = true
        var goodbyeRequested = false
        /// Set by `close()`: no more connections are taken, and the loop ends once none is
        /// left, or at this instant.
        var closingDeadline: UInt64?
        /// Resumed by the loop as it ends.
        var stopped: CheckedContinuation<Void, Never>?
        var hasStopped = false
    }

    private static let wakeUpToken: UInt64 = 0
    private static let listenerToken: UInt64 = 1
    private static let firstConnectionToken: UInt64 = 16
    /// While looking at armed lanes, the loop looks at its sockets every this many turns.
    private static let epollLookEvery = 4
    /// What a connection is watched for between writes: requests, and the sender hanging up.
    private static let readInterest: Epoll.Events = [.readable, .peerHangUp]

    /// How long a stopping worker waits for its senders to close their connections after it
    /// said it is closing.
    static let closingGrace: Duration = .milliseconds(500)

    static func socketPath(runtimeDirectory: String, worker: WorkerID) -> String {
        "\(runtimeDirectory)/worker-\(worker).sock"
    }

    private init(path: String, scheduler: JobScheduler, logger: Logger, listener: Posix.FD, heartbeat: WorkerHeartbeat?) throws {
        self.path = path
        self.scheduler = scheduler
        self.logger = logger
        self.listener = listener
        self.heartbeat = heartbeat
        epoll = try Epoll(context: "job server \(path)")
        do {
            wakeUp = try WakeUpEvent(context: "job server \(path)")
        } catch {
            epoll.close()
            throw error
        }
    }

    /// Listens on `path` (mode 0600, a stale socket file replaced) and starts the loop's thread,
    /// which beats `heartbeat` too.
    static func start(path: String, scheduler: JobScheduler, logger: Logger, heartbeat: WorkerHeartbeat? = nil) throws -> JobServer {
        let listener = try Posix.listenUnix(path: path, backlog: 256)
        let server: JobServer
        do {
            try Posix.setNonBlocking(listener)
            try Posix.setMode(path, 0o600)
            server = try JobServer(path: path, scheduler: scheduler, logger: logger, listener: listener, heartbeat: heartbeat)
        } catch {
            Posix.close(listener)
            Posix.removeFile(path)
            throw error
        }
        do {
            try server.epoll.add(server.wakeUp.fd, .readable, token: wakeUpToken)
            try server.epoll.add(listener, .readable, token: listenerToken)
            let thread = try PosixThread(name: "pool-jobs") { [server] in server.loop() }
            server.thread.withLock { $0 = thread }
        } catch {
            server.release()
            throw error
        }
        return server
    }

    /// Stops accepting connections and removes the socket file, then tells every sender still
    /// connected that this worker is closing, shuts its side of each connection for writing,
    /// and waits (at most ``closingGrace``) for the senders to close theirs. Call it once the
    /// scheduler has drained: every job taken has been answered, so a request that crosses the
    /// `closing` frame was not run, and its sender, seeing the end after `closing`, sends it to
    /// another worker instead of failing it as `workerLost`. The shut write side is what an
    /// idle sender notices at once (EPOLLRDHUP), even though it is not reading its socket.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let running = state.withLock { state -> Bool in
                guard !state.hasStopped else { return false }
                state.goodbyeRequested = true
                state.closingDeadline = Posix.monotonicNanoseconds() + UInt64(Self.closingGrace.nanoseconds)
                state.stopped = continuation
                return true
            }
            if running { wakeUp.signal() } else { continuation.resume() }
        }
        // It has returned from its loop: joining does not wait.
        thread.withLock { $0 }?.join()
        release()
    }

    /// Closes what is left once the loop has stopped (or never started).
    private func release() {
        let connections = state.withLock { state -> [JobServerConnection] in
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in connections { drop(connection) }
        closeListener()
        epoll.close()
        wakeUp.close()
    }

    // MARK: - For connections

    /// Whether the caller runs on the loop's thread (reading a batch, or beating).
    var isOnLoopThread: Bool { loopThread.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Hands `connection`'s queued frames to the loop, to send at the end of its batch; false
    /// when the loop sleeps (the caller then sends them itself, which is quicker than a wake-up).
    func takeDeferred(_ connection: JobServerConnection, fromLoop: Bool) -> Bool {
        state.withLock { state in
            guard fromLoop || !state.isSleeping else { return false }
            state.deferred.append(connection)
            return true
        }
    }

    /// `connection`'s socket is full: tell its writer when there is room.
    func waitForRoom(_ connection: JobServerConnection) {
        try? epoll.modify(connection.fd, Self.readInterest.union(.writable), token: connection.id)
    }

    // MARK: - The loop

    private func loop() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        var events: [Epoll.Event] = []
        var inputs: [UInt64: ByteBuffer] = [:]
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var lanes = Lanes()
        var spinTurns = 0
        var nextBeat = heartbeat.map { _ in Posix.monotonicNanoseconds() }
        while true {
            if let heartbeat, let due = nextBeat {
                // One clock read per turn of the loop, which may be one per job.
                let now = Posix.monotonicNanoseconds()
                if now >= due {
                    heartbeat.beat()
                    nextBeat = now + heartbeat.nanoseconds
                }
            }
            // Armed lanes keep the thread awake, looking at them between turns.
            let spinning = lanes.served.isEmpty ? (awake: false, took: false) : serveLanes(&lanes, inputs: &inputs)
            // Asleep only with nothing handed over: a frame handed before this lock is sent by
            // the flush below, one queued after it is sent by its own thread.
            let (maySleep, closing) = state.withLock { state -> (Bool, UInt64?) in
                guard state.deferred.isEmpty && !spinning.awake else { return (false, nil) }
                state.isSleeping = true
                return (true, state.closingDeadline)
            }
            do {
                if maySleep {
                    let until = [nextBeat, closing].compactMap { $0 }.min()
                    try epoll.wait(into: &events, until: until)
                    state.withLock { $0.isSleeping = false }
                } else if spinning.awake && !spinning.took && spinTurns % Self.epollLookEvery != 0 {
                    // Looking at lanes: the sockets only every few turns, each look a system call.
                    events.removeAll(keepingCapacity: true)
                } else {
                    try epoll.wait(into: &events, timeoutMilliseconds: 0)
                }
                spinTurns = spinning.awake ? spinTurns &+ 1 : 0
            } catch {
                logger.error("job server: \(error); it stops serving")
                break
            }
            for event in events {
                switch event.token {
                case Self.wakeUpToken:
                    wakeUp.consume()
                    handleRequests()
                case Self.listenerToken:
                    acceptAll()
                default:
                    guard let connection = state.withLock({ $0.connections[event.token] }) else { continue }
                    if event.events.contains(.writable) {
                        try? epoll.modify(connection.fd, Self.readInterest, token: connection.id)
                        connection.socketHasRoom()
                    }
                    if !event.events.isDisjoint(with: [.readable, .peerHangUp, .hangUp, .error]) {
                        read(connection, into: &inputs, chunk: &chunk, lanes: &lanes)
                    }
                }
            }
            flushDeferred()
            // Nothing came: the CPU goes to whoever is due on it (on one CPU, the sender).
            if spinning.awake && !spinning.took && events.isEmpty { Posix.yieldProcessor() }
            let closed = state.withLock { state -> Bool in
                guard let deadline = state.closingDeadline, !state.goodbyeRequested else { return false }
                return state.connections.isEmpty || Posix.monotonicNanoseconds() >= deadline
            }
            if closed { break }
        }
        let stopped = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.hasStopped = true
            defer { state.stopped = nil }
            return state.stopped
        }
        stopped?.resume()
    }

    /// Acts on what `close()` asked.
    private func handleRequests() {
        let (stopAccepting, goodbye) = state.withLock { state -> (Bool, [JobServerConnection]) in
            guard state.goodbyeRequested else { return (state.closingDeadline != nil, []) }
            state.goodbyeRequested = false
            return (true, Array(state.connections.values))
        }
        if stopAccepting {
            lanesOpen.store(false, ordering: .relaxed)
            closeListener()
        }
        for connection in goodbye { connection.sayClosing() }
    }

    private func closeListener() {
        let wasListening = state.withLock { state -> Bool in
            defer { state.isListening = false }
            return state.isListening
        }
        guard wasListening else { return }
        epoll.remove(listener)
        Posix.close(listener)
        Posix.removeFile(path)
    }

    private func acceptAll() {
        while true {
            let fd: Posix.FD
            do {
                guard let accepted = try Posix.acceptNonBlocking(listener) else { return }
                fd = accepted
            } catch {
                // Out of descriptors, most likely: the sender's connect waits in the backlog
                // and is taken once one is free.
                logger.error("job server: \(error)")
                return
            }
            let connection = state.withLock { state -> JobServerConnection in
                defer { state.nextID += 1 }
                let connection = JobServerConnection(id: state.nextID, fd: fd, server: self)
                state.connections[connection.id] = connection
                return connection
            }
            do {
                try epoll.add(fd, Self.readInterest, token: connection.id)
            } catch {
                logger.error("job server: cannot watch a new connection: \(error)")
                drop(connection)
            }
        }
    }

    /// Reads what the connection has, hands each whole request to the scheduler, and closes
    /// the connection at its end or at a malformed frame. A connection's first read takes the
    /// descriptors passed with its bytes too (a lane's shared file comes with the first frame).
    private func read(
        _ connection: JobServerConnection, into inputs: inout [UInt64: ByteBuffer], chunk: inout [UInt8], lanes: inout Lanes
    ) {
        let isFirstRead = inputs[connection.id] == nil
        var input = inputs.removeValue(forKey: connection.id) ?? ByteBuffer()
        var passed: [Posix.FD] = []
        var ended = false
        while true {
            let received: Int?
            do {
                received = try chunk.withUnsafeMutableBytes { buffer in
                    isFirstRead
                        ? try Posix.receive(connection.fd, into: buffer, descriptors: &passed, nonBlocking: true)
                        : try Posix.receive(connection.fd, into: buffer, nonBlocking: true)
                }
            } catch {
                ended = true
                break
            }
            guard let n = received else { break }
            if n == 0 {
                ended = true
                break
            }
            input.writeBytes(chunk[0..<n])
            if n < chunk.count || isFirstRead { break }
        }
        defer { passed.forEach(Posix.close) }
        // The requests of this read start together once all are handed over (see
        // `JobScheduler.submit`), before the connection ends if it does.
        var held = false
        do {
            while let frame = try JobFrame.read(from: &input) {
                switch frame {
                case .lane(let bytes):
                    // Only first, once, with its file: anything else is not our sender.
                    guard lanes.served[connection.id] == nil, isFirstRead, let shared = passed.first, bytes == JobLane.size else {
                        throw JobFrameError(message: "a 'lane' frame that is not the connection's first, or came without its \(JobLane.size)-byte file")
                    }
                    do {
                        lanes.served[connection.id] = ServedLane(lane: try JobLane.map(passed: shared), connection: connection)
                    } catch {
                        // The socket serves alone: the lane stays asleep, so the sender never posts there.
                        logger.warning("job connection \(connection.id): the sender's lane cannot be used: \(error)")
                    }
                case .request:
                    held = true
                    ended = !dispatch(frame, from: connection, lane: lanes.served[connection.id], holdStart: true)
                default:
                    ended = !dispatch(frame, from: connection, lane: lanes.served[connection.id])
                }
                if ended { break }
            }
        } catch {
            // Malformed input closes this connection only; the worker and other senders go on.
            logger.error("job connection \(connection.id): \(error); closing it")
            ended = true
        }
        if held { scheduler.startHeld() }
        if ended {
            end(connection, inputs: &inputs, lanes: &lanes)
            return
        }
        input.discardReadBytes()
        inputs[connection.id] = input
    }

    /// Hands a sender's frame to the scheduler (a request held with `holdStart`, see
    /// `JobScheduler.submit`); false for a frame only a worker sends (the caller closes the
    /// connection).
    func dispatch(_ frame: JobFrame, from connection: JobServerConnection, lane: ServedLane?, holdStart: Bool = false) -> Bool {
        switch frame {
        case .request(let request):
            // Through the lane when its sender waits there, else by the socket.
            let answered: JobScheduler.Reply
            if let lane {
                answered = { [self] answer in if !reply(answer, in: lane) { connection.write(answer) } }
            } else {
                answered = { connection.write($0) }
            }
            scheduler.submit(request, connection: connection.id, gate: connection.announce, holdStart: holdStart, reply: answered)
        case .cancel(let jobID):
            scheduler.cancel(connection: connection.id, jobID: jobID)
        case .result, .error, .closing, .started, .lane:
            logger.error("job connection \(connection.id): a sender sent a \(frame.kind) frame; closing the connection")
            return false
        }
        return true
    }

    private func flushDeferred() {
        while true {
            let deferred = state.withLock { state -> [JobServerConnection] in
                defer { state.deferred = [] }
                return state.deferred
            }
            if deferred.isEmpty { return }
            for connection in deferred { connection.flushDeferred() }
        }
    }

    /// The loop ends a connection: its unread bytes and its lane go, then the connection itself.
    func end(_ connection: JobServerConnection, inputs: inout [UInt64: ByteBuffer], lanes: inout Lanes) {
        inputs.removeValue(forKey: connection.id)
        lanes.forget(connection.id)
        drop(connection)
    }

    /// Forgets a connection: nobody is left to answer, so its jobs are dropped or cancelled.
    private func drop(_ connection: JobServerConnection) {
        epoll.remove(connection.fd)
        state.withLock { _ = $0.connections.removeValue(forKey: connection.id) }
        connection.close()
        scheduler.cancelAll(connection: connection.id)
    }
}


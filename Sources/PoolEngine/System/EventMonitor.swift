import Synchronization

/// What the monitor thread saw.
enum MonitorEvent: Sendable {
    case message(WorkerID, generation: Int, WorkerMessage)
    case badFrame(WorkerID, generation: Int, FrameError)
    case channelClosed(WorkerID, generation: Int)
    /// A control channel with bytes waiting to be sent has room again (see ``EventMonitor/setWritableInterest(_:_:)``).
    case channelWritable(WorkerID, generation: Int)
    case exited(WorkerID, generation: Int, TerminationStatus)
    /// A program worker's exec trampoline finished: the program runs (nil), or why it could not.
    case execFinished(WorkerID, generation: Int, failure: String?)
    /// A program worker sent an sd_notify message.
    case notified(WorkerID, generation: Int, NotifyMessage)
    case signal(Int32)
    case deadlineReached
    /// The periodic tick (resource sampling) is due.
    case tick
    /// The thread started: the first event the handler gets.
    case started
    /// A request another thread posted.
    case request(WatcherRequest)
}

/// A request to the watcher from another thread: the API, the control socket, job senders.
enum WatcherRequest: Sendable {
    /// An input nobody waits on (stop, restart, a sender's scale-up).
    case input(WatcherInput)
    /// A command answered once its effect is applied and published.
    case command(WatcherCommand, reply: @Sendable (CommandReply) -> Void)
    /// Resumed once no worker is starting.
    case awaitStart(CheckedContinuation<Void, Never>)
    /// Someone began looking at the live figures: sample the workers now.
    case sampleNow
    /// This process changed shared memory while the flight recorder dozed.
    case sharedMemoryChanged
}

/// The watcher's thread: one thread blocked in `epoll_wait` on every worker's pidfd and
/// control channel, the signal self-pipe and a wake-up eventfd. It turns readiness into
/// ``MonitorEvent``s and hands them, with the requests other threads post, to one handler
/// (the watcher loop), which runs on this thread and nowhere else. Idle, it uses no CPU at
/// all: there is no polling loop, only the kernel's wake-ups and the next deadline.
///
/// Like a NIO event loop and its channels, the monitor owns its loop state (the watched
/// descriptors, the deadline, the tick) without a lock: `watch`, `forget`, `setDeadline`,
/// `setTick` and `setWritableInterest` are called before ``start(_:)`` or on the monitor
/// thread (by the handler). Only ``post(_:)`` and ``shutdown()`` come from other threads,
/// and they go through the one mutex.
final class EventMonitor: @unchecked Sendable {
    // @unchecked: the loop state below is confined to the monitor thread once it runs (see
    // the type's comment); `shared` is the only state other threads touch.
    private enum Source {
        /// `companions` are read before the exit is reported (the worker's last words);
        /// a `processGroup` above 0 is killed then, so nothing the program started outlives it.
        case pidfd(WorkerID, generation: Int, fd: Int32, companions: [UInt64], processGroup: Int32)
        case control(WorkerID, generation: Int, fd: Int32)
        /// A program's exec-status pipe: closed empty when the exec succeeded.
        case execStatus(WorkerID, generation: Int, fd: Int32)
        /// A program's stdout or stderr.
        case output(WorkerID, generation: Int, fd: Int32, stream: String)
        /// A program's sd_notify datagram socket.
        case notify(WorkerID, generation: Int, fd: Int32)
        case signals(fd: Int32)
        case wake
    }

    /// What other threads reach: the requests they post, and the stop flag.
    private struct Shared: ~Copyable {
        var inbox: [WatcherRequest] = []
        var isShuttingDown = false
        var thread: PosixThread?
        var isClosed = false
    }

    private var sources: [UInt64: Source] = [:]
    private var nextToken: UInt64 = 1
    private var deadline: UInt64?
    /// The periodic tick's interval and next time, in monotonic nanoseconds.
    private var tickInterval: UInt64?
    private var nextTick: UInt64?
    /// Pidfd sources of processes that have ended but whose status is not known yet: a fork
    /// server's child before the kernel has reaped it (decision 0028), or an orphan of a fork
    /// server that died, until its new parent reaps it. Out of epoll (a pidfd stays readable)
    /// and asked again every millisecond.
    private var awaitingStatus: Set<UInt64> = []

    /// Per-source partial input of program workers: exec-status text, unfinished output lines.
    private var execText: [UInt64: [UInt8]] = [:]
    private var outputLines: [UInt64: OutputLines] = [:]

    private let epoll: Epoll
    private let wakeUp: WakeUpEvent
    private let shared = Mutex(Shared())

    init() throws {
        epoll = try Epoll(context: "pool monitor")
        wakeUp = try WakeUpEvent(context: "pool monitor")
        sources[0] = .wake
        try epoll.add(wakeUp.fd, .readable, token: 0)
    }

    /// Starts the thread; `handler` gets `.started` first, then every event and request, on it.
    func start(_ handler: @escaping @Sendable (MonitorEvent) -> Void) throws {
        let thread = try PosixThread(name: "pool-monitor") { [self] in self.loop(handler) }
        shared.withLock { $0.thread = thread }
    }

    /// Queues a request for the handler; false once the monitor has shut down (nobody will see it).
    @discardableResult
    func post(_ request: WatcherRequest) -> Bool {
        shared.withLock { shared -> Bool in
            guard !shared.isShuttingDown else { return false }
            shared.inbox.append(request)
            // One wake-up drains every request queued meanwhile. Written under the lock: once
            // `shutdown()` closed the eventfd its number may belong to someone else's socket.
            if shared.inbox.count == 1 { wakeUp.signal() }
            return true
        }
    }

    /// Stops the thread and closes the monitor's own descriptors (not the watched ones).
    /// Returns the requests the handler never saw, for the caller to answer. Idempotent.
    @discardableResult
    func shutdown() -> [WatcherRequest] {
        let thread = shared.withLock { shared -> PosixThread? in
            guard !shared.isClosed else { return nil }
            shared.isShuttingDown = true
            wakeUp.signal()
            defer { shared.thread = nil }
            return shared.thread
        }
        thread?.join()
        return shared.withLock { shared -> [WatcherRequest] in
            if !shared.isClosed {
                shared.isClosed = true
                epoll.close()
                wakeUp.close()
            }
            defer { shared.inbox = [] }
            return shared.inbox
        }
    }

    /// Watches a worker process: its pidfd for the exit, its control channel for messages.
    func watch(_ id: WorkerID, generation: Int, pidfd: Int32, control: Int32) throws {
        let controlToken = nextToken
        let pidToken = nextToken + 1
        nextToken += 2
        sources[controlToken] = .control(id, generation: generation, fd: control)
        sources[pidToken] = .pidfd(id, generation: generation, fd: pidfd, companions: [controlToken], processGroup: 0)
        try epoll.add(control, [.readable, .peerHangUp], token: controlToken)
        try epoll.add(pidfd, .readable, token: pidToken)
    }

    /// Watches a program worker: its exit, its exec status, its output, its sd_notify socket.
    /// On its exit, what is left of its process group is killed.
    func watchProgram(
        _ id: WorkerID, generation: Int, pidfd: Int32, execStatus: Int32, outputs: [(fd: Int32, stream: String)],
        notify: Int32?, processGroup: Int32
    ) throws {
        var companions: [UInt64] = []
        func add(_ source: Source, _ fd: Int32) throws {
            let token = nextToken
            nextToken += 1
            sources[token] = source
            companions.append(token)
            try epoll.add(fd, [.readable, .peerHangUp], token: token)
        }
        try add(.execStatus(id, generation: generation, fd: execStatus), execStatus)
        for output in outputs { try add(.output(id, generation: generation, fd: output.fd, stream: output.stream), output.fd) }
        if let notify { try add(.notify(id, generation: generation, fd: notify), notify) }
        let pidToken = nextToken
        nextToken += 1
        sources[pidToken] = .pidfd(id, generation: generation, fd: pidfd, companions: companions, processGroup: processGroup)
        try epoll.add(pidfd, .readable, token: pidToken)
    }

    /// Stops watching a descriptor before its owner closes it (a no-op when it is not watched).
    func forget(descriptor: Int32) {
        let tokens = sources.compactMap { token, source -> UInt64? in
            if case .wake = source { return nil }
            return sourceDescriptor(source) == descriptor ? token : nil
        }
        for token in tokens {
            sources.removeValue(forKey: token)
            execText.removeValue(forKey: token)
            outputLines.removeValue(forKey: token)
        }
        if !tokens.isEmpty { epoll.remove(descriptor) }
    }

    /// Also reports when a worker's control channel has room to write (`.channelWritable`),
    /// while the watcher has bytes waiting for it; off again once they are sent.
    func setWritableInterest(_ control: Int32, _ wanted: Bool) {
        let token = sources.first { _, source in
            if case .control(_, _, let fd) = source { return fd == control }
            return false
        }?.key
        guard let token else { return }
        var events: Epoll.Events = [.readable, .peerHangUp]
        if wanted { events.insert(.writable) }
        // Fails only for a descriptor epoll no longer holds: the channel closed, and its worker's
        // exit is on the way.
        try? epoll.modify(control, events, token: token)
    }

    /// Watches the read end of the signal self-pipe.
    func watchSignals(readFD: Int32) throws {
        let token = nextToken
        nextToken += 1
        sources[token] = .signals(fd: readFD)
        try epoll.add(readFD, .readable, token: token)
    }

    /// Wakes the loop at `deadline` with `.deadlineReached`; nil for none. Set from the handler,
    /// so the loop reads it before it next sleeps: no wake-up is needed.
    func setDeadline(_ deadline: PoolInstant?) {
        self.deadline = deadline?.nanoseconds
    }

    /// Emits `.tick` every `interval`, from the monitor thread's own clock; nil for none.
    func setTick(every interval: Duration?) {
        let new = interval.map { UInt64(max($0.nanoseconds, 1_000_000)) }
        guard new != tickInterval else { return }
        tickInterval = new
        nextTick = new.map { Posix.monotonicNanoseconds() + $0 }
    }

    private func loop(_ sink: @Sendable (MonitorEvent) -> Void) {
        var events: [Epoll.Event] = []
        var decoders: [UInt64: FrameDecoder] = [:]
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        sink(.started)
        while true {
            var wakeAt = deadline
            if let tick = nextTick, wakeAt.map({ tick < $0 }) ?? true { wakeAt = tick }
            if !awaitingStatus.isEmpty {
                let soon = Posix.monotonicNanoseconds() + 1_000_000
                if wakeAt.map({ soon < $0 }) ?? true { wakeAt = soon }
            }
            do {
                try epoll.wait(into: &events, until: wakeAt)
            } catch {
                // epoll_wait on a valid descriptor fails only on programming errors; stop rather than spin.
                return
            }
            for event in events {
                switch sources[event.token] {
                case .wake:
                    wakeUp.consume()
                case .signals(let fd):
                    var bytes = [UInt8](repeating: 0, count: 16)
                    while let n = bytes.withUnsafeMutableBytes({ try? Posix.read(fd, into: $0) }) ?? nil, n > 0 {
                        for signal in bytes[0..<n] { sink(.signal(Int32(signal))) }
                    }
                case .control(let id, let generation, let fd):
                    if event.events.contains(.writable) { sink(.channelWritable(id, generation: generation)) }
                    guard !event.events.isDisjoint(with: [.readable, .peerHangUp, .hangUp, .error]) else { continue }
                    drain(token: event.token, id: id, generation: generation, fd: fd, decoders: &decoders, buffer: &readBuffer, sink)
                case .execStatus, .output, .notify:
                    read(token: event.token, buffer: &readBuffer, sink)
                case .pidfd(let id, let generation, let fd, let companions, let processGroup):
                    // Everything the worker wrote before it died is in its channels: read it
                    // first, so its last words are classified with its exit.
                    for token in companions {
                        if case .control(_, _, let controlFD) = sources[token] {
                            drain(token: token, id: id, generation: generation, fd: controlFD, decoders: &decoders, buffer: &readBuffer, sink)
                        } else {
                            read(token: token, buffer: &readBuffer, sink)
                        }
                    }
                    // Before the reap, while the zombie still holds its pid as the group's id:
                    // the group cannot be a stranger's.
                    if processGroup > 0 { Posix.signalProcessGroup(processGroup, PosixSignal.kill) }
                    epoll.remove(fd)
                    guard let status = try? Posix.reap(pidfd: fd) else {
                        awaitingStatus.insert(event.token)
                        continue
                    }
                    sources.removeValue(forKey: event.token)
                    sink(.exited(id, generation: generation, status))
                case nil:
                    continue
                }
            }
            for token in awaitingStatus {
                guard case .pidfd(let id, let generation, let fd, _, _) = sources[token] else {
                    // Forgotten meanwhile: the watcher let the process go.
                    awaitingStatus.remove(token)
                    continue
                }
                guard let status = try? Posix.reap(pidfd: fd) else { continue }
                awaitingStatus.remove(token)
                sources.removeValue(forKey: token)
                sink(.exited(id, generation: generation, status))
            }
            // Requests left when it stops are returned by `shutdown()` for the caller to answer.
            let (requests, stopping) = shared.withLock { shared -> ([WatcherRequest], Bool) in
                if shared.isShuttingDown { return ([], true) }
                defer { shared.inbox = [] }
                return (shared.inbox, false)
            }
            if stopping { return }
            for request in requests { sink(.request(request)) }
            let now = Posix.monotonicNanoseconds()
            if let due = deadline, due <= now {
                deadline = nil
                sink(.deadlineReached)
            }
            if let tick = nextTick, let interval = tickInterval, tick <= now {
                // Skip missed ticks rather than bursting to catch up.
                nextTick = tick + interval * ((now - tick) / interval + 1)
                sink(.tick)
            }
        }
    }

    /// Reads what a program worker's exec-status pipe, output pipe or notify socket has.
    private func read(token: UInt64, buffer: inout [UInt8], _ sink: @Sendable (MonitorEvent) -> Void) {
        guard let source = sources[token] else { return }
        var ended = false
        switch source {
        case .execStatus(let id, let generation, let fd):
            while !ended, let n = readSome(fd, &buffer, ended: &ended), n > 0 {
                execText[token, default: []] += buffer[0..<n]
            }
            if ended {
                let text = execText.removeValue(forKey: token).map { String(decoding: $0, as: UTF8.self) }
                sink(.execFinished(id, generation: generation, failure: text))
            }
        case .output(let id, let generation, let fd, let stream):
            var lines = outputLines[token] ?? OutputLines()
            var texts: [String] = []
            while !ended, let n = readSome(fd, &buffer, ended: &ended), n > 0 {
                texts += lines.append(buffer[0..<n])
            }
            if ended { texts += lines.finish() }
            outputLines[token] = ended ? nil : lines
            let now = Posix.wallClockSeconds()
            for text in texts {
                let record = LogRecord(level: "info", message: text, metadata: ["stream": stream], timestamp: now)
                sink(.message(id, generation: generation, .log(record)))
            }
        case .notify(let id, let generation, let fd):
            // try?: a datagram socket has no end; an error (none expected) only ends this round.
            while let n = try? buffer.withUnsafeMutableBytes({ try Posix.receive(fd, into: $0, nonBlocking: true) }), n > 0 {
                sink(.notified(id, generation: generation, NotifyMessage(parsing: buffer[0..<min(n, NotifyMessage.maximumSize)])))
            }
        default:
            return
        }
        if ended {
            epoll.remove(sourceDescriptor(source))
            sources.removeValue(forKey: token)
        }
    }

    /// One read of a pipe: the byte count, nil when it has nothing now; `ended` at its end or on an error.
    private func readSome(_ fd: Int32, _ buffer: inout [UInt8], ended: inout Bool) -> Int? {
        do {
            guard let n = try buffer.withUnsafeMutableBytes({ try Posix.read(fd, into: $0) }) else { return nil }
            if n == 0 { ended = true }
            return n
        } catch {
            ended = true
            return nil
        }
    }

    private func sourceDescriptor(_ source: Source) -> Int32 {
        switch source {
        case .control(_, _, let fd), .pidfd(_, _, let fd, _, _), .signals(let fd), .execStatus(_, _, let fd),
            .output(_, _, let fd, _), .notify(_, _, let fd):
            return fd
        case .wake: return wakeUp.fd
        }
    }

    /// Reads all that is available on a control channel and forwards the decoded messages.
    private func drain(
        token: UInt64, id: WorkerID, generation: Int, fd: Int32,
        decoders: inout [UInt64: FrameDecoder], buffer: inout [UInt8], _ sink: @Sendable (MonitorEvent) -> Void
    ) {
        var decoder = decoders[token] ?? FrameDecoder()
        var closed = false
        var failure: FrameError?
        reading: while true {
            let n: Int?
            do {
                n = try buffer.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, nonBlocking: true) }
            } catch {
                closed = true
                break reading
            }
            guard let n else { break reading }
            if n == 0 {
                closed = true
                break reading
            }
            decoder.append(buffer[0..<n])
            do {
                while let frame = try decoder.next() {
                    sink(.message(id, generation: generation, try ControlCodec.decodeWorkerMessage(frame)))
                }
            } catch {
                failure = error
                closed = true
                break reading
            }
        }
        if let failure { sink(.badFrame(id, generation: generation, failure)) }
        if closed {
            decoders.removeValue(forKey: token)
            epoll.remove(fd)
            sources.removeValue(forKey: token)
            sink(.channelClosed(id, generation: generation))
        } else {
            decoders[token] = decoder
        }
    }
}

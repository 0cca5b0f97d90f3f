import Synchronization

/// What the monitor thread saw.
enum MonitorEvent: Sendable {
    case message(WorkerID, generation: Int, WorkerMessage)
    case badFrame(WorkerID, generation: Int, FrameError)
    case channelClosed(WorkerID, generation: Int)
    /// A control channel with bytes waiting to be sent has room again (see ``EventMonitor/setWritableInterest(_:_:)``).
    case channelWritable(WorkerID, generation: Int)
    case exited(WorkerID, generation: Int, TerminationStatus)
    case signal(Int32)
    case deadlineReached
    /// The periodic tick (resource sampling) is due.
    case tick
}

/// One thread blocked in `epoll_wait` on every worker's pidfd and control channel, the signal
/// self-pipe and a wake-up eventfd; it turns readiness into ``MonitorEvent``s. Idle, it uses
/// no CPU at all: there is no polling loop, only the kernel's wake-ups and the next deadline.
final class EventMonitor: Sendable {
    private enum Source: Sendable {
        case pidfd(WorkerID, generation: Int, fd: Int32, control: UInt64)
        case control(WorkerID, generation: Int, fd: Int32)
        case signals(fd: Int32)
        case wake
    }

    private struct State: ~Copyable {
        var sources: [UInt64: Source] = [:]
        var nextToken: UInt64 = 1
        var deadline: UInt64?
        /// The periodic tick's interval and next time, in monotonic nanoseconds.
        var tickInterval: UInt64?
        var nextTick: UInt64?
        /// When the thread will wake by itself; a later deadline needs no wake-up.
        var sleepingUntil: UInt64?
        var isShuttingDown = false
    }

    private let epoll: Epoll
    private let wakeUp: WakeUpEvent
    private let state = Mutex(State())
    private let sink: @Sendable (MonitorEvent) -> Void
    private let thread = Mutex<PosixThread?>(nil)

    init(sink: @escaping @Sendable (MonitorEvent) -> Void) throws {
        epoll = try Epoll(context: "pool monitor")
        wakeUp = try WakeUpEvent(context: "pool monitor")
        self.sink = sink
        state.withLock { $0.sources[0] = .wake }
        try epoll.add(wakeUp.fd, .readable, token: 0)
    }

    func start() throws {
        let thread = try PosixThread(name: "pool-monitor") { [self] in self.loop() }
        self.thread.withLock { $0 = thread }
    }

    /// Stops the thread and closes the monitor's own descriptors (not the watched ones).
    func shutdown() {
        state.withLock { $0.isShuttingDown = true }
        wake()
        let thread = self.thread.withLock { value -> PosixThread? in
            let thread = value
            value = nil
            return thread
        }
        thread?.join()
        epoll.close()
        wakeUp.close()
    }

    /// Watches a worker process: its pidfd for the exit, its control channel for messages.
    func watch(_ id: WorkerID, generation: Int, pidfd: Int32, control: Int32) throws {
        let (pidToken, controlToken) = state.withLock { state -> (UInt64, UInt64) in
            let controlToken = state.nextToken
            let pidToken = state.nextToken + 1
            state.nextToken += 2
            state.sources[controlToken] = .control(id, generation: generation, fd: control)
            state.sources[pidToken] = .pidfd(id, generation: generation, fd: pidfd, control: controlToken)
            return (pidToken, controlToken)
        }
        try epoll.add(control, [.readable, .peerHangUp], token: controlToken)
        try epoll.add(pidfd, .readable, token: pidToken)
    }

    /// Stops watching a descriptor before its owner closes it (a no-op when it is not watched).
    func forget(descriptor: Int32) {
        let found = state.withLock { state -> Bool in
            let tokens = state.sources.compactMap { token, source -> UInt64? in
                switch source {
                case .control(_, _, let fd), .pidfd(_, _, let fd, _), .signals(let fd): return fd == descriptor ? token : nil
                case .wake: return nil
                }
            }
            for token in tokens { state.sources.removeValue(forKey: token) }
            return !tokens.isEmpty
        }
        if found { epoll.remove(descriptor) }
    }

    /// Also reports when a worker's control channel has room to write (`.channelWritable`),
    /// while the watcher has bytes waiting for it; off again once they are sent.
    func setWritableInterest(_ control: Int32, _ wanted: Bool) {
        let token = state.withLock { state -> UInt64? in
            state.sources.first { _, source in
                if case .control(_, _, let fd) = source { return fd == control }
                return false
            }?.key
        }
        guard let token else { return }
        var events: Epoll.Events = [.readable, .peerHangUp]
        if wanted { events.insert(.writable) }
        // Fails only for a descriptor epoll no longer holds: the channel closed, and its worker's
        // exit is on the way.
        try? epoll.modify(control, events, token: token)
    }

    /// Watches the read end of the signal self-pipe.
    func watchSignals(readFD: Int32) throws {
        let token = state.withLock { state -> UInt64 in
            let token = state.nextToken
            state.nextToken += 1
            state.sources[token] = .signals(fd: readFD)
            return token
        }
        try epoll.add(readFD, .readable, token: token)
    }

    /// Wakes the loop at `deadline` (monotonic nanoseconds) with `.deadlineReached`; nil for none.
    func setDeadline(_ deadline: PoolInstant?) {
        let mustWake = state.withLock { state -> Bool in
            let new = deadline?.nanoseconds
            if state.deadline == new { return false }
            state.deadline = new
            // The thread wakes by itself at `sleepingUntil` and recomputes: only an earlier
            // deadline needs it woken now (an idle watcher then wakes once per tick, not twice).
            guard let new else { return false }
            return state.sleepingUntil.map { new < $0 } ?? true
        }
        if mustWake { wake() }
    }

    /// Emits `.tick` every `interval`, from the monitor thread's own clock.
    func setTick(every interval: Duration?) {
        state.withLock { state in
            state.tickInterval = interval.map { UInt64(max($0.nanoseconds, 1_000_000)) }
            state.nextTick = state.tickInterval.map { Posix.monotonicNanoseconds() + $0 }
        }
        wake()
    }

    private func wake() { wakeUp.signal() }

    private func loop() {
        var events: [Epoll.Event] = []
        var decoders: [UInt64: FrameDecoder] = [:]
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (wakeAt, stopping) = state.withLock { state -> (UInt64?, Bool) in
                var wakeAt = state.deadline
                if let tick = state.nextTick, wakeAt.map({ tick < $0 }) ?? true { wakeAt = tick }
                state.sleepingUntil = wakeAt
                return (wakeAt, state.isShuttingDown)
            }
            if stopping { return }
            do {
                try epoll.wait(into: &events, until: wakeAt)
            } catch {
                // epoll_wait on a valid descriptor fails only on programming errors; stop rather than spin.
                return
            }
            for event in events {
                let source = state.withLock { $0.sources[event.token] }
                switch source {
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
                    drain(token: event.token, id: id, generation: generation, fd: fd, decoders: &decoders, buffer: &readBuffer)
                case .pidfd(let id, let generation, let fd, let controlToken):
                    // Everything the worker wrote before it died is in the socket: read it first,
                    // so its last words are classified with its exit.
                    if case .control(_, _, let controlFD) = state.withLock({ $0.sources[controlToken] }) {
                        drain(token: controlToken, id: id, generation: generation, fd: controlFD, decoders: &decoders, buffer: &readBuffer)
                    }
                    guard let status = try? Posix.reap(pidfd: fd) else { continue }
                    epoll.remove(fd)
                    state.withLock { _ = $0.sources.removeValue(forKey: event.token) }
                    sink(.exited(id, generation: generation, status))
                case nil:
                    continue
                }
            }
            let (due, ticked) = state.withLock { state -> (Bool, Bool) in
                let now = Posix.monotonicNanoseconds()
                var due = false
                var ticked = false
                if let deadline = state.deadline, deadline <= now {
                    state.deadline = nil
                    due = true
                }
                if let tick = state.nextTick, let interval = state.tickInterval, tick <= now {
                    // Skip missed ticks rather than bursting to catch up.
                    state.nextTick = tick + interval * ((now - tick) / interval + 1)
                    ticked = true
                }
                return (due, ticked)
            }
            if due { sink(.deadlineReached) }
            if ticked { sink(.tick) }
        }
    }

    /// Reads all that is available on a control channel and forwards the decoded messages.
    private func drain(
        token: UInt64, id: WorkerID, generation: Int, fd: Int32,
        decoders: inout [UInt64: FrameDecoder], buffer: inout [UInt8]
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
            state.withLock { _ = $0.sources.removeValue(forKey: token) }
            sink(.channelClosed(id, generation: generation))
        } else {
            decoders[token] = decoder
        }
    }
}

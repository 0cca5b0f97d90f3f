import Synchronization

/// The job client's I/O thread: one per ``JobClient``, blocked in `epoll_wait` on the client's
/// connections and a wake-up eventfd. It reads answers that no sender is waiting for on its
/// own thread, writes what a full socket could not take, and times out jobs at their
/// deadlines. Idle, it sleeps in the kernel until the earliest deadline, or for good when no
/// job is in flight: no polling loop.
final class JobClientIO: Sendable {
    let epoll: Epoll
    private let wakeUp: WakeUpEvent

    private struct State: ~Copyable {
        var connections: [UInt64: JobConnection] = [:]
        /// Token 0 is the wake-up eventfd.
        var nextToken: UInt64 = 1
        /// No job in flight ends before this (monotonic nanoseconds); nil when none is in flight.
        var earliestDeadline: UInt64?
        /// What the thread went to sleep with: a deadline after it needs no wake-up.
        var sleepingUntil: UInt64?
        var isShuttingDown = false
    }

    private let state = Mutex(State())
    private let thread = Mutex<PosixThread?>(nil)

    init() throws {
        epoll = try Epoll(context: "job client")
        do {
            wakeUp = try WakeUpEvent(context: "job client")
        } catch {
            epoll.close()
            throw error
        }
        do {
            try epoll.add(wakeUp.fd, .readable, token: 0)
            let thread = try PosixThread(name: "job-client-io") { [self] in loop() }
            self.thread.withLock { $0 = thread }
        } catch {
            epoll.close()
            wakeUp.close()
            throw error
        }
    }

    /// A token for a new connection's events.
    func makeToken() -> UInt64 {
        state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
    }

    /// Watches `connection`'s socket for answers.
    func add(_ connection: JobConnection) throws {
        state.withLock { $0.connections[connection.token] = connection }
        do {
            try epoll.add(connection.fd, JobConnection.hangUpInterest, token: connection.token)
        } catch {
            forget(connection.token)
            throw error
        }
    }

    /// Stops dispatching events of a connection (its owner removes the descriptor from epoll).
    func forget(_ token: UInt64) {
        _ = state.withLock { $0.connections.removeValue(forKey: token) }
    }

    /// A job that must end by `deadline` is in flight: wakes the thread only when it sleeps
    /// past that (in a steady stream of jobs with one timeout, that is only the first).
    func noteDeadline(_ deadline: UInt64) {
        let mustWake = state.withLock { state -> Bool in
            state.earliestDeadline = min(state.earliestDeadline ?? deadline, deadline)
            return state.sleepingUntil.map { deadline < $0 } ?? true
        }
        if mustWake { wake() }
    }

    /// Stops the thread. The epoll and eventfd descriptors stay open until the last connection
    /// lets go of this object: a connection a sender still reads closes after this, and its
    /// `epoll_ctl(DEL)` must not reach a descriptor number that something else now owns.
    func shutdown() {
        state.withLock { $0.isShuttingDown = true }
        wake()
        let thread = self.thread.withLock { value -> PosixThread? in
            defer { value = nil }
            return value
        }
        thread?.join()
    }

    deinit {
        epoll.close()
        wakeUp.close()
    }

    private func wake() { wakeUp.signal() }

    private func loop() {
        var events: [Epoll.Event] = []
        while true {
            let (wakeAt, stopping) = state.withLock { state -> (UInt64?, Bool) in
                state.sleepingUntil = state.earliestDeadline
                return (state.earliestDeadline, state.isShuttingDown)
            }
            if stopping { return }
            var timeout: Int32 = -1
            if let wakeAt {
                let now = Posix.monotonicNanoseconds()
                // Rounded up: an early wake-up would spin until the deadline.
                timeout = wakeAt <= now ? 0 : Int32(min((wakeAt - now + 999_999) / 1_000_000, 3_600_000))
            }
            do {
                try epoll.wait(into: &events, timeoutMilliseconds: timeout)
            } catch {
                // epoll_wait on a valid descriptor fails only on programming errors; stop rather than spin.
                return
            }
            for event in events {
                if event.token == 0 {
                    wakeUp.consume()
                    continue
                }
                state.withLock { $0.connections[event.token] }?.handle(event.events)
            }
            expireDue()
        }
    }

    /// Times out the jobs past their deadline and finds the next deadline.
    private func expireDue() {
        let now = Posix.monotonicNanoseconds()
        let due = state.withLock { state -> [JobConnection]? in
            guard let earliest = state.earliestDeadline, earliest <= now else { return nil }
            state.earliestDeadline = nil
            return Array(state.connections.values)
        }
        guard let due else { return }
        var next: UInt64?
        for connection in due {
            if let deadline = connection.expire(now: now) { next = min(next ?? deadline, deadline) }
        }
        if let next {
            // A job noted meanwhile may have set an earlier one.
            state.withLock { $0.earliestDeadline = min($0.earliestDeadline ?? next, next) }
        }
    }
}

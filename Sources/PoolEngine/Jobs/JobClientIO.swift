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
    private let waits = Mutex(JobWaitChooser())
    /// How senders wait for their answers in this process (``JobWaitPolicy``).
    let policy: JobWaitPolicy

    init(policy: JobWaitPolicy) throws {
        self.policy = policy
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

    /// How the next polling sender waits for its answer: the policy's mode, or the one
    /// ``JobWaitChooser`` measured faster.
    func nextWaitMode() -> JobWaitMode {
        switch policy {
        case .poll: return .poll
        case .receive: return .receive
        case .spin: return .spin
        case .adaptive, .suspend: return waits.withLock { $0.next() }
        }
    }

    /// A polling sender's wait in `mode` ended, with its answer or not.
    func waitEnded(_ mode: JobWaitMode, answered: Bool) {
        let now = Posix.monotonicNanoseconds()
        waits.withLock { $0.ended(mode, answered: answered, now: now) }
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
            do {
                try epoll.wait(into: &events, until: wakeAt)
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

/// How a lone sender waits for its job's answer (a group's `jobWait`). Waiting on the sender's
/// own thread saves a thread hand-off per job (about a third of a 64-byte round trip) but
/// holds one of Swift concurrency's few threads for up to ``JobConnection/pollBudget``, so it
/// is opt-in; see `docs/decisions/0010-job-senders-wait.md` for the figures.
public enum JobWaitPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Suspend at once; the client's I/O thread reads the answer and resumes the sender.
    case suspend
    /// Wait on the sender's own thread for up to ``JobConnection/pollBudget``, in the mode
    /// ``JobWaitChooser`` measures faster.
    case adaptive
    /// Wait in `ppoll` only.
    case poll
    /// Wait in `recv` (after an answered poll) only.
    case receive
    /// Spin only (``JobWaitMode/spin``).
    case spin

    /// Whether a connection offers its worker a lane (``JobLane``): only a policy under which a
    /// sender may spin uses one.
    var mayUseLane: Bool { self == .adaptive || self == .spin }

    /// Overrides every client's policy in a process (benchmarks compare the policies with it).
    static let environmentVariable = "POOLTOP_JOB_WAIT"

    /// The policy to use: the environment's override, else `configured`.
    static func effective(_ configured: JobWaitPolicy) -> JobWaitPolicy {
        Posix.getenv(environmentVariable).flatMap(JobWaitPolicy.init(rawValue:)) ?? configured
    }
}

/// Three ways for a polling sender to wait for its answer. Which is faster depends on where the
/// scheduler put the sender and the worker: `ppoll` won with both on one CPU and `recv` across
/// two (`ppoll`'s timeout arms a high-resolution timer, whose programming exits to the
/// hypervisor when the CPU then idles; `recv`'s, SO_RCVTIMEO, is a timer-wheel one; the figures
/// are in decisions 0007 and 0010), and spinning across two beats both (decision 0030). None
/// wins everywhere, so ``JobWaitChooser`` measures.
enum JobWaitMode: Int, Sendable, CaseIterable {
    /// `ppoll` with the budget as its timeout, then `recv` without waiting.
    case poll
    /// `recv` that waits, for at most SO_RCVTIMEO (the budget, rounded up to whole timer ticks,
    /// milliseconds: decision 0007), so a connection uses it only while its last poll was answered.
    case receive
    /// `recv` without waiting, again and again, with `sched_yield` between tries: the sender
    /// never sleeps, so its answer needs no wake-up, which across two CPUs of a VM is most of a
    /// round trip; on one CPU the yield hands the CPU to the worker. It burns its CPU while it
    /// waits, for at most the budget, which is why a group opts in.
    case spin
}

/// Measures the wait modes and uses the fastest. Jobs go in blocks of 64 polled, answered
/// jobs in one mode; each job's cycle (from the previous answer to its own: whatever the
/// senders did between, the send and the wait) is a sample, and a block's median cycle feeds
/// that mode's running average, so an idle pause between jobs does not count against the
/// mode that happened to be in use. Each mode is tried once, in order; then the next block
/// keeps the mode in use unless another's average is 5 % lower (one noisy block should not
/// flip it), except every 16th block, which tries one of the others in turn so that a change
/// of placement shows. The cycle is the measure, not the wait alone: on one CPU the `ppoll`
/// wait is not shorter, yet the round trip is, because of how the CPU is handed back and forth.
struct JobWaitChooser: Sendable {
    static let blockSize = 64
    private(set) var mode = JobWaitMode.poll
    /// The mode chosen on merit last time (an exploring block aside).
    private var lastBest = JobWaitMode.poll
    private var lastAnswer: UInt64?
    private var cycles: [UInt64] = []
    private var blocks: UInt64 = 0
    /// Median cycle in nanoseconds, averaged over blocks, by mode; nil until the mode was tried.
    private(set) var averages: [Double?] = JobWaitMode.allCases.map { _ in nil }

    func next() -> JobWaitMode { mode }

    mutating func ended(_ used: JobWaitMode, answered: Bool, now: UInt64) {
        let previous = lastAnswer
        lastAnswer = answered ? now : nil
        // A job begun in the previous block does not count; a miss breaks the chain of cycles.
        guard used == mode, answered, let previous else { return }
        cycles.append(now &- previous)
        guard cycles.count == Self.blockSize else { return }
        cycles.sort()
        let median = Double(cycles[Self.blockSize / 2])
        cycles.removeAll(keepingCapacity: true)
        averages[mode.rawValue] = averages[mode.rawValue].map { $0 + (median - $0) / 2 } ?? median
        blocks += 1
        if let untried = JobWaitMode.allCases.first(where: { averages[$0.rawValue] == nil }) {
            mode = untried
            return
        }
        // Safe: every mode has an average from here on.
        func average(_ mode: JobWaitMode) -> Double { averages[mode.rawValue]! }
        var best = lastBest
        for candidate in JobWaitMode.allCases where average(candidate) < 0.95 * average(best) { best = candidate }
        lastBest = best
        let others = JobWaitMode.allCases.filter { $0 != best }
        mode = blocks % 16 == 0 ? others[Int(blocks / 16) % others.count] : best
    }
}

import PoolEngine

/// What the console asks the pool to do.
public enum ConsoleCommand: Hashable, Sendable {
    /// Grow or shrink a group by `delta` from its size when the command runs (not when the key was read).
    case scale(group: String, by: Int)
    case restartWorker(WorkerID)
    case restartGroup(String)
    case hardRestart
    case killWorker(WorkerID)
    case job(group: String, payload: String, priority: Int, weight: Int, count: Int)
    case stopPool
}

/// What came of a command: a sentence for the message line, and for test jobs one line per job.
public struct ConsoleOutcome: Hashable, Sendable {
    public var message: String
    public var lines: [String]

    public init(_ message: String, lines: [String] = []) {
        self.message = message
        self.lines = lines
    }
}

/// Where the console's data comes from and where its commands go: a pool hosted in this
/// process, or one running elsewhere (attached through shared memory and the control socket).
public protocol ConsoleSource: Sendable {
    var poolName: String { get }
    /// Whether quitting the console stops the pool (hosted) or only detaches (attached).
    var isHosting: Bool { get }
    /// The pool's state now; nil once it is gone.
    func snapshot() -> PoolSnapshot?
    /// The most recent events and log lines, oldest first.
    func recentEvents() -> [PoolEventRecord]
    /// These workers' histories (their log lines, spawn, ready and exit markers), oldest first:
    /// the events pane scoped to a group or a worker.
    func history(of workers: [WorkerID]) -> [PoolEventRecord]
    /// Carries out a command; what to show the operator.
    func perform(_ command: ConsoleCommand) async -> ConsoleOutcome
    /// A recording played back (`pooltop replay`); nil for a live pool.
    var replay: ReplaySource? { get }
}

extension ConsoleSource {
    public var replay: ReplaySource? { nil }

    public func history(of workers: [WorkerID]) -> [PoolEventRecord] {
        let wanted = Set(workers)
        return recentEvents().filter { $0.worker.map(wanted.contains) ?? false }
    }
}

/// Keeps what the console has seen of a stream for the events pane, as the watcher keeps it:
/// each worker's history, and the last lines of everything.
final class EventHistory: Sendable {
    private struct State {
        var log: EventLog
        /// Bumped by every record: a scoped history is merged again only when it moved.
        var version: UInt64 = 0
        var scoped: (workers: [WorkerID], version: UInt64, records: [PoolEventRecord])?
        var everything: (version: UInt64, records: [PoolEventRecord])?
    }

    private let state: Mutex<State>

    init(perWorker: Int = EventLog.defaultPerWorker) {
        state = Mutex(State(log: EventLog(perWorker: perWorker)))
    }

    func append(_ record: PoolEventRecord) {
        state.withLock { state in
            state.log.append(record)
            state.version &+= 1
        }
    }

    /// Everything kept (each worker's history and the stream's recent lines, in order), merged
    /// again only when a record arrived: the console asks every turn.
    var all: [PoolEventRecord] {
        state.withLock { state in
            if let everything = state.everything, everything.version == state.version { return everything.records }
            let records = state.log.everything
            state.everything = (state.version, records)
            return records
        }
    }

    /// Keeps `perWorker` lines a worker from now on (what it holds is kept, up to that).
    func resize(perWorker: Int) {
        state.withLock { state in
            guard state.log.perWorker != perWorker else { return }
            var log = EventLog(perWorker: perWorker)
            for record in state.log.everything { log.append(record) }
            state.log = log
            state.version &+= 1
        }
    }

    /// The console asks every turn; a group of many workers' merged history is kept until a
    /// record arrives or the scope changes.
    func history(of workers: [WorkerID]) -> [PoolEventRecord] {
        state.withLock { state in
            if let scoped = state.scoped, scoped.workers == workers, scoped.version == state.version { return scoped.records }
            let records = state.log.history(of: workers)
            state.scoped = (workers, state.version, records)
            return records
        }
    }
}

/// A pool running in this process: the console reads its shared memory and drives it directly.
public final class HostedSource: ConsoleSource {
    public let pool: WorkerPool
    private let history: EventHistory

    public init(pool: WorkerPool) {
        self.pool = pool
        history = EventHistory(perWorker: pool.configuration.logHistory)
        let stream = pool.eventRecords(replay: true)
        Task { [history] in
            for await record in stream { history.append(record) }
        }
    }

    public var poolName: String { pool.name }
    public var isHosting: Bool { true }
    public func snapshot() -> PoolSnapshot? { pool.snapshot() }
    public func recentEvents() -> [PoolEventRecord] { history.all }
    public func history(of workers: [WorkerID]) -> [PoolEventRecord] { history.history(of: workers) }

    public func perform(_ command: ConsoleCommand) async -> ConsoleOutcome {
        if case .job(let group, let payload, let priority, let weight, let count) = command {
            return await runJobs(group: group, payload: payload, priority: priority, weight: weight, count: count)
        }
        return ConsoleOutcome(await performOther(command))
    }

    private func performOther(_ command: ConsoleCommand) async -> String {
        do {
            switch command {
            case .scale(let group, let delta):
                let current = pool.snapshot()?.group(named: group)?.desired ?? 0
                try await pool.scale(.name(group), to: current + delta)
                return "group \(group): scaling to \(current + delta)"
            case .restartWorker(let id):
                try await pool.restartWorker(id)
                return "worker \(id): restarting"
            case .restartGroup(let group):
                let replaced = try await pool.rollingRestart(.name(group))
                return "group \(group): rolling restart done, \(replaced) replaced"
            case .hardRestart:
                pool.restart(.hard)
                return "hard restart of the pool"
            case .killWorker(let id):
                try await pool.killWorker(id)
                return "worker \(id): killed with SIGKILL"
            case .job:
                return "jobs run through runJobs"
            case .stopPool:
                pool.stop()
                return "stopping the pool"
            }
        } catch {
            return "refused: \(error)"
        }
    }

    private func runJobs(group: String, payload: String, priority: Int, weight: Int, count: Int) async -> ConsoleOutcome {
        let pool = self.pool
        let outcomes = await withTaskGroup(of: (Int, String, Bool).self) { tasks in
            for index in 0..<max(count, 1) {
                tasks.addTask {
                    do {
                        let result = try await pool.submitJob(Array(payload.utf8), to: .name(group), priority: priority, weight: weight)
                        return (index, "#\(index + 1) worker \(result.worker): \(result.text)  (wait \(format(result.queueWait)), run \(format(result.runTime)); \(result.pickedBecause))", true)
                    } catch {
                        return (index, "#\(index + 1) \(error)", false)
                    }
                }
            }
            var outcomes: [(Int, String, Bool)] = []
            for await outcome in tasks { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }
        }
        let failed = outcomes.filter { !$0.2 }.count
        return ConsoleOutcome(
            "\(outcomes.count) job(s) to \(group): \(outcomes.count - failed) ok, \(failed) failed", lines: outcomes.map(\.1))
    }
}

/// Short durations for the status line: 85us, 12ms, 2.5s.
func format(_ duration: Duration) -> String { Formatting.shortDuration(duration.seconds) }

import PoolEngine
import Synchronization

/// A pool running elsewhere: its state from shared memory (read-only), its events and its
/// commands through the control socket. Detaching never touches the pool.
public final class AttachedSource: ConsoleSource {
    public let poolName: String
    private let reader = Locked<PoolStateReader?>(nil)
    private let history = EventHistory()
    private let streaming = Locked(false)

    public init(pool: String) {
        poolName = pool
    }

    public var isHosting: Bool { false }

    public func snapshot() -> PoolSnapshot? {
        let reader = self.reader.withLock { reader -> PoolStateReader? in
            if reader == nil { reader = try? PoolStateReader(pool: poolName) }
            return reader
        }
        guard let reader else { return nil }
        let snapshot = reader.snapshot()
        // The watcher marks the segment stopped as it exits; a new pool of the same name has a new segment.
        if snapshot.pool.state == .stopped || !RuntimeDirectory.isRunning(pool: poolName) {
            self.reader.withLock { $0 = nil }
            return nil
        }
        startEventsIfNeeded()
        return snapshot
    }

    public func recentEvents() -> [PoolEventRecord] { history.all }
    public func history(of workers: [WorkerID]) -> [PoolEventRecord] { history.history(of: workers) }

    /// Follows the control socket's event stream on a thread of its own: the client blocks in
    /// `recv` for as long as the pool runs, which on one of Swift concurrency's few pool threads
    /// would take it from every task of the console.
    private func startEventsIfNeeded() {
        let start = streaming.withLock { streaming -> Bool in
            defer { streaming = true }
            return !streaming
        }
        guard start else { return }
        let pool = poolName
        let history = self.history
        let streaming = self.streaming
        let follow: @Sendable () -> Void = {
            defer { streaming.withLock { $0 = false } }
            guard let client = try? ControlClient(pool: pool),
                let acknowledgement = try? client.request(["command": .string("events")]), acknowledgement["ok"]?.bool == true
            else { return }
            // The pool's own history size: an attached console keeps what a hosting one would.
            if let perWorker = acknowledgement["logHistory"]?.integer { history.resize(perWorker: perWorker) }
            while let line = try? client.readLine() {
                if let record = PoolEventRecord(line: line) { history.append(record) }
                if line["type"]?.string == "end" { return }
            }
        }
        do {
            try DedicatedThread.start(name: "pooltop-events", follow)
        } catch {
            // No thread to be had: the next snapshot tries again.
            streaming.withLock { $0 = false }
        }
    }

    public func perform(_ command: ConsoleCommand) async -> ConsoleOutcome {
        let pool = poolName
        var request: [String: JSONValue]
        switch command {
        case .scale(let group, let delta):
            let current = snapshot()?.group(named: group)?.desired ?? 0
            request = ["command": .string("scale"), "group": .string(group), "workers": .number(Double(current + delta))]
        case .restartWorker(let id):
            request = ["command": .string("restart"), "worker": .number(Double(id.rawValue))]
        case .restartGroup(let group):
            request = ["command": .string("restart"), "group": .string(group), "mode": .string("rolling")]
        case .hardRestart:
            request = ["command": .string("restart"), "mode": .string("hard")]
        case .killWorker(let id):
            request = ["command": .string("kill"), "worker": .number(Double(id.rawValue))]
        case .job(let group, let payload, let priority, let weight, let count):
            request = [
                "command": .string("job"), "group": .string(group), "payload": .string(payload), "count": .number(Double(count)),
                "priority": .number(Double(priority)), "weight": .number(Double(weight)),
            ]
        case .stopPool:
            request = ["command": .string("stop")]
        }
        return await Task.detached { () -> ConsoleOutcome in
            do {
                let response = try ControlClient(pool: pool).request(request)
                guard response["ok"]?.bool == true else { return ConsoleOutcome("refused: \(response["error"]?.string ?? "")") }
                if let jobs = response["jobs"]?.array {
                    let lines = jobs.map { job in
                        let index = (job["index"]?.integer ?? 0) + 1
                        if job["ok"]?.bool == true {
                            let wait = Formatting.shortDuration(job["queueWaitSeconds"]?.number ?? 0)
                            let run = Formatting.shortDuration(job["runSeconds"]?.number ?? 0)
                            return "#\(index) worker \(job["worker"]?.integer ?? 0): \(job["result"]?.string ?? "")  (wait \(wait), run \(run); \(job["pickedBecause"]?.string ?? ""))"
                        }
                        return "#\(index) \(job["code"]?.string ?? "error"): \(job["error"]?.string ?? "")"
                    }
                    let failed = jobs.filter { $0["ok"]?.bool != true }.count
                    return ConsoleOutcome("\(jobs.count) job(s): \(jobs.count - failed) ok, \(failed) failed", lines: lines)
                }
                return ConsoleOutcome("done")
            } catch {
                return ConsoleOutcome("\(error)")
            }
        }.value
    }
}

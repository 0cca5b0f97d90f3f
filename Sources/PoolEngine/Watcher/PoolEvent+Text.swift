// Events as one line of text (`pooltop logs`, the log file), and read back from the control
// protocol's JSON (`pooltop logs`, an attached console).
extension PoolEventRecord {
    /// The event in words, without its time: `worker 3 (jobs) exited (crash, code 1): boom`.
    public var text: String {
        func subject(_ id: WorkerID, _ group: String) -> String { "worker \(id) (\(group))" }
        switch event {
        case .workerLog(let id, let group, let log):
            return "\(subject(id, group)) \(log.level): \(log.message)"
        case .workerStarting(let id, let group, let pid, _):
            return "\(subject(id, group)) starting, pid \(pid)"
        case .workerReady(let id, let group, let pid, _):
            return "\(subject(id, group)) ready, pid \(pid)"
        case .workerStopRequested(let id, let group, let reason):
            return "\(subject(id, group)) asked to stop (\(reason.rawValue))"
        case .workerKilled(let id, let group, let pid, let why):
            return "\(subject(id, group)) pid \(pid) killed: \(why)"
        case .workerExited(let exit):
            let status: String
            switch exit.status {
            case .exited(let code)?: status = "code \(code)"
            case .signaled(let signal)?: status = "signal \(signal)"
            case nil: status = "not started"
            }
            return "\(subject(exit.id, exit.group)) exited (\(exit.reason.rawValue), \(status))" + (exit.message.map { ": \($0)" } ?? "")
        case .workerBackingOff(let id, let group, let delay):
            return "\(subject(id, group)) restarts in \(DurationParser.format(delay))"
        case .workerFailed(let id, let group, let why):
            return "\(subject(id, group)) will not be restarted: \(why)"
        case .workerSpawnFailed(let id, let group, let error):
            return "\(subject(id, group)) could not be spawned: \(error)"
        case .workerHung(let id, let group, let pid, let why):
            return "\(subject(id, group)) pid \(pid) \(why): capturing its backtrace, then killing it"
        case .workerBacktrace(let id, let group, let pid, let backtrace):
            // The frames one per line, indented under the worker they belong to.
            let frames = backtrace.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
            return "\(subject(id, group)) pid \(pid) backtrace:\n\(frames)"
        case .groupScaled(let group, let from, let to):
            return "group \(group) scaled from \(from) to \(to)"
        case .groupRolling(let group, let progress):
            return "group \(group) \(progress.description)"
        case .groupWaiting(let group, let waitingFor):
            return "group \(group) waits for \(waitingFor)"
        case .poolApplied(let changes):
            return "pool configuration applied: \(PoolChange.summary(changes))"
        case .poolRestarting(let hard):
            return "pool restarting (\(hard ? "hard" : "soft"))"
        case .poolStopping(let reason):
            return "pool stopping: \(reason)"
        }
    }

    /// The level the line is written at: a log line's own; an exit that was not asked for, a
    /// hang, a failure, an error; a kill or a backoff, a warning; anything else, info.
    public var level: String {
        switch event {
        case .workerLog(_, _, let log): return log.level
        case .workerExited(let exit): return ExitReason.expected.contains(exit.reason) ? "info" : "error"
        case .workerHung, .workerBacktrace, .workerFailed, .workerSpawnFailed: return "error"
        case .workerKilled, .workerBackingOff: return "warning"
        case .groupWaiting, .poolApplied, .poolRestarting, .poolStopping: return "notice"
        default: return "info"
        }
    }

    /// Reads an event line of the control protocol's `events` stream back (the `poolApplied`
    /// changes come back as their summary, in a notice line).
    public init?(line: JSONValue) {
        guard let at = line["at"]?.number, let type = line["type"]?.string else { return nil }
        let worker = WorkerID(line["worker"]?.integer ?? 0)
        let group = line["group"]?.string ?? ""
        let pid = Int32(line["pid"]?.integer ?? 0)
        let why = line["why"]?.string ?? ""
        let event: PoolEvent
        switch type {
        case "worker-log":
            event = .workerLog(
                worker, group: group,
                record: LogRecord(level: line["level"]?.string ?? "info", message: line["message"]?.string ?? "", timestamp: at))
        case "worker-starting":
            event = .workerStarting(worker, group: group, pid: pid, generation: line["generation"]?.integer ?? 0)
        case "worker-ready":
            event = .workerReady(worker, group: group, pid: pid, startup: .seconds(line["startupSeconds"]?.number ?? 0))
        case "worker-stop-requested":
            event = .workerStopRequested(worker, group: group, reason: ExitReason(rawValue: line["reason"]?.string ?? "") ?? .stopped)
        case "worker-killed":
            event = .workerKilled(worker, group: group, pid: pid, why: why)
        case "worker-exited":
            let status: TerminationStatus? =
                line["signal"]?.integer.map { .signaled(Int32($0)) } ?? line["code"]?.integer.map { .exited(Int32($0)) }
            event = .workerExited(
                WorkerExitRecord(
                    id: worker, group: group, pid: pid, status: status,
                    reason: ExitReason(rawValue: line["reason"]?.string ?? "") ?? .crash, message: line["message"]?.string,
                    uptime: .seconds(line["uptimeSeconds"]?.number ?? 0)))
        case "worker-backing-off":
            event = .workerBackingOff(worker, group: group, delay: .seconds(line["delaySeconds"]?.number ?? 0))
        case "worker-failed":
            event = .workerFailed(worker, group: group, why: why)
        case "worker-spawn-failed":
            event = .workerSpawnFailed(worker, group: group, error: line["error"]?.string ?? "")
        case "worker-hung":
            event = .workerHung(worker, group: group, pid: pid, why: why)
        case "worker-backtrace":
            event = .workerBacktrace(worker, group: group, pid: pid, backtrace: line["backtrace"]?.string ?? "")
        case "group-scaled":
            event = .groupScaled(group: group, from: line["from"]?.integer ?? 0, to: line["to"]?.integer ?? 0)
        case "group-waiting":
            event = .groupWaiting(group: group, for: why)
        case "group-rolling":
            guard let progress = RollingRestartProgress(event: line) else { return nil }
            event = .groupRolling(group: group, progress)
        case "pool-applied":
            event = .workerLog(
                worker, group: group,
                record: LogRecord(level: "notice", message: "configuration applied: \(line["message"]?.string ?? "")", timestamp: at))
        case "pool-restarting":
            event = .poolRestarting(hard: line["hard"]?.bool ?? false)
        case "pool-stopping":
            event = .poolStopping(reason: why)
        default:
            // A newer watcher's event: its type, so nothing is silently dropped.
            event = .workerLog(worker, group: group, record: LogRecord(level: "info", message: type, timestamp: at))
        }
        self.init(at: at, event: event)
    }
}

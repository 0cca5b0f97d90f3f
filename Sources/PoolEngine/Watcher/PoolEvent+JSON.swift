/// A pool event with the time it happened: what `events` subscribers and the control
/// socket's `events` stream carry. Its JSON is flat: `{"at", "type", "worker", "group", …}`.
public struct PoolEventRecord: Hashable, Sendable, Encodable {
    /// Seconds since the epoch.
    public var at: Double
    public var event: PoolEvent

    public init(at: Double, event: PoolEvent) {
        self.at = at
        self.event = event
    }

    /// The event's type as the protocol names it, for example `worker-exited`.
    public var type: String {
        switch event {
        case .workerStarting: return "worker-starting"
        case .workerReady: return "worker-ready"
        case .workerStopRequested: return "worker-stop-requested"
        case .workerKilled: return "worker-killed"
        case .workerExited: return "worker-exited"
        case .workerBackingOff: return "worker-backing-off"
        case .workerFailed: return "worker-failed"
        case .workerSpawnFailed: return "worker-spawn-failed"
        case .workerHung: return "worker-hung"
        case .workerBacktrace: return "worker-backtrace"
        case .groupScaled: return "group-scaled"
        case .groupRolling: return "group-rolling"
        case .groupWaiting: return "group-waiting"
        case .poolApplied: return "pool-applied"
        case .poolRestarting: return "pool-restarting"
        case .poolStopping: return "pool-stopping"
        case .workerLog: return "worker-log"
        }
    }

    private enum Keys: String, CodingKey {
        case at, type, worker, group, pid, generation, startupSeconds, reason, why, status, code, signal
        case message, uptimeSeconds, delaySeconds, error, from, to, hard, level, metadata
        case step, replacement, replaced, total, changes, backtrace
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(at, forKey: .at)
        try container.encode(type, forKey: .type)
        switch event {
        case .workerStarting(let id, let group, let pid, let generation):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(pid, forKey: .pid)
            try container.encode(generation, forKey: .generation)
        case .workerReady(let id, let group, let pid, let startup):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(pid, forKey: .pid)
            try container.encode(startup.seconds, forKey: .startupSeconds)
        case .workerStopRequested(let id, let group, let reason):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(reason, forKey: .reason)
        case .workerKilled(let id, let group, let pid, let why):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(pid, forKey: .pid)
            try container.encode(why, forKey: .why)
        case .workerExited(let exit):
            try container.encode(exit.id, forKey: .worker)
            try container.encode(exit.group, forKey: .group)
            try container.encode(exit.pid, forKey: .pid)
            try container.encode(exit.reason, forKey: .reason)
            try container.encodeExit(exit.status, status: .status, code: .code, signal: .signal)
            try container.encodeIfPresent(exit.message, forKey: .message)
            try container.encode(exit.uptime.seconds, forKey: .uptimeSeconds)
        case .workerBackingOff(let id, let group, let delay):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(delay.seconds, forKey: .delaySeconds)
        case .workerFailed(let id, let group, let why):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(why, forKey: .why)
        case .workerSpawnFailed(let id, let group, let error):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(error, forKey: .error)
        case .workerHung(let id, let group, let pid, let why):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(pid, forKey: .pid)
            try container.encode(why, forKey: .why)
        case .workerBacktrace(let id, let group, let pid, let backtrace):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(pid, forKey: .pid)
            try container.encode(backtrace, forKey: .backtrace)
        case .groupScaled(let group, let from, let to):
            try container.encode(group, forKey: .group)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
        case .groupRolling(let group, let progress):
            try container.encode(group, forKey: .group)
            switch progress {
            case .started(let workers):
                try container.encode("started", forKey: .step)
                try container.encode(0, forKey: .replaced)
                try container.encode(workers, forKey: .total)
            case .replaced(let worker, let replacement, let done, let total):
                try container.encode("replaced", forKey: .step)
                try container.encode(worker, forKey: .worker)
                try container.encode(replacement, forKey: .replacement)
                try container.encode(done, forKey: .replaced)
                try container.encode(total, forKey: .total)
            case .finished(let replaced):
                try container.encode("finished", forKey: .step)
                try container.encode(replaced, forKey: .replaced)
            case .failed(let replaced, let total, let why):
                try container.encode("failed", forKey: .step)
                try container.encode(replaced, forKey: .replaced)
                try container.encode(total, forKey: .total)
                try container.encode(why, forKey: .why)
            }
        case .groupWaiting(let group, let waitingFor):
            try container.encode(group, forKey: .group)
            try container.encode(waitingFor, forKey: .why)
        case .poolApplied(let changes):
            try container.encode(changes, forKey: .changes)
            try container.encode(PoolChange.summary(changes), forKey: .message)
        case .poolRestarting(let hard):
            try container.encode(hard, forKey: .hard)
        case .poolStopping(let reason):
            try container.encode(reason, forKey: .why)
        case .workerLog(let id, let group, let record):
            try container.encode(id, forKey: .worker)
            try container.encode(group, forKey: .group)
            try container.encode(record.level, forKey: .level)
            try container.encode(record.message, forKey: .message)
            if !record.metadata.isEmpty { try container.encode(record.metadata, forKey: .metadata) }
        }
    }
}

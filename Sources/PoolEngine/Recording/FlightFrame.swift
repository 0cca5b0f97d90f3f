/// One second of a pool as the flight recorder keeps it: the whole state shared memory showed
/// (every group and slot, with counters, RSS, CPU and current job) and the events and log lines
/// since the frame before.
public struct FlightFrame: Hashable, Sendable {
    public var snapshot: PoolSnapshot
    public var events: [PoolEventRecord]
    /// Events of that second left out to keep the frame within ``FlightFrame/eventLimit``.
    public var droppedEvents: Int

    public init(snapshot: PoolSnapshot, events: [PoolEventRecord], droppedEvents: Int = 0) {
        self.snapshot = snapshot
        self.events = events
        self.droppedEvents = droppedEvents
    }

    /// Events kept per frame: a worker that logs thousands of lines a second must not make
    /// each frame huge (and the ring short); what is left out is counted.
    public static let eventLimit = 200
    /// Longest text kept of a log line or reason; a backtrace may be longer.
    static let textLimit = 1024
    static let backtraceLimit = 16 * 1024
}

/// Problems reading a recording: the file, frame and field that could not be read.
public struct FlightRecordingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Encoding

extension FlightFrame {
    /// The frame's bytes (the recording's payload of one frame). Times are kept as microseconds before the frame's own time (most are
    /// recent: two or three bytes), counters as varints.
    public func encoded() -> [UInt8] {
        var out = ByteWriter(capacity: 256 + snapshot.workers.count * 72)
        let base = snapshot.takenAt
        // Events first: the replay's events pane reads many frames' events and no more.
        out.unsigned(droppedEvents)
        out.unsigned(events.count)
        for record in events { Self.event(&out, record, base: base) }
        let pool = snapshot.pool
        out.unsigned(pool.state.rawValue)
        out.unsigned(UInt64(UInt32(bitPattern: pool.pid)))
        out.signed(Self.microseconds(base - pool.startedAt))
        out.unsigned(pool.restarts.hard)
        out.unsigned(pool.restarts.soft)
        out.unsigned(snapshot.groups.count)
        for group in snapshot.groups {
            out.unsigned(group.id)
            out.string(group.name, limit: 256)
            out.unsigned(SharedCodes.code(group.kind))
            for figure in [group.min, group.max, group.desired, group.running, group.ready, group.scalingEvents, group.pickupMisses] {
                out.unsigned(figure)
            }
            out.optionalString(group.waitingFor, limit: 512)
            out.optionalString(group.definition, limit: 64)
        }
        out.unsigned(snapshot.workers.count)
        for worker in snapshot.workers {
            out.unsigned(worker.id.rawValue)
            out.unsigned(worker.groupID)
            out.unsigned(UInt64(UInt32(bitPattern: worker.pid)))
            out.unsigned(SharedCodes.code(worker.state))
            out.unsigned(worker.generation)
            out.unsigned(worker.restarts)
            for time in [worker.firstStartedAt, worker.startedAt, worker.readyAt, worker.finishedAt, worker.backoffUntil] {
                Self.time(&out, time, base: base)
            }
            if let exit = worker.lastExit {
                out.byte(exit.signal != nil ? 2 : exit.code != nil ? 1 : 3)
                out.signed(Int64(exit.signal ?? exit.code ?? 0))
                out.unsigned(SharedCodes.code(exit.reason))
                Self.time(&out, exit.at, base: base)
            } else {
                out.byte(0)
            }
            let a = worker.activity
            for counter in [
                a.jobsAccepted, a.jobsProcessed, a.jobsErrors, a.jobsRejected, a.jobsInFlight, a.inFlightWeight,
                a.connectionsAccepted, a.connectionsProcessed, a.connectionsErrors, a.connectionsActive, a.currentJobID,
                a.jobsProcessedBeforeStart,
            ] {
                out.unsigned(counter)
            }
            Self.time(&out, a.currentJobSince == 0 ? nil : Double(a.currentJobSince) / 1e9, base: base)
            Self.time(&out, a.lastUpdate == 0 ? nil : Double(a.lastUpdate) / 1e9, base: base)
            out.unsigned(worker.rssBytes)
            out.unsigned(UInt64(max(0, worker.cpuSeconds * 1e6).rounded()))
            out.unsigned(worker.exits.count)
            for (reason, count) in worker.exits.sorted(by: { SharedCodes.code($0.key) < SharedCodes.code($1.key) }) {
                out.unsigned(SharedCodes.code(reason))
                out.unsigned(count)
            }
            Self.histogram(&out, worker.queueWait)
            Self.histogram(&out, worker.runTime)
        }
        return out.bytes
    }

    static func microseconds(_ seconds: Double) -> Int64 {
        let value = (seconds * 1e6).rounded()
        return value.isFinite ? Int64(max(min(value, 9e15), -9e15)) : 0
    }

    private static func time(_ out: inout ByteWriter, _ time: Double?, base: Double) {
        out.optionalSigned(time.map { microseconds(base - $0) })
    }

    private static func histogram(_ out: inout ByteWriter, _ histogram: LatencyHistogram) {
        out.unsigned(histogram.count)
        guard histogram.count > 0 else { return }
        out.unsigned(histogram.sumNanoseconds)
        let used = histogram.buckets.indices.filter { histogram.buckets[$0] > 0 }
        out.unsigned(used.count)
        for index in used {
            out.unsigned(index)
            out.unsigned(histogram.buckets[index])
        }
    }

    private static func event(_ out: inout ByteWriter, _ record: PoolEventRecord, base: Double) {
        out.signed(microseconds(base - record.at))
        func worker(_ id: WorkerID, _ group: String) {
            out.unsigned(id.rawValue)
            out.string(group, limit: 256)
        }
        switch record.event {
        case .workerStarting(let id, let group, let pid, let generation):
            out.byte(1)
            worker(id, group)
            out.signed(Int64(pid))
            out.unsigned(generation)
        case .workerReady(let id, let group, let pid, let startup):
            out.byte(2)
            worker(id, group)
            out.signed(Int64(pid))
            out.signed(microseconds(startup.seconds))
        case .workerStopRequested(let id, let group, let reason):
            out.byte(3)
            worker(id, group)
            out.unsigned(SharedCodes.code(reason))
        case .workerKilled(let id, let group, let pid, let why):
            out.byte(4)
            worker(id, group)
            out.signed(Int64(pid))
            out.string(why, limit: textLimit)
        case .workerExited(let exit):
            out.byte(5)
            worker(exit.id, exit.group)
            out.signed(Int64(exit.pid))
            switch exit.status {
            case nil: out.byte(0)
            case .exited(let code)?:
                out.byte(1)
                out.signed(Int64(code))
            case .signaled(let signal)?:
                out.byte(2)
                out.signed(Int64(signal))
            }
            out.unsigned(SharedCodes.code(exit.reason))
            out.optionalString(exit.message, limit: textLimit)
            out.signed(microseconds(exit.uptime.seconds))
        case .workerBackingOff(let id, let group, let delay):
            out.byte(6)
            worker(id, group)
            out.signed(microseconds(delay.seconds))
        case .workerFailed(let id, let group, let why):
            out.byte(7)
            worker(id, group)
            out.string(why, limit: textLimit)
        case .workerSpawnFailed(let id, let group, let error):
            out.byte(8)
            worker(id, group)
            out.string(error, limit: textLimit)
        case .workerHung(let id, let group, let pid, let why):
            out.byte(9)
            worker(id, group)
            out.signed(Int64(pid))
            out.string(why, limit: textLimit)
        case .workerBacktrace(let id, let group, let pid, let backtrace):
            out.byte(10)
            worker(id, group)
            out.signed(Int64(pid))
            out.string(backtrace, limit: backtraceLimit)
        case .groupScaled(let group, let from, let to):
            out.byte(11)
            out.string(group, limit: 256)
            out.unsigned(from)
            out.unsigned(to)
        case .groupRolling(let group, let progress):
            out.byte(12)
            out.string(group, limit: 256)
            switch progress {
            case .started(let workers):
                out.byte(0)
                out.unsigned(workers)
            case .replaced(let worker, let by, let done, let total):
                out.byte(1)
                for figure in [worker.rawValue, by.rawValue, done, total] { out.unsigned(figure) }
            case .finished(let replaced):
                out.byte(2)
                out.unsigned(replaced)
            case .failed(let replaced, let total, let why):
                out.byte(3)
                out.unsigned(replaced)
                out.unsigned(total)
                out.string(why, limit: textLimit)
            }
        case .groupWaiting(let group, let waitingFor):
            out.byte(13)
            out.string(group, limit: 256)
            out.string(waitingFor, limit: textLimit)
        case .poolApplied(let changes):
            // Kept as the line the console shows; the changes themselves are in the log.
            out.byte(14)
            out.string(PoolChange.summary(changes), limit: textLimit)
        case .poolRestarting(let hard):
            out.byte(15)
            out.byte(hard ? 1 : 0)
        case .poolStopping(let reason):
            out.byte(16)
            out.string(reason, limit: textLimit)
        case .workerLog(let id, let group, let log):
            out.byte(17)
            worker(id, group)
            out.string(log.level, limit: 16)
            out.string(log.message, limit: textLimit)
            out.signed(microseconds(base - log.timestamp))
            out.unsigned(log.metadata.count)
            for (key, value) in log.metadata.sorted(by: { $0.key < $1.key }) {
                out.string(key, limit: 128)
                out.string(value, limit: 512)
            }
        }
    }
}

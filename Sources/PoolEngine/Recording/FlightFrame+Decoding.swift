// Reading a frame back: what ``FlightFrame/encoded()`` wrote, every field checked for truncation.
extension FlightFrame {
    /// Reads a frame written by ``encoded()``, taken at `takenAt`, of pool `name`.
    static func decode(_ bytes: ArraySlice<UInt8>, takenAt base: Double, name: String) throws(ByteReader.Malformed) -> FlightFrame {
        var input = ByteReader(bytes)
        let (events, dropped) = try decodeEvents(&input, base: base)
        let state = PoolRunState(rawValue: try input.unsigned("pool state")) ?? .running
        let pid = Int32(truncatingIfNeeded: try input.unsigned("watcher pid"))
        let startedAt = base - Double(try input.signed("pool start")) / 1e6
        let hard = try input.int("hard restarts")
        let soft = try input.int("soft restarts")
        let pool = PoolSnapshot.PoolInfo(
            name: name, pid: pid, startedAt: startedAt, uptimeSeconds: base - startedAt,
            restarts: PoolSnapshot.RestartCounts(hard: hard, soft: soft), state: state)
        let groupCount = try input.int("group count")
        var groups: [GroupSnapshot] = []
        var names: [Int: String] = [:]
        for _ in 0..<min(groupCount, 1 << 16) {
            let id = try input.int("group id")
            let name = try input.string("group name")
            let kind = SharedCodes.kind(try input.unsigned("group kind")) ?? .service
            var figures: [Int] = []
            for field in ["min", "max", "desired", "running", "ready", "scaling events", "pickup misses"] {
                figures.append(try input.int("group \(field)"))
            }
            var group = GroupSnapshot(
                id: id, name: name, kind: kind, min: figures[0], max: figures[1], desired: figures[2], running: figures[3],
                ready: figures[4], scalingEvents: figures[5], pickupMisses: figures[6])
            group.waitingFor = try input.optionalString("group waiting for")
            group.definition = try input.optionalString("group definition")
            names[id] = name
            groups.append(group)
        }
        let workerCount = try input.int("worker count")
        var workers: [WorkerSnapshot] = []
        workers.reserveCapacity(min(workerCount, 1 << 16))
        for _ in 0..<min(workerCount, 1 << 16) {
            let id = WorkerID(try input.int("worker id"))
            let groupID = try input.int("worker group")
            let pid = Int32(truncatingIfNeeded: try input.unsigned("worker pid"))
            let state = SharedCodes.state(try input.unsigned("worker state"))
            let generation = try input.int("worker generation")
            let restarts = try input.int("worker restarts")
            var times: [Double?] = []
            for field in ["first start", "start", "ready", "finish", "backoff"] { times.append(try time(&input, base: base, field)) }
            var lastExit: WorkerSnapshot.ExitSnapshot?
            let exitKind = try input.byte("exit kind")
            if exitKind != 0 {
                let value = Int32(truncatingIfNeeded: try input.signed("exit status"))
                let reason = SharedCodes.reason(try input.unsigned("exit reason")) ?? .crash
                let at = try time(&input, base: base, "exit time") ?? base
                lastExit = WorkerSnapshot.ExitSnapshot(
                    status: exitKind == 1 ? "exited" : exitKind == 2 ? "signaled" : "none", code: exitKind == 1 ? value : nil,
                    signal: exitKind == 2 ? value : nil, reason: reason, at: at)
            }
            var a = WorkerActivity()
            a.jobsAccepted = try input.unsigned("jobs accepted")
            a.jobsProcessed = try input.unsigned("jobs processed")
            a.jobsErrors = try input.unsigned("job errors")
            a.jobsRejected = try input.unsigned("jobs rejected")
            a.jobsInFlight = try input.unsigned("jobs in flight")
            a.inFlightWeight = try input.unsigned("weight in flight")
            a.connectionsAccepted = try input.unsigned("connections accepted")
            a.connectionsProcessed = try input.unsigned("connections processed")
            a.connectionsErrors = try input.unsigned("connection errors")
            a.connectionsActive = try input.unsigned("connections active")
            a.currentJobID = try input.unsigned("current job")
            a.jobsProcessedBeforeStart = try input.unsigned("jobs before start")
            a.currentJobSince = try time(&input, base: base, "current job start").map { UInt64(max(0, $0 * 1e9)) } ?? 0
            a.lastUpdate = try time(&input, base: base, "last update").map { UInt64(max(0, $0 * 1e9)) } ?? 0
            let rss = try input.unsigned("rss")
            let cpu = Double(try input.unsigned("cpu")) / 1e6
            var worker = WorkerSnapshot(
                id: id, group: names[groupID] ?? "", groupID: groupID, pid: pid, state: state, generation: generation,
                restarts: restarts, firstStartedAt: times[0], startedAt: times[1], readyAt: times[2], finishedAt: times[3],
                backoffUntil: times[4], lastExit: lastExit, activity: a, rssBytes: rss, cpuSeconds: cpu)
            for _ in 0..<min(try input.int("exit reasons"), 64) {
                let reason = SharedCodes.reason(try input.unsigned("exit reason"))
                let count = try input.int("exit count")
                if let reason { worker.exits[reason] = count }
            }
            worker.queueWait = try histogram(&input, "queue wait")
            worker.runTime = try histogram(&input, "run time")
            workers.append(worker)
        }
        return FlightFrame(snapshot: PoolSnapshot(pool: pool, groups: groups, workers: workers, takenAt: base), events: events, droppedEvents: dropped)
    }

    /// Only a frame's events, and how many were left out: what the events pane needs of the
    /// frames before the one shown.
    static func decodeEvents(_ bytes: ArraySlice<UInt8>, takenAt base: Double) throws(ByteReader.Malformed) -> [PoolEventRecord] {
        var input = ByteReader(bytes)
        return try decodeEvents(&input, base: base).events
    }

    private static func decodeEvents(_ input: inout ByteReader, base: Double) throws(ByteReader.Malformed) -> (events: [PoolEventRecord], dropped: Int) {
        let dropped = try input.int("dropped events")
        let eventCount = try input.int("event count")
        var events: [PoolEventRecord] = []
        for _ in 0..<min(eventCount, eventLimit) {
            if let record = try event(&input, base: base) { events.append(record) }
        }
        return (events, dropped)
    }

    private static func time(_ input: inout ByteReader, base: Double, _ field: String) throws(ByteReader.Malformed) -> Double? {
        try input.optionalSigned(field).map { base - Double($0) / 1e6 }
    }

    private static func histogram(_ input: inout ByteReader, _ field: String) throws(ByteReader.Malformed) -> LatencyHistogram {
        var histogram = LatencyHistogram()
        histogram.count = try input.unsigned("\(field) count")
        guard histogram.count > 0 else { return histogram }
        histogram.sumNanoseconds = try input.unsigned("\(field) sum")
        histogram.buckets = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
        for _ in 0..<min(try input.int("\(field) buckets"), LatencyHistogram.bucketCount) {
            let index = try input.int("\(field) bucket")
            let count = try input.unsigned("\(field) bucket count")
            if histogram.buckets.indices.contains(index) { histogram.buckets[index] = count }
        }
        return histogram
    }

    /// An event; nil for a kind this build does not know (a newer recorder's), which is skipped
    /// only if it is the last: its length is not recorded, so the rest of the frame is dropped.
    private static func event(_ input: inout ByteReader, base: Double) throws(ByteReader.Malformed) -> PoolEventRecord? {
        let at = base - Double(try input.signed("event time")) / 1e6
        let kind = try input.byte("event kind")
        func worker() throws(ByteReader.Malformed) -> (WorkerID, String) {
            (WorkerID(try input.int("event worker")), try input.string("event group"))
        }
        func pid() throws(ByteReader.Malformed) -> Int32 { Int32(truncatingIfNeeded: try input.signed("event pid")) }
        func seconds(_ field: String) throws(ByteReader.Malformed) -> Duration {
            .microseconds(try input.signed(field))
        }
        let event: PoolEvent
        switch kind {
        case 1:
            let (id, group) = try worker()
            event = .workerStarting(id, group: group, pid: try pid(), generation: try input.int("generation"))
        case 2:
            let (id, group) = try worker()
            event = .workerReady(id, group: group, pid: try pid(), startup: try seconds("startup"))
        case 3:
            let (id, group) = try worker()
            event = .workerStopRequested(id, group: group, reason: SharedCodes.reason(try input.unsigned("reason")) ?? .crash)
        case 4:
            let (id, group) = try worker()
            event = .workerKilled(id, group: group, pid: try pid(), why: try input.string("why"))
        case 5:
            let (id, group) = try worker()
            let pid = try pid()
            let status: TerminationStatus?
            switch try input.byte("exit status kind") {
            case 1: status = .exited(Int32(truncatingIfNeeded: try input.signed("exit code")))
            case 2: status = .signaled(Int32(truncatingIfNeeded: try input.signed("exit signal")))
            default: status = nil
            }
            let reason = SharedCodes.reason(try input.unsigned("exit reason")) ?? .crash
            let message = try input.optionalString("exit message")
            event = .workerExited(
                WorkerExitRecord(
                    id: id, group: group, pid: pid, status: status, reason: reason, message: message, uptime: try seconds("uptime")))
        case 6:
            let (id, group) = try worker()
            event = .workerBackingOff(id, group: group, delay: try seconds("delay"))
        case 7:
            let (id, group) = try worker()
            event = .workerFailed(id, group: group, why: try input.string("why"))
        case 8:
            let (id, group) = try worker()
            event = .workerSpawnFailed(id, group: group, error: try input.string("error"))
        case 9:
            let (id, group) = try worker()
            event = .workerHung(id, group: group, pid: try pid(), why: try input.string("why"))
        case 10:
            let (id, group) = try worker()
            event = .workerBacktrace(id, group: group, pid: try pid(), backtrace: try input.string("backtrace"))
        case 11:
            event = .groupScaled(group: try input.string("group"), from: try input.int("from"), to: try input.int("to"))
        case 12:
            let group = try input.string("group")
            let progress: RollingRestartProgress
            switch try input.byte("rolling step") {
            case 0: progress = .started(workers: try input.int("workers"))
            case 1:
                progress = .replaced(
                    WorkerID(try input.int("worker")), by: WorkerID(try input.int("replacement")), done: try input.int("done"),
                    of: try input.int("total"))
            case 2: progress = .finished(replaced: try input.int("replaced"))
            default:
                progress = .failed(replaced: try input.int("replaced"), of: try input.int("total"), why: try input.string("why"))
            }
            event = .groupRolling(group: group, progress)
        case 13:
            event = .groupWaiting(group: try input.string("group"), for: try input.string("waiting for"))
        case 14:
            event = .workerLog(
                WorkerID(0), group: "",
                record: LogRecord(level: "notice", message: "configuration applied: \(try input.string("summary"))", timestamp: at))
        case 15:
            event = .poolRestarting(hard: try input.byte("hard") == 1)
        case 16:
            event = .poolStopping(reason: try input.string("reason"))
        case 17:
            let (id, group) = try worker()
            let level = try input.string("level")
            let message = try input.string("message")
            let timestamp = base - Double(try input.signed("log time")) / 1e6
            var metadata: [String: String] = [:]
            for _ in 0..<min(try input.int("metadata count"), 256) {
                let key = try input.string("metadata key")
                metadata[key] = try input.string("metadata value")
            }
            event = .workerLog(id, group: group, record: LogRecord(level: level, message: message, metadata: metadata, timestamp: timestamp))
        default:
            throw ByteReader.Malformed(field: "an event of unknown kind \(kind)")
        }
        return PoolEventRecord(at: at, event: event)
    }
}

import Synchronization
/// Reads a pool's shared memory, read-only, from any process of the same user.
///
/// Keep one reader to take snapshots repeatedly (the console does, once a second);
/// ``PoolSnapshot/read(pool:)`` opens, reads once and closes.
public final class PoolStateReader: Sendable {
    let segment: SharedSegment
    /// The storage of the last records copy, reused once that copy is gone (``records()``).
    let recycledWords = Mutex<RecordWords?>(nil)
    /// Checked once when the segment was opened, and kept by it.
    private var geometry: SharedSegment.Geometry { segment.geometry }

    /// The POSIX shared-memory name of this user's pool `pool` (on Linux, a file of that name in `/dev/shm`).
    public static func segmentName(pool: String) -> String { SharedLayout.segmentName(pool: pool, uid: Posix.userID) }

    /// Maps the running pool `pool`'s segment read-only.
    /// - Throws: ``SharedStateError`` `.notFound` when no pool of this name runs for this user.
    public init(pool: String) throws {
        let name = Self.segmentName(pool: pool)
        do {
            segment = try SharedSegment.open(name: name, writable: false)
        } catch let error as SystemCallError where error.isNotFound {
            throw SharedStateError(code: .notFound, message: "no pool named '\(pool)' is running (no segment \(name))")
        }
    }

    init(segment: SharedSegment) {
        self.segment = segment
    }

    /// A reader of a private, empty segment: for a worker whose pool has no shared memory
    /// (every worker then looks not ready, so jobs fail with `noWorkerAvailable`).
    static func empty(_ pool: PoolDescription) -> PoolStateReader {
        let name = "/pooltop-empty-\(Posix.processID)-\(pool.name)"
        // Safe: creating a small segment only fails when /dev/shm is full, which ends the worker anyway.
        let segment = try! SharedSegment.create(name: name, pool: pool, watcherPID: 0, startedAt: 0)
        Posix.unlinkSharedMemory(name: name)
        return PoolStateReader(segment: segment)
    }

    private func slotBase(_ id: WorkerID) -> Int { geometry.slotOffset + (id.rawValue - 1) * geometry.slotRecordSize }

    /// The pool's state now: every part read coherently, none blocking the writers.
    public func snapshot() -> PoolSnapshot {
        typealias H = SharedLayout.Header
        let now = Posix.wallClockNanoseconds()
        let startedAt = segment.load(H.startedAt)
        let pool = PoolSnapshot.PoolInfo(
            name: segment.loadName(H.name),
            pid: Int32(truncatingIfNeeded: segment.load(H.watcherPID)),
            startedAt: seconds(startedAt) ?? 0,
            uptimeSeconds: Double(now &- startedAt) / 1e9,
            restarts: PoolSnapshot.RestartCounts(hard: SharedLayout.capped(segment.load(H.hardRestarts)), soft: SharedLayout.capped(segment.load(H.softRestarts))),
            state: PoolRunState(rawValue: segment.load(H.poolState)) ?? .running)
        var groups: [GroupSnapshot] = []
        groups.reserveCapacity(geometry.groupCount)
        // Group ids are 1...count: an array indexed by id, not a dictionary, on this hot path.
        var groupNames = [String](repeating: "", count: geometry.groupCount + 1)
        // Records kept free for `apply` (id 0) and groups it removed are skipped, with their slots.
        var shown = [Bool](repeating: false, count: geometry.groupCount + 1)
        var waits: [UInt64] = []
        typealias G = SharedLayout.Group
        for index in 0..<segment.groupsInUse {
            let base = geometry.groupOffset + index * geometry.groupRecordSize
            guard segment.word(base + G.id).pointee.load(ordering: .acquiring) != 0, segment.load(base + G.retired) == 0 else { continue }
            let (group, waiting) = readGroup(index)
            if group.id >= 0 && group.id < groupNames.count {
                groupNames[group.id] = group.name
                shown[group.id] = true
            }
            groups.append(group)
            waits.append(waiting)
        }
        // Named once every group's name is known: a group may wait for a later one.
        for index in groups.indices {
            guard let wait = SharedCodes.waiting(waits[index]), groupNames.indices.contains(wait.group) else { continue }
            groups[index].waitingFor =
                "\(groupNames[wait.group]) (\(wait.condition.rawValue))" + (wait.blocked ? ": it will not start" : "")
        }
        let records = self.records()
        var workers: [WorkerSnapshot] = []
        workers.reserveCapacity(records.slotCount)
        for raw in 0..<records.slotCount {
            let groupID = records.groupID(of: WorkerID(raw + 1))
            guard groupID < shown.count, shown[groupID] else { continue }
            workers.append(decodeWorker(WorkerID(raw + 1), records, groupNames: groupNames))
        }
        return PoolSnapshot(pool: pool, groups: groups, workers: workers, takenAt: Double(now) / 1e9)
    }

    /// A digest of every word a writer bumps when it changes something a snapshot shows: the
    /// header's counts, each group record's sequence and pick-up misses, and each slot's three
    /// sequence words. Equal stamps mean equal snapshots but for the time they were taken (the
    /// heartbeat word, which snapshots do not show, is left out): the flight recorder writes an
    /// unchanged second as a few bytes instead of the whole pool.
    func changeStamp() -> UInt64 {
        typealias H = SharedLayout.Header
        var digest = DefinitionDigest()
        for offset in [H.hardRestarts, H.softRestarts, H.poolState, H.groupsInUse, H.slotsInUse, H.lastSampleAt] {
            digest.add(word: segment.load(offset))
        }
        typealias G = SharedLayout.Group
        for index in 0..<segment.groupsInUse {
            let base = geometry.groupOffset + index * geometry.groupRecordSize
            for offset in [G.sequence, G.pickupMisses, G.retired, G.definition, G.minWorkers, G.maxWorkers] {
                digest.add(word: segment.load(base + offset))
            }
        }
        for raw in 0..<segment.slotsInUse {
            let base = geometry.slotOffset + raw * geometry.slotRecordSize
            digest.add(word: segment.load(base + SharedLayout.Lifecycle.sequence))
            digest.add(word: segment.load(base + SharedLayout.Activity.sequence))
            digest.add(word: segment.load(base + SharedLayout.Latency.sequence))
        }
        return digest.value
    }

    /// One worker's activity part, as its worker last wrote it.
    public func activity(of id: WorkerID) throws -> WorkerActivity {
        // Slots past the groups' (kept free for `apply`) have group id 0.
        guard id.rawValue >= 1 && id.rawValue <= geometry.slotCount, segment.load(slotBase(id) + SharedLayout.Lifecycle.groupID) != 0 else {
            throw SharedStateError(
                code: .invalidWorker, message: "worker id \(id) is out of range: the pool has workers 1...\(segment.slotsInUse)")
        }
        return readActivity(slotBase(id))
    }

    private static func definition(_ hash: UInt64) -> String? {
        hash == 0 ? nil : GroupDescription.formatDefinition(hash)
    }

    /// A group's record, and its `waitingFor` word (named by the caller, who knows every group).
    private func readGroup(_ index: Int) -> (GroupSnapshot, waiting: UInt64) {
        typealias G = SharedLayout.Group
        let base = geometry.groupOffset + index * geometry.groupRecordSize
        let (desired, running, ready, scalingEvents, waiting) = segment.read(sequenceAt: base + G.sequence, writer: segment.watcherPID) {
            (
                segment.load(base + G.desired), segment.load(base + G.running), segment.load(base + G.ready),
                segment.load(base + G.scalingEvents), segment.load(base + G.waitingFor)
            )
        }
        let group = GroupSnapshot(
            id: SharedLayout.capped(segment.load(base + G.id)),
            name: segment.loadName(base + G.name),
            kind: SharedCodes.kind(segment.load(base + G.kind)) ?? .service,
            min: SharedLayout.capped(segment.load(base + G.minWorkers)),
            max: SharedLayout.capped(segment.load(base + G.maxWorkers)),
            desired: SharedLayout.capped(desired), running: SharedLayout.capped(running), ready: SharedLayout.capped(ready),
            scalingEvents: SharedLayout.capped(scalingEvents), pickupMisses: SharedLayout.capped(segment.load(base + G.pickupMisses)),
            definition: Self.definition(segment.load(base + G.definition)))
        return (group, waiting)
    }

    private func decodeWorker(_ id: WorkerID, _ records: PoolRecords, groupNames: [String]) -> WorkerSnapshot {
        typealias L = SharedLayout.Lifecycle
        let groupID = records.groupID(of: id)
        var worker = WorkerSnapshot(
            id: id,
            group: groupID >= 0 && groupID < groupNames.count ? groupNames[groupID] : "",
            groupID: groupID,
            pid: records.pid(of: id),
            state: records.state(of: id),
            generation: SharedLayout.capped(records.word(id, L.generation)),
            restarts: SharedLayout.capped(records.word(id, L.restarts)),
            firstStartedAt: seconds(records.word(id, L.firstStartedAt)),
            startedAt: seconds(records.word(id, L.startedAt)),
            readyAt: seconds(records.word(id, L.readyAt)),
            finishedAt: seconds(records.word(id, L.finishedAt)),
            backoffUntil: seconds(records.word(id, L.backoffUntil)),
            lastExit: exit(records.word(id, L.lastExit), at: records.word(id, L.lastExitAt)),
            activity: records.activity(of: id),
            rssBytes: UInt64(SharedLayout.capped(records.word(id, L.rssBytes))),
            cpuSeconds: Double(records.word(id, L.cpuNanoseconds)) / 1e9)
        let base = slotBase(id)
        // A slot whose process never ended has no exits to count.
        if records.word(id, L.lastExit) != 0 { worker.exits = readExits(base) }
        (worker.queueWait, worker.runTime) = readLatency(base)
        return worker
    }

    private func readExits(_ base: Int) -> [ExitReason: Int] {
        let first = base + SharedLayout.Exits.first
        return segment.read(sequenceAt: base + SharedLayout.Lifecycle.sequence, writer: segment.watcherPID) {
            var exits: [ExitReason: Int] = [:]
            for code in 0..<SharedLayout.Exits.capacity {
                let count = segment.load(first + code * 8)
                if count > 0, let reason = SharedCodes.reason(UInt64(code)) { exits[reason] = SharedLayout.capped(count) }
            }
            return exits
        }
    }

    private func readLatency(_ base: Int) -> (wait: LatencyHistogram, run: LatencyHistogram) {
        typealias L = SharedLayout.Latency
        // Most slots never ran a job: two zero counts need no coherent copy (a job being
        // recorded right now is simply not in this snapshot yet).
        if segment.load(base + L.wait + L.count) == 0 && segment.load(base + L.run + L.count) == 0 {
            return (LatencyHistogram(), LatencyHistogram())
        }
        return segment.read(sequenceAt: base + L.sequence, writer: segment.workerPID(atSlot: base)) {
            func histogram(_ at: Int) -> LatencyHistogram {
                var histogram = LatencyHistogram()
                histogram.count = segment.load(at + L.count)
                guard histogram.count > 0 else { return histogram }
                histogram.sumNanoseconds = segment.load(at + L.sum)
                histogram.buckets = (0..<LatencyHistogram.bucketCount).map { segment.load(at + L.buckets + $0 * 8) }
                return histogram
            }
            return (histogram(base + L.wait), histogram(base + L.run))
        }
    }

    /// The particulars of the job a slot's worker last started (``SharedLayout/CurrentJob``):
    /// sender (worker and group ids; nil from outside the pool), priority, weight, the
    /// payload's head and its whole length.
    func currentJob(_ base: Int) -> (sender: (WorkerID, GroupID)?, priority: Int, weight: Int, head: [UInt8], length: Int) {
        typealias C = SharedLayout.CurrentJob
        let sender = segment.load(base + C.sender)
        let worker = Int(sender >> 48)
        var head = (segment.load(base + C.head), segment.load(base + C.head + 8))
        let length = Int(clamping: segment.load(base + C.payloadLength))
        let bytes = withUnsafeBytes(of: &head) { Array($0.prefix(min(length, C.headBytes))) }
        return (
            worker == 0 ? nil : (WorkerID(worker), GroupID(Int((sender >> 32) & 0xFFFF))),
            Int(Int64(bitPattern: segment.load(base + C.priority))), Int(sender & 0xFFFF_FFFF), bytes, length
        )
    }

    /// The request a reactor worker said it serves (``Worker/requestStarted(_:)``), if any: its
    /// first bytes, its whole length and when it started (seconds since the epoch).
    func currentRequest(_ base: Int) -> (head: [UInt8], length: Int, startedAt: Double)? {
        typealias C = SharedLayout.CurrentJob
        let word = segment.load(base + C.sender)
        guard word & C.requestFlag != 0 else { return nil }
        var head = (segment.load(base + C.priority), segment.load(base + C.head), segment.load(base + C.head + 8))
        let length = Int(clamping: segment.load(base + C.payloadLength))
        let bytes = withUnsafeBytes(of: &head) { Array($0.prefix(min(length, C.requestBytes))) }
        return (bytes, length, Double(word & ~C.requestFlag) / 1000)
    }

    func readActivity(_ base: Int) -> WorkerActivity {
        segment.read(sequenceAt: base + SharedLayout.Activity.sequence, writer: segment.workerPID(atSlot: base)) {
            WorkerActivity { segment.load(base + $0) }
        }
    }

    private func seconds(_ nanoseconds: UInt64) -> Double? {
        nanoseconds == 0 ? nil : Double(nanoseconds) / 1e9
    }

    private func exit(_ packed: UInt64, at: UInt64) -> WorkerSnapshot.ExitSnapshot? {
        let kind = packed >> 48
        guard kind != 0 else { return nil }
        let value = Int32(bitPattern: UInt32(truncatingIfNeeded: packed))
        let reason = SharedCodes.reason((packed >> 32) & 0xFFFF) ?? .crash
        return WorkerSnapshot.ExitSnapshot(
            status: kind == 1 ? "exited" : kind == 2 ? "signaled" : "none",
            code: kind == 1 ? value : nil,
            signal: kind == 2 ? value : nil,
            reason: reason, at: Double(at) / 1e9)
    }
}

extension PoolSnapshot {
    /// Reads the running pool `pool` once (opens, reads, unmaps).
    public static func read(pool: String) throws -> PoolSnapshot {
        try PoolStateReader(pool: pool).snapshot()
    }
}

/// Encodes a slot's last exit into one word: kind (1 exited, 2 signaled) << 48 | reason << 32 | code or signal.
func packExit(_ record: WorkerExitRecord?) -> UInt64 {
    guard let record, let status = record.status else {
        guard let record else { return 0 }
        // Never ran (spawn failed): reported as exited with code 0 and its reason.
        return 1 << 48 | SharedCodes.code(record.reason) << 32
    }
    let reason = SharedCodes.code(record.reason) << 32
    switch status {
    case .exited(let code): return 1 << 48 | reason | UInt64(UInt32(bitPattern: code))
    case .signaled(let signal): return 2 << 48 | reason | UInt64(UInt32(bitPattern: signal))
    }
}

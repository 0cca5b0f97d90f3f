import Synchronization

/// The jobs a job worker has started and not yet answered, in shared memory: how a sender
/// whose worker died learns, exactly and at no cost per job, which of its jobs never started.
///
/// Each job-worker slot has a table after the slot records (`docs/shared-state.md`): the
/// owner's pid, the capacity, then one entry per running job, the sender's token and the job
/// id. The worker writes an entry before the job's handler runs (two stores, no system call,
/// nothing that wakes the sender) and clears it once the job's answer is in the kernel. When
/// the connection ends without `closing`, the sender reads the dead worker's table: a job it
/// finds there had started (`workerLost`); one it does not find never did, and goes to another
/// worker. A table whose owner is not the process the sender talked to (its replacement took
/// the slot over already) tells nothing, and the jobs count as started: never run twice.
/// Jobs beyond the table's capacity fall back to a `started` frame on the connection
/// (`docs/decisions/0008-job-start-acknowledgements.md`).
final class RunningJobsTable: Sendable {
    /// Where a slot's table is, relative to the running-jobs area, and how many entries it has.
    struct Location: Hashable, Sendable {
        var offset: Int
        var capacity: Int
    }

    static let headerWords = 2
    static let entryBytes = 16
    /// Twice the concurrent jobs, since an entry is held until the answer is written, at most
    /// 1024: a slot with more running jobs than that announces the rest on its connection.
    static func capacity(for group: GroupDescription) -> Int {
        guard let limits = group.jobExecutor else { return 0 }
        return min(max(2 * limits.maxConcurrentJobs, 1), 1024)
    }

    /// Every job-worker slot's table, and the size of the whole area.
    static func layout(of pool: PoolDescription) -> (locations: [WorkerID: Location], size: Int) {
        var locations: [WorkerID: Location] = [:]
        var offset = 0
        for group in pool.groups {
            let capacity = capacity(for: group)
            guard capacity > 0 else { continue }
            for id in group.workerIDs {
                locations[id] = Location(offset: offset, capacity: capacity)
                offset += (headerWords * 8) + capacity * entryBytes
            }
        }
        return (locations, offset)
    }

    private let segment: SharedSegment
    private let base: Int
    private let capacity: Int
    /// Free entry indexes, and the entry of each running job by the scheduler's key.
    private let entries = Mutex<(free: [Int], held: [JobScheduler.Key: Int])>(([], [:]))

    /// The writer's side, in the job worker: takes the table over for this process (`owner`).
    init?(segment: SharedSegment, id: WorkerID, pool: PoolDescription, owner: Int32 = Posix.processID) {
        guard let location = Self.layout(of: pool).locations[id], let area = segment.runningJobsOffset,
            Self.fits(location, area: area, in: segment)
        else { return nil }
        self.segment = segment
        base = area + location.offset
        capacity = location.capacity
        for index in 0..<capacity { segment.store(entryOffset(index) + 8, 0) }
        segment.store(base + 8, UInt64(capacity))
        // Last, with release: a sender that sees this pid as owner sees the cleared entries.
        segment.word(base).pointee.store(UInt64(UInt32(bitPattern: owner)), ordering: .releasing)
        entries.withLock { $0.free = Array((0..<capacity).reversed()) }
    }

    /// Whether the table lies inside the segment's running-jobs area (a segment of another
    /// pool description, or a damaged one, is not read past its end).
    private static func fits(_ location: Location, area: Int, in segment: SharedSegment) -> Bool {
        let end = area + location.offset + headerWords * 8 + location.capacity * entryBytes
        return end <= area + Int(segment.load(SharedLayout.Header.runningJobsSize)) && end <= segment.mapping.size
    }

    private func entryOffset(_ index: Int) -> Int { base + Self.headerWords * 8 + index * Self.entryBytes }

    /// Records that a job is starting; false when the table is full (announce it otherwise).
    func claim(_ key: JobScheduler.Key, token: UInt64, jobID: UInt64) -> Bool {
        guard let index = entries.withLock({ entries -> Int? in
            guard let index = entries.free.popLast() else { return nil }
            entries.held[key] = index
            return index
        }) else { return false }
        let offset = entryOffset(index)
        segment.store(offset, token)
        // The id last, with release: an entry with a job id has its token.
        segment.word(offset + 8).pointee.store(jobID, ordering: .releasing)
        return true
    }

    /// The job's answer is in the kernel (or its connection is gone): its entry is free.
    func release(_ key: JobScheduler.Key) {
        guard let index = entries.withLock({ $0.held.removeValue(forKey: key) }) else { return }
        segment.word(entryOffset(index) + 8).pointee.store(0, ordering: .releasing)
        entries.withLock { $0.free.append(index) }
    }

    /// The reader's side, in a sender whose connection to a job worker ended: the ids of this
    /// sender's jobs that the worker had started, or nil when the table cannot tell. Sound only
    /// once the process `pid` has ended (nothing writes the table any more), so it waits a
    /// little for that (the socket closes a moment before the process is gone); a process that
    /// is still running, or a table another process has taken over, tells nothing.
    static func startedJobs(
        token: UInt64, pid: Int32, segment: SharedSegment, location: Location, waitingForExit: Duration = .milliseconds(20)
    ) -> Set<UInt64>? {
        guard pid > 0, let area = segment.runningJobsOffset, fits(location, area: area, in: segment) else { return nil }
        let deadline = PoolInstant.now + waitingForExit
        while Posix.processExists(pid) {
            guard PoolInstant.now < deadline else { return nil }
            Posix.sleep(microseconds: 200)
        }
        let base = area + location.offset
        let owner = segment.word(base).pointee.load(ordering: .acquiring)
        guard owner == UInt64(UInt32(bitPattern: pid)) else { return nil }
        var started: Set<UInt64> = []
        for index in 0..<location.capacity {
            let offset = base + headerWords * 8 + index * entryBytes
            let jobID = segment.word(offset + 8).pointee.load(ordering: .acquiring)
            if jobID != 0 && segment.load(offset) == token { started.insert(jobID) }
        }
        // A replacement may have taken the table over while we looked: then nothing read is its.
        guard segment.word(base).pointee.load(ordering: .acquiring) == owner else { return nil }
        return started
    }
}

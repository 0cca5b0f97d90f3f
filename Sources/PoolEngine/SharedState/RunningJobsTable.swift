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
/// worker. An entry names the sender's token and the job's id, which only the process the job
/// was sent to could have written: so the entries stay readable when a replacement takes the
/// slot over, which keeps the ones its predecessor left for ``leftoverGrace`` before reusing
/// them (a standby takes a slot within about a millisecond of the death, often before the
/// senders have looked; decision 0025). While the process runs, the table tells nothing.
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

    /// How long a new owner keeps the entries its predecessor left: the predecessor's senders
    /// read them within milliseconds of its death (see ``startedJobs``); this is far beyond that.
    static let leftoverGrace: Duration = .seconds(10)

    private let segment: SharedSegment
    private let base: Int
    private let capacity: Int
    /// Free entry indexes; the entry of each running job by the scheduler's key; entries a
    /// predecessor left, and when they may be reused.
    private let entries = Mutex<Entries>(Entries())

    private struct Entries {
        var free: [Int] = []
        var held: [JobScheduler.Key: Int] = [:]
        var leftovers: [Int] = []
        var leftoversUntil = PoolInstant(nanoseconds: 0)
    }

    /// The writer's side, in the job worker: takes the table over for this process (`owner`).
    init?(segment: SharedSegment, id: WorkerID, pool: PoolDescription, owner: Int32 = Posix.processID) {
        guard let location = Self.layout(of: pool).locations[id], let area = segment.runningJobsOffset,
            Self.fits(location, area: area, in: segment)
        else { return nil }
        self.segment = segment
        base = area + location.offset
        capacity = location.capacity
        // A predecessor's entries (jobs it had started when it died) are left as they are, for
        // its senders to read; the free ones are this process's from now on.
        var free: [Int] = []
        var leftovers: [Int] = []
        for index in (0..<capacity).reversed() {
            let jobID = segment.word(entryOffset(index) + 8).pointee.load(ordering: .acquiring)
            if jobID == 0 { free.append(index) } else { leftovers.append(index) }
        }
        segment.store(base + 8, UInt64(capacity))
        segment.word(base).pointee.store(UInt64(UInt32(bitPattern: owner)), ordering: .releasing)
        let until = PoolInstant.now + Self.leftoverGrace
        entries.withLock { entries in
            entries.free = free
            entries.leftovers = leftovers
            entries.leftoversUntil = until
        }
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
            if entries.free.isEmpty && !entries.leftovers.isEmpty && PoolInstant.now >= entries.leftoversUntil {
                // Long enough: the predecessor's senders have read what they needed.
                for index in entries.leftovers { segment.word(entryOffset(index) + 8).pointee.store(0, ordering: .releasing) }
                entries.free = entries.leftovers
                entries.leftovers = []
            }
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
    /// is still running tells nothing. A replacement that took the slot over since keeps `pid`'s
    /// entries for ``leftoverGrace``, so they are read whoever owns the table now.
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
        // Never taken over: whatever `pid` started, it did not say here.
        guard segment.word(base).pointee.load(ordering: .acquiring) != 0 else { return nil }
        // Whoever owns the table now, an entry with this sender's token and one of the ids it
        // sent `pid` can only be `pid`'s: a replacement keeps those for `leftoverGrace`.
        var started: Set<UInt64> = []
        for index in 0..<location.capacity {
            let offset = base + headerWords * 8 + index * entryBytes
            let jobID = segment.word(offset + 8).pointee.load(ordering: .acquiring)
            if jobID != 0 && segment.load(offset) == token { started.insert(jobID) }
        }
        return started
    }
}

/// The watcher's writer of shared memory: the header, the group table and every slot's
/// lifecycle part, plus the resource figures it samples from /proc.
///
/// Called only from the watcher loop (the one writer); it writes a record only when it changed.
final class SharedStatePublisher {
    let segment: SharedSegment
    /// Changed by `apply` (``reconfigure(_:)``).
    private var pool: PoolDescription
    /// Each slot as last written; ``unwritten`` where it never was.
    private var published: [WorkerSlot]
    private var groupCounts: [[UInt64]]
    private var hardRestarts = -1
    private var softRestarts = -1
    /// Open /proc/<pid>/stat descriptors, by slot, for the process they belong to.
    private var statFiles: [WorkerID: (pid: Int32, fd: Int32)] = [:]
    private var statBuffer = [UInt8](repeating: 0, count: 1024)
    private let tickNanoseconds: UInt64
    private let pageSize: UInt64

    /// Stands for a slot never written: no slot of a pool has a negative group index.
    private static let unwritten = WorkerSlot(id: WorkerID(0), groupIndex: -1)

    init(segment: SharedSegment, pool: PoolDescription) {
        self.segment = segment
        self.pool = pool
        published = Array(repeating: Self.unwritten, count: pool.slotCount)
        groupCounts = Array(repeating: [], count: pool.groups.count)
        tickNanoseconds = 1_000_000_000 / UInt64(max(Posix.clockTicksPerSecond, 1))
        pageSize = UInt64(Posix.pageSize)
    }

    deinit {
        for (_, file) in statFiles { Posix.close(file.fd) }
    }

    /// Takes the pool `apply` made: records for new groups and their slots (in the room the
    /// segment kept), and the new limits and definition hashes of changed groups.
    func reconfigure(_ next: PoolDescription) {
        for (index, group) in next.groups.enumerated() where index >= pool.groups.count || pool.groups[index] != group {
            segment.describe(group, at: index)
        }
        segment.setInUse(groups: next.groups.count, slots: next.slotCount)
        pool = next
        published += Array(repeating: Self.unwritten, count: max(0, next.slotCount - published.count))
        groupCounts += Array(repeating: [], count: max(0, next.groups.count - groupCounts.count))
    }

    func setPoolState(_ state: PoolRunState) {
        segment.word(SharedLayout.Header.poolState).pointee.store(state.rawValue, ordering: .releasing)
    }

    /// Writes what changed since the last call.
    func publish(_ core: WatcherCore, at now: PoolInstant) {
        let clock = WallClock(now: now)
        if core.hardRestarts != hardRestarts {
            hardRestarts = core.hardRestarts
            segment.store(SharedLayout.Header.hardRestarts, UInt64(hardRestarts))
        }
        if core.softRestarts != softRestarts {
            softRestarts = core.softRestarts
            segment.store(SharedLayout.Header.softRestarts, UInt64(softRestarts))
        }
        var counts = Array(repeating: [UInt64](repeating: 0, count: 6), count: pool.groups.count)
        for index in counts.indices {
            counts[index][3] = UInt64(core.scalingEvents[index])
            counts[index][4] = Self.waitingWord(core, group: index)
        }
        // Each slot is read in place, not copied out of `core.slots` and `published` to be
        // compared: a slot is a large value (strings, arrays, exit records), and the copies at
        // every turn of the watcher loop cost more than the comparison (decision 0027).
        for index in core.slots.indices {
            let group = core.slots[index].groupIndex
            let state = core.slots[index].state
            if core.slots[index].isDesired { counts[group][0] += 1 }
            if state.hasProcess { counts[group][1] += 1 }
            if state == .ready { counts[group][2] += 1 }
            guard published[index] != core.slots[index] else { continue }
            write(core.slots[index], clock: clock)
            if published[index].state.hasProcess && !state.hasProcess {
                clearInFlight(core.slots[index].id)
            }
            published[index] = core.slots[index]
        }
        for (index, group) in pool.groups.enumerated() where group.retired {
            // Shown until its last worker has left, then skipped by readers.
            counts[index][5] = counts[index][1] == 0 ? 1 : 0
        }
        for (index, count) in counts.enumerated() where groupCounts[index] != count {
            groupCounts[index] = count
            let base = segment.groupBase(index)
            typealias G = SharedLayout.Group
            segment.store(base + G.retired, count[5])
            segment.write(sequenceAt: base + G.sequence) {
                segment.store(base + G.desired, count[0])
                segment.store(base + G.running, count[1])
                segment.store(base + G.ready, count[2])
                segment.store(base + G.scalingEvents, count[3])
                segment.store(base + G.waitingFor, count[4])
            }
        }
    }

    /// The group's `waitingFor` word (see ``SharedLayout/Group/waitingFor``).
    static func waitingWord(_ core: WatcherCore, group index: Int) -> UInt64 {
        guard let dependency = core.waitingFor(index) else { return 0 }
        return SharedCodes.waiting(for: dependency.group, dependency.condition, blocked: core.blocked.contains(index))
    }

    private func write(_ slot: WorkerSlot, clock: WallClock) {
        typealias L = SharedLayout.Lifecycle
        let base = segment.slotBase(slot.id)
        let hasProcess = slot.state.hasProcess
        segment.write(sequenceAt: base + L.sequence) {
            segment.store(base + L.state, SharedCodes.code(slot.state))
            segment.store(base + L.pid, UInt64(UInt32(bitPattern: hasProcess ? slot.pid : 0)))
            segment.store(base + L.generation, UInt64(slot.generation))
            segment.store(base + L.firstStartedAt, clock.wall(slot.firstStartedAt))
            segment.store(base + L.startedAt, clock.wall(slot.startedAt))
            segment.store(base + L.readyAt, clock.wall(slot.readyAt))
            segment.store(base + L.finishedAt, clock.wall(slot.exitedAt))
            segment.store(base + L.restarts, UInt64(slot.restarts))
            segment.store(base + L.lastExit, packExit(slot.lastExit))
            segment.store(base + L.lastExitAt, clock.wall(slot.exitedAt))
            segment.store(base + L.backoffUntil, clock.wall(slot.state == .backoff ? slot.backoffUntil : nil))
            // `slot.exits` is in `ExitReason.allCases` order; the segment files each at its code.
            for (reason, count) in zip(SharedCodes.reasons, slot.exits) {
                let code = Int(SharedCodes.code(reason))
                guard code < SharedLayout.Exits.capacity else { continue }
                segment.store(base + SharedLayout.Exits.first + code * 8, UInt64(count))
            }
            if !hasProcess {
                segment.store(base + L.rssBytes, 0)
                segment.store(base + L.cpuNanoseconds, 0)
            }
        }
    }

    /// Between two processes of a slot nobody owns its activity part; the watcher zeroes what
    /// described the dead process (in-flight work, open connections), keeping the totals.
    private func clearInFlight(_ id: WorkerID) {
        let base = segment.slotBase(id)
        let reader = PoolStateReader(segment: segment)
        var activity = reader.readActivity(base)
        activity.resetPerProcess()
        segment.write(sequenceAt: base + SharedLayout.Activity.sequence) {
            activity.forEachWord { offset, value in segment.store(base + offset, value) }
        }
    }

    /// Reads what each running worker wrote of its activity and, for the workers `resources`
    /// names, samples RSS and CPU time from /proc/<pid>/stat (published for readers).
    /// The workers' activity is theirs to write: this is how the core learns of it.
    func sample(_ core: WatcherCore, resources: SamplingSchedule.Resources?) -> [WorkerID: WorkerSample] {
        typealias L = SharedLayout.Lifecycle
        var samples: [WorkerID: WorkerSample] = [:]
        let reader = PoolStateReader(segment: segment)
        for slot in core.slots {
            guard slot.state.hasProcess, slot.pid > 0 else {
                if let file = statFiles.removeValue(forKey: slot.id) { Posix.close(file.fd) }
                continue
            }
            var sample = WorkerSample(activity: reader.readActivity(segment.slotBase(slot.id)))
            defer { samples[slot.id] = sample }
            switch resources {
            case .all?: break
            case .groups(let groups)?: guard groups.contains(slot.groupIndex) else { continue }
            case nil: continue
            }
            if let file = statFiles[slot.id], file.pid != slot.pid {
                Posix.close(file.fd)
                statFiles.removeValue(forKey: slot.id)
            }
            if statFiles[slot.id] == nil {
                guard let fd = Posix.openReadOnly("/proc/\(slot.pid)/stat") else { continue }
                statFiles[slot.id] = (slot.pid, fd)
            }
            guard let file = statFiles[slot.id] else { continue }
            let count = Posix.preadAll(file.fd, into: &statBuffer)
            guard count > 0, let figures = ProcStat.parse(statBuffer[0..<count]) else { continue }
            let base = segment.slotBase(slot.id)
            sample.rssBytes = figures.rssPages * pageSize
            sample.cpuNanoseconds = figures.cpuTicks * tickNanoseconds
            segment.write(sequenceAt: base + L.sequence) {
                segment.store(base + L.rssBytes, figures.rssPages * pageSize)
                segment.store(base + L.cpuNanoseconds, figures.cpuTicks * tickNanoseconds)
            }
        }
        if resources == .all { segment.store(SharedLayout.Header.lastSampleAt, Posix.wallClockNanoseconds()) }
        return samples
    }
}

/// Converts monotonic instants to wall-clock nanoseconds, from one reading of both clocks.
struct WallClock {
    let monotonic: UInt64
    let wall: UInt64

    init(now: PoolInstant) {
        monotonic = now.nanoseconds
        wall = Posix.wallClockNanoseconds() &- (Posix.monotonicNanoseconds() &- now.nanoseconds)
    }

    func wall(_ instant: PoolInstant?) -> UInt64 {
        guard let instant else { return 0 }
        return wall &- (monotonic &- instant.nanoseconds)
    }
}

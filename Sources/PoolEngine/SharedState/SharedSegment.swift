import Synchronization

/// A mapped pool segment with atomic word access and the seqlock discipline.
///
/// Writers (one per part) bump the part's sequence word to odd, store the fields, then bump it
/// to even; readers retry while the word is odd or changed under them. Readers never block
/// writers and never see a torn part, also from another process.
final class SharedSegment: Sendable {
    let name: String
    let mapping: Posix.Mapping
    let isWritable: Bool

    /// Where the parts are: fixed at creation, checked once at open and kept, so that nothing
    /// written to the header later (by a bug, or by another process of the user) moves a
    /// read outside the mapping.
    let geometry: Geometry

    private init(name: String, mapping: Posix.Mapping, isWritable: Bool, geometry: Geometry) {
        self.name = name
        self.mapping = mapping
        self.isWritable = isWritable
        self.geometry = geometry
    }

    /// How many groups and slots the segment holds; the record sizes are this build's (`open`
    /// refuses any other), so the offsets follow from the counts.
    struct Geometry: Sendable {
        let groupCount: Int
        let slotCount: Int

        init(groups: Int, slots: Int) {
            groupCount = groups
            slotCount = slots
        }

        var groupOffset: Int { SharedLayout.headerSize }
        var groupRecordSize: Int { SharedLayout.groupRecordSize }
        var slotOffset: Int { SharedLayout.headerSize + groupCount * SharedLayout.groupRecordSize }
        var slotRecordSize: Int { SharedLayout.slotRecordSize }
    }

    deinit { mapping.unmap() }

    /// Creates the segment, replacing a stale one of the same name (the caller holds the pool's lock).
    static func create(name: String, pool: PoolDescription, watcherPID: Int32, startedAt: UInt64) throws -> SharedSegment {
        // Only our own stale segment is replaced. Another user's file, or a symbolic link, is
        // left alone and refused (root could unlink it, but someone put it there on purpose);
        // O_EXCL below never writes through a link either way.
        if let entry = Posix.sharedMemoryEntry(name: name), entry.isLink || entry.owner != Posix.userID {
            throw SharedStateError(
                code: .taken,
                message: "/dev/shm\(name) is \(entry.isLink ? "a symbolic link" : "a file") owned by uid \(entry.owner), not this pool's; it was left untouched: remove it, or choose another pool name")
        }
        Posix.unlinkSharedMemory(name: name)
        // Sized for the reserve too: groups `apply` adds get records that are already mapped
        // by every reader, so the segment never grows or moves.
        let geometry = Geometry(groups: pool.groupCapacity, slots: pool.slotCapacity)
        let records = SharedLayout.size(groups: geometry.groupCount, slots: geometry.slotCount)
        let running = RunningJobsTable.layout(of: pool).size + pool.reserve.runningJobBytes
        let size = records + running
        let segment = SharedSegment(
            name: name, mapping: try Posix.createSharedMemory(name: name, size: size), isWritable: true, geometry: geometry)
        typealias H = SharedLayout.Header
        segment.store(H.version, SharedLayout.version)
        segment.store(H.headerSize, UInt64(SharedLayout.headerSize))
        segment.store(H.groupCount, UInt64(geometry.groupCount))
        segment.store(H.groupOffset, UInt64(geometry.groupOffset))
        segment.store(H.groupRecordSize, UInt64(SharedLayout.groupRecordSize))
        segment.store(H.slotCount, UInt64(geometry.slotCount))
        segment.store(H.slotOffset, UInt64(geometry.slotOffset))
        segment.store(H.slotRecordSize, UInt64(SharedLayout.slotRecordSize))
        segment.store(H.watcherPID, UInt64(watcherPID))
        segment.store(H.startedAt, startedAt)
        segment.store(H.runningJobsOffset, UInt64(records))
        segment.store(H.runningJobsSize, UInt64(running))
        segment.storeName(H.name, pool.name)
        for (index, group) in pool.groups.enumerated() { segment.describe(group, at: index) }
        segment.setInUse(groups: pool.groups.count, slots: pool.slotCount)
        // The magic goes last, with release ordering: a reader that sees it sees the layout.
        segment.word(H.magic).pointee.store(SharedLayout.magic, ordering: .releasing)
        return segment
    }

    /// Writes a group's record (its id, kind, limits, name and definition hash) and its slots'
    /// ids. A record whose id is 0 is free (reserved for `apply`); readers skip it.
    func describe(_ group: GroupDescription, at index: Int) {
        typealias G = SharedLayout.Group
        let base = groupBase(index)
        store(base + G.kind, SharedCodes.code(group.kind))
        store(base + G.minWorkers, UInt64(group.minWorkers))
        store(base + G.maxWorkers, UInt64(group.maxWorkers))
        store(base + G.definition, group.definitionHash)
        storeName(base + G.name, group.name)
        for id in group.workerIDs {
            let slot = slotBase(id)
            store(slot + SharedLayout.Lifecycle.id, UInt64(id.rawValue))
            store(slot + SharedLayout.Lifecycle.groupID, UInt64(group.id.rawValue))
        }
        // The id last, with release ordering: a reader that sees it sees the rest of the record.
        word(base + G.id).pointee.store(UInt64(group.id.rawValue), ordering: .releasing)
    }

    /// Opens an existing segment, read-only unless `writable`; checks its magic and version.
    static func open(name: String, writable: Bool) throws -> SharedSegment {
        let mapping = try Posix.openSharedMemory(name: name, writable: writable)
        do {
            let geometry = try checkedGeometry(name: name, mapping: mapping)
            return SharedSegment(name: name, mapping: mapping, isWritable: writable, geometry: geometry)
        } catch {
            mapping.unmap()
            throw error
        }
    }

    /// The header's layout, when it is one this build reads and it fits in the mapping.
    private static func checkedGeometry(name: String, mapping: Posix.Mapping) throws(SharedStateError) -> Geometry {
        guard mapping.size >= SharedLayout.headerSize else {
            throw SharedStateError(code: .badLayout, message: "segment \(name) is \(mapping.size) bytes, smaller than its header")
        }
        let magic = mapping.word(SharedLayout.Header.magic).pointee.load(ordering: .acquiring)
        guard magic == SharedLayout.magic else {
            throw SharedStateError(code: .badLayout, message: "segment \(name) has no pooltop header (magic \(magic))")
        }
        func header(_ offset: Int) -> UInt64 { mapping.word(offset).pointee.load(ordering: .relaxed) }
        let version = header(SharedLayout.Header.version)
        guard version == SharedLayout.version else {
            throw SharedStateError(
                code: .badLayout, message: "segment \(name) has layout version \(version); this build reads \(SharedLayout.version)")
        }
        // Every figure the readers use comes from this header: a corrupt or hostile segment must
        // get an error here, not a trap or a read outside the mapping later.
        typealias H = SharedLayout.Header
        let groupCount = header(H.groupCount)
        let slotCount = header(H.slotCount)
        let expected: [(offset: Int, name: String, value: UInt64)] = [
            (H.headerSize, "header size", UInt64(SharedLayout.headerSize)),
            (H.groupOffset, "group offset", UInt64(SharedLayout.headerSize)),
            (H.groupRecordSize, "group record size", UInt64(SharedLayout.groupRecordSize)),
            (H.slotRecordSize, "slot record size", UInt64(SharedLayout.slotRecordSize)),
        ]
        for field in expected where header(field.offset) != field.value {
            throw SharedStateError(
                code: .badLayout, message: "segment \(name) has \(field.name) \(header(field.offset)); this build reads \(field.value)")
        }
        let most = UInt64(ConfigurationLimits.workersPerPool)
        guard groupCount <= most, slotCount <= most else {
            throw SharedStateError(
                code: .badLayout, message: "segment \(name) claims \(groupCount) groups and \(slotCount) workers; a pool has at most \(most) of each")
        }
        let slotOffset = UInt64(SharedLayout.headerSize) + groupCount * UInt64(SharedLayout.groupRecordSize)
        guard header(H.slotOffset) == slotOffset else {
            throw SharedStateError(
                code: .badLayout, message: "segment \(name) has its workers at offset \(header(H.slotOffset)), not \(slotOffset) after \(groupCount) groups")
        }
        let needed = SharedLayout.size(groups: Int(groupCount), slots: Int(slotCount))
        let running = header(H.runningJobsOffset)
        let runningSize = header(H.runningJobsSize)
        guard mapping.size >= needed, running <= UInt64(mapping.size), runningSize <= UInt64(mapping.size) - running,
            runningSize == 0 || running >= UInt64(needed), running % 8 == 0
        else {
            throw SharedStateError(
                code: .badLayout,
                message: "segment \(name) is \(mapping.size) bytes; its header needs \(needed) and running-jobs tables at \(running)+\(runningSize)")
        }
        return Geometry(groups: Int(groupCount), slots: Int(slotCount))
    }

    /// Where the running-jobs tables start; nil when the pool has none.
    var runningJobsOffset: Int? {
        let size = load(SharedLayout.Header.runningJobsSize)
        return size == 0 ? nil : Int(load(SharedLayout.Header.runningJobsOffset))
    }

    // MARK: - Words

    func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { mapping.word(offset) }

    func load(_ offset: Int) -> UInt64 { word(offset).pointee.load(ordering: .relaxed) }

    func store(_ offset: Int, _ value: UInt64) {
        precondition(isWritable, "segment \(name) is mapped read-only")
        word(offset).pointee.store(value, ordering: .relaxed)
    }

    func storeName(_ offset: Int, _ text: String) {
        var bytes = Array(text.utf8.prefix(SharedLayout.nameBytes - 1))
        bytes += [UInt8](repeating: 0, count: SharedLayout.nameBytes - bytes.count)
        for index in stride(from: 0, to: SharedLayout.nameBytes, by: 8) {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[index + byte]) << (8 * UInt64(byte)) }
            store(offset + index, value)
        }
    }

    func loadName(_ offset: Int) -> String {
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: SharedLayout.nameBytes, by: 8) {
            let value = load(offset + index)
            for byte in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte)))) }
        }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: - Seqlock

    /// Writes a part: the sequence word is odd while `body` stores.
    ///
    /// The word is rounded down to even first: a writer killed between its two stores left it odd,
    /// and the next writer of the part (the slot's next process, or the watcher) repairs it.
    func write(sequenceAt offset: Int, _ body: () -> Void) {
        let sequence = word(offset)
        let value = sequence.pointee.load(ordering: .relaxed) & ~1
        sequence.pointee.store(value &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        body()
        sequence.pointee.store(value &+ 2, ordering: .releasing)
    }

    /// How long a part may keep one odd sequence value before its writer is checked.
    static let stuckWriteNanoseconds: UInt64 = 1_000_000
    /// How long a reader waits for a living writer that does not finish a write (stopped by
    /// SIGSTOP or a debugger) before reading the part as it is.
    static let stoppedWriterNanoseconds: UInt64 = 1_000_000_000

    /// Reads a part coherently: retries while a write is in progress or happened meanwhile.
    ///
    /// A part whose writer died mid-write keeps one odd sequence value forever (until the
    /// watcher repairs it). After ``stuckWriteNanoseconds`` of one odd value the reader checks
    /// `writer`, the process that writes the part: gone (or unknown, 0), the part is read as it
    /// is, perhaps torn; alive, merely preempted, the reader goes on waiting, up to
    /// ``stoppedWriterNanoseconds``. So a live writer's parts are never read torn, and a
    /// corrupt segment cannot hang `pooltop status` or the watcher's loop.
    @inline(__always)
    func read<T>(sequenceAt offset: Int, writer: @autoclosure () -> Int32, _ body: () -> T) -> T {
        // The common case inline: one untorn try. Readers of 1,000 slots call this 2,000 times
        // per snapshot, and a call per part doubled `records()` (bench snapshot_read).
        let sequence = word(offset)
        let before = sequence.pointee.load(ordering: .acquiring)
        if before & 1 == 0 {
            let value = body()
            atomicMemoryFence(ordering: .acquiring)
            if sequence.pointee.load(ordering: .relaxed) == before { return value }
        }
        return readRetrying(sequence, writer: writer, body)
    }

    /// The retries of ``read(sequenceAt:writer:_:)``: while a write is in progress, or when
    /// one happened meanwhile, or the part stays mid-write.
    @inline(never)
    private func readRetrying<T>(_ sequence: UnsafeMutablePointer<Atomic<UInt64>>, writer: () -> Int32, _ body: () -> T) -> T {
        var tries = 0
        var stuckAt: UInt64 = 0
        var checkAt: UInt64 = 0
        var firstStuck: UInt64 = 0
        while true {
            let before = sequence.pointee.load(ordering: .acquiring)
            if before & 1 == 0 {
                let value = body()
                atomicMemoryFence(ordering: .acquiring)
                if sequence.pointee.load(ordering: .relaxed) == before { return value }
                continue
            }
            tries += 1
            // A write takes nanoseconds: the clock is read only once one takes longer, when the
            // writer was probably preempted, and then the reader yields the CPU to it.
            guard tries >= 64 else { continue }
            let now = Posix.monotonicNanoseconds()
            if before != stuckAt {
                stuckAt = before
                checkAt = now + Self.stuckWriteNanoseconds
                firstStuck = now
            } else if now >= checkAt {
                let pid = writer()
                if pid <= 0 || !Posix.processExists(pid) || now - firstStuck >= Self.stoppedWriterNanoseconds {
                    return body()
                }
                checkAt = now + Self.stuckWriteNanoseconds
            }
            Posix.yieldProcessor()
        }
    }

    /// The watcher pid the header names (the writer of the group and lifecycle parts).
    var watcherPID: Int32 { Int32(truncatingIfNeeded: load(SharedLayout.Header.watcherPID)) }

    /// The process of slot `id` (the writer of its activity and latency parts), from its lifecycle part.
    func workerPID(atSlot base: Int) -> Int32 {
        Int32(truncatingIfNeeded: load(base + SharedLayout.Lifecycle.pid))
    }

    // MARK: - Records

    var groupCount: Int { geometry.groupCount }
    var slotCount: Int { geometry.slotCount }

    /// The group records and slots in use, within the geometry: what readers scan (the reserve
    /// for `apply` is skipped). Acquiring, so the records they count are seen written.
    var groupsInUse: Int { inUse(SharedLayout.Header.groupsInUse, of: geometry.groupCount) }
    var slotsInUse: Int { inUse(SharedLayout.Header.slotsInUse, of: geometry.slotCount) }

    private func inUse(_ offset: Int, of capacity: Int) -> Int {
        let word = word(offset).pointee.load(ordering: .acquiring)
        return word == 0 ? capacity : min(SharedLayout.capped(word), capacity)
    }

    /// Says how many group records and slots are in use (after `describe` wrote them).
    func setInUse(groups: Int, slots: Int) {
        word(SharedLayout.Header.groupsInUse).pointee.store(UInt64(groups), ordering: .releasing)
        word(SharedLayout.Header.slotsInUse).pointee.store(UInt64(slots), ordering: .releasing)
    }

    func groupBase(_ index: Int) -> Int {
        geometry.groupOffset + index * geometry.groupRecordSize
    }

    /// The flight recorder begins to doze: from now on, the first writer that changes a word
    /// of its change stamp takes the bell (``takeDozeBell()``) and wakes it. The caller reads
    /// the stamp again after this: a change made just before arming may not have rung.
    func armDozeBell() {
        word(SharedLayout.Header.recorderDozing).pointee.store(1, ordering: .sequentiallyConsistent)
        // Dekker's handshake with `takeDozeBell`: this store is seen by a writer, or that
        // writer's change by the stamp read after it, or both; never neither.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// The recorder is awake again: nobody needs to ring.
    func disarmDozeBell() {
        word(SharedLayout.Header.recorderDozing).pointee.store(0, ordering: .sequentiallyConsistent)
    }

    /// Called by a writer after it changed the segment: whether it is the one to wake the
    /// dozing recorder (it took the bell; at most one writer does per doze). One fence and one
    /// load of a word that stays in every cache while nobody dozes.
    func takeDozeBell() -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let bell = word(SharedLayout.Header.recorderDozing)
        return bell.pointee.load(ordering: .relaxed) != 0 && bell.pointee.exchange(0, ordering: .sequentiallyConsistent) != 0
    }

    /// Counts a job for `group` that found no ready worker with room (any process may call it).
    func countPickupMiss(group: GroupID) {
        for index in 0..<groupCount {
            let record = groupBase(index)
            guard load(record + SharedLayout.Group.id) == UInt64(group.rawValue) else { continue }
            // Any sender may count: an atomic add, outside the watcher's sequence word.
            word(record + SharedLayout.Group.pickupMisses).pointee.wrappingAdd(1, ordering: .relaxed)
            return
        }
    }

    func slotBase(_ id: WorkerID) -> Int {
        geometry.slotOffset + (id.rawValue - 1) * geometry.slotRecordSize
    }
}

extension Posix.Mapping {
    /// The 8-byte word at `offset`, for atomic access.
    func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // Offsets come from the fixed layout and a header checked against the mapping's size at
        // open; a debug build still checks each one.
        assert(offset >= 0 && offset + 8 <= size && offset % 8 == 0, "shared word \(offset) out of the mapping")
        return (base + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
}

/// Why shared state cannot be read or created.
public struct SharedStateError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// No running pool has this name.
        case notFound = "not-found"
        /// The segment is not one this build can read.
        case badLayout = "bad-layout"
        /// A worker id outside the pool's slots.
        case invalidWorker = "invalid-worker"
        /// A write through a read-only view.
        case readOnly = "read-only"
        /// Something of another user, or a link, has the segment's name.
        case taken
    }

    public var code: Code
    public var message: String
    public var description: String { message }
}

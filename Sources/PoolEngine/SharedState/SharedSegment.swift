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

    private init(name: String, mapping: Posix.Mapping, isWritable: Bool) {
        self.name = name
        self.mapping = mapping
        self.isWritable = isWritable
    }

    /// Layout figures from the header; they never change once the segment is created.
    struct Geometry: Sendable {
        var groupOffset: Int, groupRecordSize: Int, slotOffset: Int, slotRecordSize: Int, groupCount: Int, slotCount: Int
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
        let records = SharedLayout.size(groups: pool.groups.count, slots: pool.slotCount)
        let running = RunningJobsTable.layout(of: pool).size
        let size = records + running
        let segment = SharedSegment(name: name, mapping: try Posix.createSharedMemory(name: name, size: size), isWritable: true)
        let groupOffset = SharedLayout.headerSize
        let slotOffset = groupOffset + pool.groups.count * SharedLayout.groupRecordSize
        typealias H = SharedLayout.Header
        segment.store(H.version, SharedLayout.version)
        segment.store(H.headerSize, UInt64(SharedLayout.headerSize))
        segment.store(H.groupCount, UInt64(pool.groups.count))
        segment.store(H.groupOffset, UInt64(groupOffset))
        segment.store(H.groupRecordSize, UInt64(SharedLayout.groupRecordSize))
        segment.store(H.slotCount, UInt64(pool.slotCount))
        segment.store(H.slotOffset, UInt64(slotOffset))
        segment.store(H.slotRecordSize, UInt64(SharedLayout.slotRecordSize))
        segment.store(H.watcherPID, UInt64(watcherPID))
        segment.store(H.startedAt, startedAt)
        segment.store(H.runningJobsOffset, UInt64(records))
        segment.store(H.runningJobsSize, UInt64(running))
        segment.storeName(H.name, pool.name)
        for (index, group) in pool.groups.enumerated() {
            let base = groupOffset + index * SharedLayout.groupRecordSize
            typealias G = SharedLayout.Group
            segment.store(base + G.id, UInt64(group.id.rawValue))
            segment.store(base + G.kind, UInt64(SharedLayout.kindCodes.firstIndex(of: group.kind) ?? 0))
            segment.store(base + G.minWorkers, UInt64(group.minWorkers))
            segment.store(base + G.maxWorkers, UInt64(group.maxWorkers))
            segment.storeName(base + G.name, group.name)
            for id in group.workerIDs {
                let slot = slotOffset + (id.rawValue - 1) * SharedLayout.slotRecordSize
                segment.store(slot + SharedLayout.Lifecycle.id, UInt64(id.rawValue))
                segment.store(slot + SharedLayout.Lifecycle.groupID, UInt64(group.id.rawValue))
            }
        }
        // The magic goes last, with release ordering: a reader that sees it sees the layout.
        segment.word(H.magic).pointee.store(SharedLayout.magic, ordering: .releasing)
        return segment
    }

    /// Opens an existing segment, read-only unless `writable`; checks its magic and version.
    static func open(name: String, writable: Bool) throws -> SharedSegment {
        let mapping = try Posix.openSharedMemory(name: name, writable: writable)
        let segment = SharedSegment(name: name, mapping: mapping, isWritable: writable)
        guard mapping.size >= SharedLayout.headerSize else {
            throw SharedStateError(code: .badLayout, message: "segment \(name) is \(mapping.size) bytes, smaller than its header")
        }
        let magic = segment.word(SharedLayout.Header.magic).pointee.load(ordering: .acquiring)
        guard magic == SharedLayout.magic else {
            throw SharedStateError(code: .badLayout, message: "segment \(name) has no pooltop header (magic \(magic))")
        }
        let version = segment.load(SharedLayout.Header.version)
        guard version == SharedLayout.version else {
            throw SharedStateError(
                code: .badLayout, message: "segment \(name) has layout version \(version); this build reads \(SharedLayout.version)")
        }
        let needed = SharedLayout.size(
            groups: Int(segment.load(SharedLayout.Header.groupCount)), slots: Int(segment.load(SharedLayout.Header.slotCount)))
        let running = segment.load(SharedLayout.Header.runningJobsOffset)
        let runningSize = segment.load(SharedLayout.Header.runningJobsSize)
        guard mapping.size >= needed, running <= UInt64(mapping.size), runningSize <= UInt64(mapping.size) - running,
            runningSize == 0 || running >= UInt64(needed), running % 8 == 0
        else {
            throw SharedStateError(
                code: .badLayout,
                message: "segment \(name) is \(mapping.size) bytes; its header needs \(needed) and running-jobs tables at \(running)+\(runningSize)")
        }
        return segment
    }

    /// Where the running-jobs tables start; nil when the pool has none.
    var runningJobsOffset: Int? {
        let size = load(SharedLayout.Header.runningJobsSize)
        return size == 0 ? nil : Int(load(SharedLayout.Header.runningJobsOffset))
    }

    // MARK: - Words

    func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // Offsets come from the fixed layout and a header checked against the mapping's size at
        // open; a debug build still checks each one.
        assert(offset >= 0 && offset + 8 <= mapping.size && offset % 8 == 0, "shared word \(offset) out of the mapping")
        return (mapping.base + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

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
    func write(sequenceAt offset: Int, _ body: () -> Void) {
        let sequence = word(offset)
        let value = sequence.pointee.load(ordering: .relaxed)
        sequence.pointee.store(value &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        body()
        sequence.pointee.store(value &+ 2, ordering: .releasing)
    }

    /// Reads a part coherently: retries while a write is in progress or happened meanwhile.
    func read<T>(sequenceAt offset: Int, _ body: () -> T) -> T {
        let sequence = word(offset)
        while true {
            let before = sequence.pointee.load(ordering: .acquiring)
            if before & 1 == 1 { continue }
            let value = body()
            atomicMemoryFence(ordering: .acquiring)
            if sequence.pointee.load(ordering: .relaxed) == before { return value }
        }
    }

    // MARK: - Records

    var geometry: Geometry {
        typealias H = SharedLayout.Header
        return Geometry(
            groupOffset: Int(load(H.groupOffset)), groupRecordSize: Int(load(H.groupRecordSize)),
            slotOffset: Int(load(H.slotOffset)), slotRecordSize: Int(load(H.slotRecordSize)),
            groupCount: Int(load(H.groupCount)), slotCount: Int(load(H.slotCount)))
    }

    var groupCount: Int { Int(load(SharedLayout.Header.groupCount)) }
    var slotCount: Int { Int(load(SharedLayout.Header.slotCount)) }

    func groupBase(_ index: Int) -> Int {
        let geometry = self.geometry
        return geometry.groupOffset + index * geometry.groupRecordSize
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
        let geometry = self.geometry
        return geometry.slotOffset + (id.rawValue - 1) * geometry.slotRecordSize
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

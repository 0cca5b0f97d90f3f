import Synchronization

/// A coherent copy of every slot record, undecoded: each record's parts were copied under their
/// sequence words, so no part is torn. The fast path for code that scans many workers for a few
/// fields (pickup strategies, the metrics); ``PoolSnapshot`` decodes all of it into values.
public struct PoolRecords: Sendable {
    /// 32 words per slot, in slot order: the lifecycle part (words 0–15), then the activity part (16–31).
    private let storage: RecordWords
    /// The slots copied: `firstID ..< firstID + slotCount` (every slot, or one group's).
    public let firstID: WorkerID
    public let slotCount: Int
    /// When the copy was taken, in nanoseconds since the epoch.
    public let takenAt: UInt64

    /// The first 256 bytes of each record: the parts pickup and the console scan. The exits and
    /// latency parts that follow are read only by full snapshots.
    static let wordsPerSlot = 32

    init(words: [UInt64], firstID: WorkerID = WorkerID(1), slotCount: Int, takenAt: UInt64) {
        self.init(storage: RecordWords(words), firstID: firstID, slotCount: slotCount, takenAt: takenAt)
    }

    fileprivate init(storage: RecordWords, firstID: WorkerID, slotCount: Int, takenAt: UInt64) {
        self.storage = storage
        self.firstID = firstID
        self.slotCount = slotCount
        self.takenAt = takenAt
    }

    func word(_ id: WorkerID, _ offset: Int) -> UInt64 {
        storage.words[(id.rawValue - firstID.rawValue) * Self.wordsPerSlot + offset / 8]
    }

    /// The slot's lifecycle state.
    public func state(of id: WorkerID) -> WorkerState {
        SharedCodes.state(word(id, SharedLayout.Lifecycle.state))
    }

    /// The slot's process id, 0 when none.
    public func pid(of id: WorkerID) -> Int32 { Int32(truncatingIfNeeded: word(id, SharedLayout.Lifecycle.pid)) }

    /// The slot's group id.
    public func groupID(of id: WorkerID) -> Int { SharedLayout.capped(word(id, SharedLayout.Lifecycle.groupID)) }

    /// The slot's activity part.
    public func activity(of id: WorkerID) -> WorkerActivity {
        WorkerActivity { word(id, $0) }
    }
}

extension PoolStateReader {
    /// Copies every slot record coherently, without decoding (see ``PoolRecords``).
    public func records() -> PoolRecords {
        records(from: WorkerID(1), count: segment.slotsInUse)
    }

    /// One slot's state, process and job load, for pickup: four words read one by one, without
    /// the record's sequence words. Pickup is a heuristic that a value a moment old serves as
    /// well, and this touches two cache lines of the slot and allocates nothing, where copying
    /// the group's records costs four lines and an array per slot, per job. The pid tells a
    /// sender whether a slot it lost a job on has its replacement yet. Nil for an id outside
    /// the segment.
    public func pickupLoad(of id: WorkerID) -> (state: WorkerState, pid: Int32, jobsInFlight: UInt64, inFlightWeight: UInt64)? {
        guard id.rawValue >= 1 && id.rawValue <= segment.slotCount else { return nil }
        let base = segment.slotBase(id)
        let state = SharedCodes.state(segment.word(base + SharedLayout.Lifecycle.state).pointee.load(ordering: .relaxed))
        return (
            state, Int32(truncatingIfNeeded: segment.word(base + SharedLayout.Lifecycle.pid).pointee.load(ordering: .relaxed)),
            segment.word(base + SharedLayout.Activity.jobsInFlight).pointee.load(ordering: .relaxed),
            segment.word(base + SharedLayout.Activity.inFlightWeight).pointee.load(ordering: .relaxed)
        )
    }

    /// Copies one group's slot records: what a job sender needs per job, without the rest of the pool.
    public func records(of group: GroupDescription) -> PoolRecords {
        records(from: group.firstWorkerID, count: group.maxWorkers)
    }

    private func records(from firstID: WorkerID, count requested: Int) -> PoolRecords {
        let count = max(0, min(requested, segment.slotCount - (firstID.rawValue - 1)))
        let perSlot = PoolRecords.wordsPerSlot
        let half = perSlot / 2
        let first = segment.slotBase(firstID)
        let stride = segment.geometry.slotRecordSize
        let storage = recycledWords.withLock { kept -> RecordWords in
            // The last copy's storage, once nobody holds that copy any more: the words of 1,000
            // slots are 256 KiB, and glibc gave a fresh allocation that size back to the kernel
            // at each free, so every copy faulted its 64 pages in anew (records() 57 µs, 16 µs
            // with the allocator told to keep them; bench snapshot_read).
            let storage = kept != nil && isKnownUniquelyReferenced(&kept!) ? kept! : RecordWords([])
            kept = storage
            if storage.words.count != count * perSlot { storage.words = [UInt64](repeating: 0, count: count * perSlot) }
            storage.words.withUnsafeMutableBufferPointer { buffer in
                for slot in 0..<count {
                    let base = first + slot * stride
                    let out = slot * perSlot
                    // Each part under its own sequence word: retried until it is not torn (a part left
                    // mid-write by a dead writer is read as it is, see SharedSegment.read).
                    for part in 0..<2 {
                        let partBase = base + part * half * 8
                        // The lifecycle part is the watcher's, the activity part the slot's process's
                        // (read only if the part stays mid-write).
                        segment.read(sequenceAt: partBase, writer: part == 0 ? segment.watcherPID : segment.workerPID(atSlot: base)) {
                            for index in 0..<half {
                                buffer[out + part * half + index] = segment.word(partBase + index * 8).pointee.load(ordering: .relaxed)
                            }
                        }
                    }
                }
            }
            return storage
        }
        return PoolRecords(storage: storage, firstID: firstID, slotCount: count, takenAt: Posix.wallClockNanoseconds())
    }
}

/// The words of a ``PoolRecords`` copy, in storage the reader that made it takes back for its
/// next copy once no copy holds it.
final class RecordWords: @unchecked Sendable {
    // @unchecked: written only by the reader, under its lock, while no ``PoolRecords`` holds
    // it (`isKnownUniquelyReferenced`, as an array's copy on write decides); read-only while one does.
    var words: [UInt64]

    init(_ words: [UInt64]) {
        self.words = words
    }
}

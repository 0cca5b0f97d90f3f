import Synchronization

/// A worker's writer of its own activity part in shared memory.
final class WorkerActivityRecorder: Sendable {
    private let segment: SharedSegment
    private let base: Int
    // One writer per part: threads of the worker take turns.
    private let lock = Mutex(())

    init(segmentName: String, id: WorkerID) throws {
        segment = try SharedSegment.open(name: segmentName, writable: true)
        guard id.rawValue >= 1 && id.rawValue <= segment.slotCount else {
            throw SharedStateError(code: .invalidWorker, message: "worker id \(id) has no slot in \(segmentName)")
        }
        base = segment.slotBase(id)
    }

    func update(_ body: (inout WorkerActivity) -> Void) {
        lock.withLock { _ in
            var activity = PoolStateReader(segment: segment).readActivity(base)
            body(&activity)
            activity.lastUpdate = Posix.wallClockNanoseconds()
            segment.write(sequenceAt: base + SharedLayout.Activity.sequence) {
                activity.forEachWord { offset, value in segment.store(base + offset, value) }
            }
        }
    }
}

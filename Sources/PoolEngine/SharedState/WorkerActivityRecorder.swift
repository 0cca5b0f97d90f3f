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
            typealias A = SharedLayout.Activity
            segment.write(sequenceAt: base + A.sequence) {
                segment.store(base + A.jobsAccepted, activity.jobsAccepted)
                segment.store(base + A.jobsProcessed, activity.jobsProcessed)
                segment.store(base + A.jobsErrors, activity.jobsErrors)
                segment.store(base + A.jobsRejected, activity.jobsRejected)
                segment.store(base + A.jobsInFlight, activity.jobsInFlight)
                segment.store(base + A.inFlightWeight, activity.inFlightWeight)
                segment.store(base + A.connectionsAccepted, activity.connectionsAccepted)
                segment.store(base + A.connectionsProcessed, activity.connectionsProcessed)
                segment.store(base + A.connectionsErrors, activity.connectionsErrors)
                segment.store(base + A.connectionsActive, activity.connectionsActive)
                segment.store(base + A.currentJobID, activity.currentJobID)
                segment.store(base + A.currentJobSince, activity.currentJobSince)
                segment.store(base + A.lastUpdate, activity.lastUpdate)
            }
        }
    }
}

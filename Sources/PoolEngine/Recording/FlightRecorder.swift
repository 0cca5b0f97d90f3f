import Synchronization

/// The watcher's flight recorder: once a second, the whole pool as shared memory shows it and
/// the events since the last frame, appended to the pool's ring file (``FlightRecordingFile``).
/// `pooltop replay` and `pooltop top --once --at` read it back.
///
/// Runs on the watcher loop's tick; events arrive from ``WorkerPool``'s publishing, the same
/// records its event log and log file get.
final class FlightRecorder: Sendable {
    static let interval: Duration = .seconds(1)
    /// Of a frame's ``FlightFrame/eventLimit``, what log lines may take: a flood of them must
    /// not push the exits and restarts of that second out of the recording.
    static let logLimit = FlightFrame.eventLimit / 2

    /// An unchanged second is a frame of no bytes; a whole frame is written at least this often
    /// all the same, so the ring never holds many seconds that point at a frame it lost.
    static let keyframeInterval: Duration = .seconds(60)

    private struct Pending {
        var events: [PoolEventRecord] = []
        var logs = 0
        var dropped = 0
        var lastFrame: PoolInstant?
        /// The change stamp of the last whole frame, and when it was written.
        var stamp: UInt64?
        var keyframe: PoolInstant?
    }

    private let file: Mutex<FlightRecordingFile>
    private let reader: PoolStateReader
    private let pending = Mutex(Pending())

    init(file: sending FlightRecordingFile, reader: PoolStateReader) {
        self.file = Mutex(file)
        self.reader = reader
    }

    /// Keeps an event for the next frame (or counts it, past the frame's limits).
    func note(_ record: PoolEventRecord) {
        pending.withLock { pending in
            let isLog: Bool
            if case .workerLog = record.event { isLog = true } else { isLog = false }
            guard pending.events.count < FlightFrame.eventLimit, !isLog || pending.logs < Self.logLimit else {
                pending.dropped += 1
                return
            }
            if isLog { pending.logs += 1 }
            pending.events.append(record)
        }
    }

    /// Whether a frame is due (a tick may come a little early: 10 % slack).
    func isDue(at now: PoolInstant) -> Bool {
        pending.withLock { pending in pending.lastFrame.map { now.duration(since: $0) >= Self.interval * 0.9 } ?? true }
    }

    /// Records the pool as it is now: the whole pool, or, when nothing in shared memory changed
    /// and no event came since the last whole frame, an empty frame that says so (an idle pool
    /// then costs a few microseconds a second instead of a snapshot).
    func record(at now: PoolInstant) {
        let stamp = reader.changeStamp()
        let taken = pending.withLock { pending -> (events: [PoolEventRecord], dropped: Int)? in
            let unchanged =
                pending.stamp == stamp && pending.events.isEmpty && pending.dropped == 0
                && pending.keyframe.map { now.duration(since: $0) < Self.keyframeInterval } == true
            let taken = unchanged ? nil : (pending.events, pending.dropped)
            pending = Pending(
                lastFrame: now, stamp: stamp, keyframe: unchanged ? pending.keyframe : now)
            return taken
        }
        guard let taken else {
            file.withLock { _ = $0.append([], at: Posix.wallClockNanoseconds()) }
            return
        }
        let snapshot = reader.snapshot()
        let frame = FlightFrame(snapshot: snapshot, events: taken.events, droppedEvents: taken.dropped)
        let bytes = frame.encoded()
        file.withLock { _ = $0.append(bytes, at: UInt64(max(0, snapshot.takenAt * 1e9))) }
    }
}

import Synchronization

/// The watcher's flight recorder: once a second, the whole pool as shared memory shows it and
/// the events since the last frame, appended to the pool's ring file (``FlightRecordingFile``).
/// `pooltop replay` and `pooltop top --once --at` read it back.
///
/// Runs on the watcher loop's tick; events arrive from ``WorkerPool``'s publishing, the same
/// records its event log and log file get.
///
/// An idle pool is not recorded second by second: after ``dozeAfter`` unchanged seconds the
/// recorder dozes (``isDozing``; the loop then stops ticking every second) and the segment's
/// doze bell is armed. The first worker to change shared memory after that rings it (a control
/// message), as does any event: ``wake(at:)`` records that moment and the seconds resume. A
/// tick that comes meanwhile for another reason (a resource sample) still records a frame when
/// something changed. So a stretch with no frame is a stretch in which nothing changed.
final class FlightRecorder: Sendable {
    static let interval: Duration = .seconds(1)
    /// Of a frame's ``FlightFrame/eventLimit``, what log lines may take: a flood of them must
    /// not push the exits and restarts of that second out of the recording.
    static let logLimit = FlightFrame.eventLimit / 2

    /// An unchanged second is a frame of no bytes; a whole frame is written at least this often
    /// all the same, so the ring never holds many seconds that point at a frame it lost.
    static let keyframeInterval: Duration = .seconds(60)

    /// Unchanged seconds (empty frames) before the recorder dozes: a pool between two bursts of
    /// jobs a second or two apart keeps its seconds.
    static let dozeAfter = 3

    private struct Pending {
        var events: [PoolEventRecord] = []
        var logs = 0
        var dropped = 0
        var lastFrame: PoolInstant?
        /// The change stamp of the last whole frame, and when it was written.
        var stamp: UInt64?
        var keyframe: PoolInstant?
        /// Empty frames in a row, and whether the recorder dozes.
        var unchangedSeconds = 0
        var isDozing = false
    }

    private let file: Mutex<FlightRecordingFile>
    private let reader: PoolStateReader
    private let pending = Mutex(Pending())

    init(file: sending FlightRecordingFile, reader: PoolStateReader) {
        self.file = Mutex(file)
        self.reader = reader
    }

    /// Whether the recorder dozes: the loop need not tick every second for it.
    var isDozing: Bool { pending.withLock { $0.isDozing } }

    /// Keeps an event for the next frame (or counts it, past the frame's limits); an event
    /// ends a doze, so the loop's next tick records it.
    func note(_ record: PoolEventRecord) {
        let woke = pending.withLock { pending -> Bool in
            let woke = pending.isDozing
            pending.isDozing = false
            pending.unchangedSeconds = 0
            let isLog: Bool
            if case .workerLog = record.event { isLog = true } else { isLog = false }
            if pending.events.count < FlightFrame.eventLimit, !isLog || pending.logs < Self.logLimit {
                if isLog { pending.logs += 1 }
                pending.events.append(record)
            } else {
                pending.dropped += 1
            }
            return woke
        }
        if woke { reader.segment.disarmDozeBell() }
    }

    /// Whether a frame is due (a tick may come a little early: 10 % slack).
    func isDue(at now: PoolInstant) -> Bool {
        pending.withLock { pending in pending.lastFrame.map { now.duration(since: $0) >= Self.interval * 0.9 } ?? true }
    }

    /// Records the pool as it is now: the whole pool, or, when nothing in shared memory changed
    /// and no event came since the last whole frame, an empty frame that says so (32 bytes
    /// instead of a snapshot), or, dozing, nothing.
    func record(at now: PoolInstant) {
        let stamp = reader.changeStamp()
        enum Outcome {
            case whole(events: [PoolEventRecord], dropped: Int)
            case unchanged
            /// Unchanged while dozing: the missing frame says so.
            case nothing
            /// Unchanged long enough: arm the bell, then doze unless a change raced in.
            case doze
        }
        let outcome = pending.withLock { pending -> Outcome in
            let unchanged =
                pending.stamp == stamp && pending.events.isEmpty && pending.dropped == 0
                && (pending.isDozing || pending.keyframe.map { now.duration(since: $0) < Self.keyframeInterval } == true)
            if unchanged && pending.isDozing {
                pending.lastFrame = now
                return .nothing
            }
            let taken = pending
            pending = Pending(
                lastFrame: now, stamp: stamp, keyframe: unchanged ? taken.keyframe : now,
                unchangedSeconds: unchanged ? taken.unchangedSeconds + 1 : 0, isDozing: taken.isDozing)
            guard unchanged else { return .whole(events: taken.events, dropped: taken.dropped) }
            return pending.unchangedSeconds >= Self.dozeAfter ? .doze : .unchanged
        }
        switch outcome {
        case .nothing:
            return
        case .unchanged:
            file.withLock { _ = $0.append([], at: Posix.wallClockNanoseconds()) }
            return
        case .doze:
            file.withLock { _ = $0.append([], at: Posix.wallClockNanoseconds()) }
            reader.segment.armDozeBell()
            // A writer that changed the segment before it could see the bell did not ring.
            let raced = reader.changeStamp() != stamp
            if raced {
                reader.segment.disarmDozeBell()
            } else {
                pending.withLock { $0.isDozing = true }
            }
            return
        case .whole(let events, let dropped):
            write(events: events, dropped: dropped)
        }
    }

    /// A writer of shared memory rang the bell (or the watcher itself changed something no
    /// event tells): the seconds resume, starting with this one.
    func wake(at now: PoolInstant) {
        let wasDozing = pending.withLock { pending -> Bool in
            defer {
                pending.isDozing = false
                pending.unchangedSeconds = 0
            }
            return pending.isDozing
        }
        guard wasDozing else { return }
        reader.segment.disarmDozeBell()
        record(at: now)
    }

    private func write(events: [PoolEventRecord], dropped: Int) {
        let snapshot = reader.snapshot()
        let frame = FlightFrame(snapshot: snapshot, events: events, droppedEvents: dropped)
        let bytes = frame.encoded()
        file.withLock { _ = $0.append(bytes, at: UInt64(max(0, snapshot.takenAt * 1e9))) }
    }
}

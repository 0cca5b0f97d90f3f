/// The fixed layout of a pool's shared-memory segment (its version is ``version``). Every field is a
/// little-endian 64-bit word read and written atomically; `docs/shared-state.md` is the
/// reference for who writes what.
///
/// `package`, with the figures of its header and sequence words: the fuzz harness (Tests/Fuzz)
/// lays a plausible header over random bytes.
package enum SharedLayout {
    package static let magic: UInt64 = 0x3150_4F54_4C4F_4F50  // "POOLTOP1" read as bytes
    /// Version 2 added the exits by reason, the job latency histograms and the group's
    /// scaling and pickup-miss counters (issue 7's metrics); version 3 the running-jobs
    /// tables (``RunningJobsTable``).
    package static let version: UInt64 = 3

    package static let headerSize = 512
    package static let groupRecordSize = 192
    package static let slotRecordSize = 768
    static let nameBytes = 64

    /// Header words, by byte offset.
    package enum Header {
        package static let magic = 0
        package static let version = 8
        package static let headerSize = 16
        package static let groupCount = 24
        package static let groupOffset = 32
        package static let groupRecordSize = 40
        package static let slotCount = 48
        package static let slotOffset = 56
        package static let slotRecordSize = 64
        static let watcherPID = 72
        static let startedAt = 80
        static let hardRestarts = 88
        static let softRestarts = 96
        static let lastSampleAt = 104
        static let poolState = 112
        static let name = 128
        /// Where the running-jobs tables start, and their total size in bytes.
        static let runningJobsOffset = 192
        static let runningJobsSize = 200
        /// Group records and slots in use (the rest is the reserve `apply` may take), stored
        /// with release ordering after the records they count; 0 in a segment from a build
        /// before `apply`, meaning all of them. Space v3 left zero.
        static let groupsInUse = 208
        static let slotsInUse = 216
        /// 1 while the flight recorder dozes (nothing changed for a few seconds, so it stopped
        /// waking every second): the first writer to change a word it watches takes the 1 and
        /// wakes it (``SharedSegment/takeDozeBell()``). Space a v3 segment left zero.
        static let recorderDozing = 224
    }

    /// Group record words. `id`, `kind` and `name` never change once the id is set (a record
    /// with id 0 is free, kept for `pooltop apply`); `min`, `max` and `definition` change only
    /// by `apply`, each one word; the counts are written under the record's sequence word.
    package enum Group {
        package static let sequence = 0
        static let id = 8
        static let kind = 16
        static let minWorkers = 24
        static let maxWorkers = 32
        static let desired = 40
        static let running = 48
        static let ready = 56
        static let name = 64
        /// Scale operations that changed the desired count (watcher, under the sequence word).
        static let scalingEvents = 128
        /// Jobs sent to the group that found no ready worker with room, counted by every sender
        /// with an atomic add: many writers, so outside the sequence word.
        static let pickupMisses = 136
        /// What the group waits for before it starts (`after:`), under the sequence word: 0 for
        /// nothing, else the awaited group's id << 8 | the condition (1 started, 2 ready,
        /// 3 completed), | 0x80 when it can no longer be met. Space a v3 segment left zero.
        static let waitingFor = 144
        /// The group's definition hash (``GroupDescription/definitionHash``); 0 from a build
        /// before `apply`. Space a v3 segment left zero.
        static let definition = 152
        /// 1 once `apply` removed the group and its last worker exited: readers skip it.
        static let retired = 160
    }

    /// Slot record, lifecycle part (written only by the watcher), under its own sequence word.
    package enum Lifecycle {
        package static let sequence = 0
        static let id = 8
        static let groupID = 16
        static let state = 24
        static let pid = 32
        static let generation = 40
        static let firstStartedAt = 48
        static let startedAt = 56
        static let readyAt = 64
        static let finishedAt = 72
        static let restarts = 80
        static let lastExit = 88
        static let lastExitAt = 96
        static let backoffUntil = 104
        static let rssBytes = 112
        static let cpuNanoseconds = 120
    }

    /// Slot record, activity part (written only by the worker), on its own cache lines.
    package enum Activity {
        package static let sequence = 128
        static let jobsAccepted = 136
        static let jobsProcessed = 144
        static let jobsErrors = 152
        static let jobsRejected = 160
        static let jobsInFlight = 168
        static let inFlightWeight = 176
        static let connectionsAccepted = 184
        static let connectionsProcessed = 192
        static let connectionsErrors = 200
        static let connectionsActive = 208
        static let currentJobID = 216
        static let currentJobSince = 224
        static let lastUpdate = 232
        static let jobsProcessedBeforeStart = 240
        /// The worker's heartbeat: CLOCK_MONOTONIC nanoseconds of its event loop's last beat,
        /// stored alone (not under the sequence word) by the loop's thread; 0 before the first.
        /// The watcher reads it to tell a hung worker (`hangTimeout`). Space v3 left zero.
        static let heartbeat = 248
    }

    /// Slot record, exits by reason: one counter per ``ExitReason`` (at its ``SharedCodes`` number),
    /// written by the watcher under the lifecycle sequence word; room for 16 reasons.
    enum Exits {
        static let first = 256
        static let capacity = 16
    }

    /// Slot record, job latency part (written only by the worker), under its own sequence word:
    /// two histograms, queue wait then run time, each a count, a sum in nanoseconds and one
    /// (non-cumulative) count per bucket of ``LatencyHistogram/bounds``.
    package enum Latency {
        package static let sequence = 384
        static let wait = 392
        static let run = 392 + histogramWords * 8
        /// count, sum, then the buckets (the last one is +Inf).
        static let histogramWords = 2 + LatencyHistogram.bucketCount
        static let count = 0
        static let sum = 8
        static let buckets = 16
    }

    /// Slot record, the current job's particulars (written only by the worker, after the
    /// latency part): who sent the job the worker starts, its priority and weight and the head
    /// of its payload, stored before `Activity.currentJobID` names the job, so a post-mortem
    /// read after the worker died finds the job it was running described. Plain stores, no
    /// sequence word: nobody reads them while the worker lives. Space v3 left zero.
    package enum CurrentJob {
        /// Sender's worker id << 48 | sender's group id << 32 | weight (32 bits); 0 for a job
        /// from outside the pool (an operator, the console). With bit 63 set, a reactor's
        /// request instead (``Worker/requestStarted(_:)``): bits 0–62 say when it started
        /// (milliseconds since the epoch), and the request's first ``requestBytes`` bytes fill
        /// `priority` and `head`.
        static let sender = 728
        static let requestFlag: UInt64 = 1 << 63
        static let requestBytes = 24
        /// The priority, as a two's-complement 64-bit word.
        static let priority = 736
        /// The payload's first ``headBytes`` bytes (zero-padded), then its length.
        static let head = 744
        static let headBytes = 16
        static let payloadLength = 760
    }

    /// The records' size; the running-jobs tables follow them.
    static func size(groups: Int, slots: Int) -> Int {
        headerSize + groups * groupRecordSize + slots * slotRecordSize
    }

    /// A count, id or index read back from the segment as an `Int`: capped at 2^48, which no real
    /// counter reaches, so a corrupt word neither traps the conversion nor overflows a sum over
    /// the 4,096 workers a pool may have.
    static func capped(_ word: UInt64) -> Int { Int(min(word, 1 << 48)) }

    /// The segment's name: per user and pool, so pools of different names or users never collide.
    static func segmentName(pool: String, uid: UInt32) -> String { "/pooltop-\(uid)-\(pool)" }

}

/// The numbers stored in the segment for states, kinds and exit reasons, written out rather than
/// taken from a case's position: a case added to an enum (a new exit reason) then cannot shift
/// what a reader of another build decodes. A new case takes the next free number; a number is
/// never reused. They equal the positions layout version 3 used, so its segments read the same.
enum SharedCodes {
    static func code(_ state: WorkerState) -> UInt64 {
        switch state {
        case .stopped: 0
        case .starting: 1
        case .ready: 2
        case .stopping: 3
        case .backoff: 4
        case .finished: 5
        case .failed: 6
        }
    }

    /// An unknown number reads as `stopped`: nothing runs that the reader could act on.
    static func state(_ code: UInt64) -> WorkerState {
        switch code {
        case 1: .starting
        case 2: .ready
        case 3: .stopping
        case 4: .backoff
        case 5: .finished
        case 6: .failed
        default: .stopped
        }
    }

    static func code(_ kind: WorkerKind) -> UInt64 {
        switch kind {
        case .reactor: 0
        case .job: 1
        case .service: 2
        }
    }

    /// A group's `waitingFor` word: the awaited group's id << 8, the condition (1 started,
    /// 2 ready, 3 completed), and 0x80 when it can no longer be met; 0 for not waiting.
    static func waiting(for group: GroupID, _ condition: GroupDependency.Condition, blocked: Bool) -> UInt64 {
        let code: UInt64 = switch condition {
        case .started: 1
        case .ready: 2
        case .completed: 3
        }
        return UInt64(group.rawValue) << 8 | code | (blocked ? 0x80 : 0)
    }

    /// Reads a `waitingFor` word back; nil for 0 or a word that is not one.
    static func waiting(_ word: UInt64) -> (group: Int, condition: GroupDependency.Condition, blocked: Bool)? {
        let condition: GroupDependency.Condition
        switch word & 0x7F {
        case 1: condition = .started
        case 2: condition = .ready
        case 3: condition = .completed
        default: return nil
        }
        return (SharedLayout.capped(word >> 8), condition, word & 0x80 != 0)
    }

    static func kind(_ code: UInt64) -> WorkerKind? {
        switch code {
        case 0: .reactor
        case 1: .job
        case 2: .service
        default: nil
        }
    }

    /// Also the index of the reason's counter in a slot's exits part (``SharedLayout/Exits``).
    static func code(_ reason: ExitReason) -> UInt64 {
        switch reason {
        case .cleanExit: 0
        case .crash: 1
        case .signal: 2
        case .bootFailure: 3
        case .terminate: 4
        case .fatal: 5
        case .shutdown: 6
        case .scaleDown: 7
        case .restart: 8
        case .stopped: 9
        case .quota: 10
        case .hang: 11
        }
    }

    static func reason(_ code: UInt64) -> ExitReason? {
        switch code {
        case 0: .cleanExit
        case 1: .crash
        case 2: .signal
        case 3: .bootFailure
        case 4: .terminate
        case 5: .fatal
        case 6: .shutdown
        case 7: .scaleDown
        case 8: .restart
        case 9: .stopped
        case 10: .quota
        case 11: .hang
        default: nil
        }
    }

    /// Every reason in `allCases` order, made once: the watcher publishes exits on its loop, and
    /// a synthesized `allCases` builds a new array at each use.
    static let reasons = ExitReason.allCases
}

/// Whether the watcher is still running the pool, as the header says.
public enum PoolRunState: UInt64, Sendable, Codable, CustomStringConvertible {
    case starting = 0
    case running = 1
    case stopping = 2
    case stopped = 3

    public var description: String {
        switch self {
        case .starting: return "starting"
        case .running: return "running"
        case .stopping: return "stopping"
        case .stopped: return "stopped"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let state = [PoolRunState.starting, .running, .stopping, .stopped].first(where: { $0.description == text }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown pool state '\(text)'"))
        }
        self = state
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

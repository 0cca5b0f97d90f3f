/// A rolling restart of one group as the watcher core tracks it: every process that ran when
/// it began is replaced once, one at a time, and the group never runs fewer ready workers
/// than before.
///
/// While the group has a spare slot (stopped and not wanted: fewer wanted than its max), each
/// replacement starts there beside the worker it replaces, and only once it is ready is the
/// old one asked to finish; the old slot becomes the next spare. A group at its max has no
/// room: each worker is then asked to finish first and its own slot starts the replacement
/// (a reactor's socket stays open, so its connections queue for the replacement).
/// The roll stops at the first replacement that does not get ready (its start timeout, a
/// crash, its restart policy giving up), leaving the workers not yet reached untouched.
struct RollingRestart: Hashable, Sendable {
    enum Phase: Hashable, Sendable {
        /// Choosing the next worker to replace.
        case next
        /// A replacement starts in spare slot `spare` beside `replacing`.
        case startingSpare(spare: WorkerID, generation: Int, replacing: WorkerID)
        /// The replacement is ready; the replaced worker finishes its work and leaves.
        case retiring(WorkerID, generation: Int, replacement: WorkerID)
        /// No spare: the worker was asked to finish, and its slot starts the replacement.
        case restartingInPlace(WorkerID, after: Int)
    }

    let group: GroupID
    /// Who waits for the roll's end; nil for a roll `apply` started (told by events only).
    let reply: ReplyToken?
    /// One process to replace: its slot and generation.
    struct Process: Hashable, Sendable {
        var id: WorkerID
        var generation: Int
    }

    /// The processes still to replace, lowest slot first.
    var pending: [Process]
    /// How many processes ran when the roll began.
    let total: Int
    var replaced = 0
    var phase: Phase = .next

    init(group: GroupID, reply: ReplyToken?, running: [Process]) {
        self.group = group
        self.reply = reply
        self.pending = running
        self.total = running.count
    }
}

/// A rolling restart's progress, as ``PoolEvent/groupRolling(group:_:)`` tells it.
public enum RollingRestartProgress: Hashable, Sendable, Codable {
    /// The roll began, with this many workers to replace.
    case started(workers: Int)
    /// `worker` was replaced by a ready worker in slot `by` (the same slot when the group had no spare).
    case replaced(WorkerID, by: WorkerID, done: Int, of: Int)
    /// Every worker that ran when the roll began was replaced (or had already left).
    case finished(replaced: Int)
    /// The roll stopped; the workers not yet reached were left running.
    case failed(replaced: Int, of: Int, why: String)
}

extension RollingRestartProgress: CustomStringConvertible {
    /// One line for logs, the console and `pooltop events`.
    public var description: String {
        switch self {
        case .started(let workers): return "rolling restart began: \(workers) worker(s) to replace"
        case .replaced(let worker, let by, let done, let total):
            return by == worker
                ? "rolling restart replaced worker \(worker) in place (\(done) of \(total))"
                : "rolling restart replaced worker \(worker) by worker \(by) (\(done) of \(total))"
        case .finished(let replaced): return "rolling restart finished: \(replaced) worker(s) replaced"
        case .failed(let replaced, let total, let why): return "rolling restart stopped after \(replaced) of \(total): \(why)"
        }
    }

    /// Reads the progress back from a `group-rolling` event line of the control protocol.
    public init?(event line: JSONValue) {
        let replaced = line["replaced"]?.integer ?? 0
        let total = line["total"]?.integer ?? 0
        switch line["step"]?.string {
        case "started": self = .started(workers: total)
        case "replaced":
            self = .replaced(
                WorkerID(line["worker"]?.integer ?? 0), by: WorkerID(line["replacement"]?.integer ?? 0), done: replaced, of: total)
        case "finished": self = .finished(replaced: replaced)
        case "failed": self = .failed(replaced: replaced, of: total, why: line["why"]?.string ?? "")
        default: return nil
        }
    }
}

/// A request to the watcher that its caller waits on (the API's async commands, the control
/// socket, the console). The core checks it, carries it out and answers it through its
/// ``ReplyToken`` with a ``WatcherAction/reply(_:_:)``: nothing outside the core validates.
enum WatcherCommand: Hashable, Sendable {
    /// Scale a group to a number of workers within its `min...max`.
    case scale(GroupID, to: Int)
    /// Restart one worker: `hard` kills it at once instead of asking it to finish.
    case restartWorker(WorkerID, hard: Bool)
    /// Restart every running worker of a group, each replaced as soon as it exits.
    case restartGroup(GroupID, hard: Bool)
    /// Stop one worker and keep its slot stopped (the group's desired count drops by one).
    case stopWorker(WorkerID)
    /// SIGKILL one worker now, as a crash would (an operator rehearsing recovery): the restart policy decides.
    case killWorker(WorkerID)
    /// Replace a group's running workers one at a time (see ``RollingRestart``); answered once
    /// the roll is over, with how many workers it replaced.
    case rollingRestart(GroupID)
    /// Carry out what `pooltop apply` planned (see ``PoolChange``); answered once the change
    /// is made (its rolls go on, told by events).
    case apply(PoolChange)
}

/// Names the caller waiting for a command's answer. The loop hands out tokens and keeps the
/// callers; the core only passes the token back in its reply.
struct ReplyToken: Hashable, Sendable {
    var rawValue: UInt64
}

/// A command's answer: how many workers it replaced (a rolling restart; 0 for the others),
/// or why it was refused or failed.
typealias CommandReply = Result<Int, CommandError>

/// The refusal of a command (scale, restart) with the reason an operator sees.
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of refusal: the control protocol's response `code`, for scripts to tell apart.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// No group of that name or id.
        case noSuchGroup = "no-such-group"
        /// No worker slot of that id.
        case noSuchWorker = "no-such-worker"
        /// A value outside what the group allows (a scale beyond `min...max`).
        case outOfRange = "out-of-range"
        /// The pool is not running: starting, stopping, restarting, or stopped.
        case notRunning = "not-running"
        /// The worker has no process to act on (kill).
        case noProcess = "no-process"
        /// Something else is under way on the group (a rolling restart); try again later.
        case busy
        /// The command started and could not finish (a rolling restart stopped at a replacement that did not start).
        case failed
        /// A call the API does not allow at this point (describing a group after `run()`, a second `run()`).
        case misuse
        /// A configuration `apply` cannot make on a running pool (the refusals say why).
        case cannotApply = "cannot-apply"
        /// A configuration that is not valid (`apply` of a file with an error).
        case invalidConfiguration = "invalid-configuration"
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}


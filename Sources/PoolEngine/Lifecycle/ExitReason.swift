/// Why a worker's process ended, as the watcher classifies it. Kept per slot, logged,
/// and shown to operators; see `docs/worker-lifecycle.md` for the full table.
public enum ExitReason: String, Hashable, Sendable, Codable, CaseIterable, CodingKeyRepresentable {
    /// Exits the pool asked for or that are a worker's normal end (logged at info, not error).
    public static let expected: Set<ExitReason> = [.shutdown, .scaleDown, .restart, .cleanExit, .terminate, .stopped]

    /// `run()` returned (or the process exited 0) without being asked to stop; the restart policy decides.
    case cleanExit = "clean-exit"
    /// A non-zero exit, an error thrown with `WorkerExit.restart`, or a lost control channel.
    case crash
    /// Ended by a signal nobody in the pool sent (SIGKILL from an operator, SIGSEGV, …).
    case signal
    /// Ended before it became ready: spawn failed, `initialize` crashed, or the start timeout passed.
    case bootFailure = "boot-failure"
    /// The worker threw `WorkerExit.terminate`: its slot stops for good and the pool goes on.
    case terminate
    /// The worker threw `WorkerExit.fatal` (or an uncaught error under `.stopPool`): the pool stops.
    case fatal
    /// The pool is shutting down.
    case shutdown
    /// The group was scaled down.
    case scaleDown = "scale-down"
    /// The worker was restarted on request (hard, soft, group or single-worker restart).
    case restart
    /// An operator stopped this worker; its slot stays stopped until restarted or scaled up.
    case stopped
    /// The worker reached a recycle quota (jobs, memory, lifetime, idle time) and was replaced.
    case quota
    /// Its heartbeat stood still for its group's `hangTimeout` (a program: no `WATCHDOG=1`
    /// within its `watchdog`): the watcher captured its threads' backtraces and killed it; the
    /// restart policy decides what follows.
    case hang
}

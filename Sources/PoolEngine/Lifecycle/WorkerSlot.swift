/// One worker slot's lifecycle state: written only by the watcher's pure core.
struct WorkerSlot: Hashable, Sendable {
    let id: WorkerID
    /// Index of the owning group in ``PoolDescription/groups``.
    let groupIndex: Int
    var state: WorkerState = .stopped
    /// Whether the slot should have a running worker (started at boot or by scaling up).
    var isDesired = false
    /// Incremented at every spawn; events of an older generation are stale and ignored.
    var generation = 0
    var pid: Int32 = 0
    var firstStartedAt: PoolInstant?
    var startedAt: PoolInstant?
    /// When the last process exited.
    var exitedAt: PoolInstant?
    var readyAt: PoolInstant?
    /// Why the watcher asked the current process to stop, if it did.
    var stopReason: ExitReason?
    /// The words that go with it (which quota a recycle reached).
    var stopMessage: String?
    /// When the current process is killed if it has not exited (stop or start timeout, lost channel).
    var killAt: PoolInstant?
    /// Why `killAt` was set, for the event that reports the kill.
    var killWhy: String?
    /// A program worker with a watchdog is killed when this passes without a `WATCHDOG=1`.
    var watchdogAt: PoolInstant?
    /// When the current process is looked at for a hang next: its heartbeat must have moved
    /// since `hangAt - hangTimeout` (set when it becomes ready, if its group has a timeout).
    var hangAt: PoolInstant?
    /// Set once the process was found hung: its backtrace is being captured, then it is killed.
    var hung = false
    /// Why the watcher killed the current process, once it has.
    var killedBecause: String?
    var backoffUntil: PoolInstant?
    /// What the worker said about its end, if it said anything before exiting.
    var report: WorkerExitReport?
    /// Exits in quick succession (each within `resetAfter` of becoming ready); drives the backoff.
    var rapidExits = 0
    /// When the policy-driven restarts happened, for `limited(maxRestarts:window:)`.
    var restartTimes: [PoolInstant] = []
    /// Restarts of this slot since the pool started, for any reason.
    var restarts = 0
    var lastExit: WorkerExitRecord?
    /// Exits of this slot's processes since the pool started, by ``ExitReason`` (in `allCases` order).
    var exits = [Int](repeating: 0, count: ExitReason.allCases.count)
    /// After the pool's current hard restart, whether this slot comes back.
    var restartsAfterHardRestart = false

    init(id: WorkerID, groupIndex: Int) {
        self.id = id
        self.groupIndex = groupIndex
    }
}

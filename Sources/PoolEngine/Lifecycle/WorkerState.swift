/// Where a worker slot is in its lifecycle (see `docs/worker-lifecycle.md`).
public enum WorkerState: String, Hashable, Sendable, Codable, CaseIterable {
    /// No process; the slot may be started by scaling or a restart.
    case stopped
    /// A process was spawned and has not yet said it is ready.
    case starting
    /// The worker said it is ready and is running its entry point.
    case ready
    /// The worker was asked to stop and has not exited yet.
    case stopping
    /// The worker exited and waits out its restart delay.
    case backoff
    /// The slot stopped for good: the restart policy said never, or the worker terminated itself.
    case finished
    /// The slot was given up on: too many restarts in the window, or a fatal error.
    case failed

    /// Whether a process may exist for the slot.
    public var hasProcess: Bool { self == .starting || self == .ready || self == .stopping }

    /// Whether the slot has a process or one is coming (a restart waiting out its backoff);
    /// false once the slot is at rest: stopped, finished or failed.
    public var isLive: Bool { hasProcess || self == .backoff }
}

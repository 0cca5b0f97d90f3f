/// What the watcher loop read of one worker: the activity the worker writes to its own part of
/// shared memory, and, when /proc was read this time, its resident memory. It reaches the core
/// as an input, so the core decides from what it was told, never from reading back the segment.
struct WorkerSample: Hashable, Sendable {
    var activity: WorkerActivity
    /// Resident bytes from /proc; nil when this sample did not read /proc.
    var rssBytes: UInt64?
    /// CPU time from /proc, with `rssBytes`.
    var cpuNanoseconds: UInt64?

    init(activity: WorkerActivity, rssBytes: UInt64? = nil, cpuNanoseconds: UInt64? = nil) {
        self.activity = activity
        self.rssBytes = rssBytes
        self.cpuNanoseconds = cpuNanoseconds
    }

    /// Whether the worker has work in flight: a scale-down stops it last.
    var isBusy: Bool { activity.jobsInFlight > 0 || activity.connectionsActive > 0 }
}

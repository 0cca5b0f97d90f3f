/// The hang watchdog's heartbeat in a worker: a beat, at least once a second, from the thread
/// whose stall is a hang (a job worker's job-server thread, where handlers that start inline
/// run; any other worker's event loop), so the watcher finds a hang at most a second late.
struct WorkerHeartbeat: Sendable {
    /// Time between beats, in nanoseconds: a quarter of the timeout, at most a second, at
    /// least a millisecond.
    let nanoseconds: UInt64
    let beat: @Sendable () -> Void

    init(hangTimeout: Duration, beat: @escaping @Sendable () -> Void) {
        let interval = min(.seconds(1), hangTimeout / 4)
        nanoseconds = UInt64(max(interval.nanoseconds, 1_000_000))
        self.beat = beat
    }
}

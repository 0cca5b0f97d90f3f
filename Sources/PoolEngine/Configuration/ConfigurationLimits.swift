/// The range of every duration, size, count and factor a pool description takes, in
/// `pool.yaml` and the Swift API alike. A value outside its range is a ``ConfigurationError``
/// naming the key; none can trap. `docs/reliability.md` lists them, checked by a test
/// against ``documented``.
public enum ConfigurationLimits {
    /// Slots of one group (its `max`): each is a process, a shared-memory record and, for
    /// reactors, one socket per listener.
    public static let workersPerGroup = 1024
    /// How deep a group's `settings` may nest (maps and lists within maps and lists): each
    /// worker reads them back level by level, and no setting needs more.
    public static let settingsDepth = 32
    /// Slots of the whole pool; the shared-memory segment is sized from it (768 bytes a slot).
    public static let workersPerPool = 4096
    /// Stop and start timeouts and the restart backoff: a day is already far past any real
    /// drain or boot; longer is a typo that would hang a stop for years.
    public static let longestTimeout: Duration = .seconds(86_400)
    /// The restart window, the backoff's reset, and shrinking after idleness.
    public static let longestWindow: Duration = .seconds(30 * 86_400)
    /// Recycling by lifetime or idleness.
    public static let longestRecycle: Duration = .seconds(365 * 86_400)
    public static let maxRestarts = 1_000_000
    public static let backoffFactor: ClosedRange<Double> = 1...1000
    public static let concurrentJobs: ClosedRange<Int> = 1...100_000
    public static let queuedJobs: ClosedRange<Int> = 0...1_000_000
    /// The job frame carries a weight as 32 bits.
    public static let concurrentWeight: ClosedRange<Int> = 0...Int(UInt32.max)
    public static let recycleJobs: ClosedRange<Int> = 1...1_000_000_000_000
    /// 16 TiB: above any host's memory, and exact in a `Double`.
    public static let memoryBytes: ClosedRange<UInt64> = 1...(1 << 44)
    /// Samples are one a second: an hour at most.
    public static let memorySamples: ClosedRange<Int> = 1...3600
    /// Linux caps the accept queue at `net.core.somaxconn`; 65535 is its largest setting.
    public static let backlog: ClosedRange<Int> = 1...65535
    /// A heartbeat beats at least every second; a shorter timeout would flag busy-but-alive workers.
    public static let hangTimeout: ClosedRange<Duration> = .milliseconds(100)...(.seconds(86_400))

    /// The flight recorder's span: at least a few seconds to replay; a day at most (the ring
    /// file is bounded anyway, see `docs/recording.md`).
    public static let recordFor: ClosedRange<Duration> = .seconds(10)...(.seconds(86_400))

    /// Log lines kept per worker: at 100,000 a pool of 256 workers keeps some 25 million lines
    /// in the watcher's memory, which is already more than anyone should.
    public static let logHistory: ClosedRange<Int> = 10...100_000

    /// The log file's rotation: 4 KiB holds a few dozen lines; 1 TiB is already no rotation.
    public static let logMaxSize: ClosedRange<UInt64> = 4096...(1 << 40)
    public static let logKeep: ClosedRange<Int> = 0...100

    /// Every bounded key and its range as `docs/reliability.md` writes it.
    public static let documented: [(key: String, range: String)] = [
        ("stopTimeout", "0 to 24h"),
        ("recordFor", "10s to 24h, or off"),
        ("logHistory", "10 to 100000"),
        ("logMaxSize", "4 KiB to 1 TiB"),
        ("logKeep", "0 to 100"),
        ("groups[].min", "0 to 1024, at most max"),
        ("groups[].max", "1 to 1024; 4096 slots in the whole pool"),
        ("groups[].stopTimeout", "0 to 24h"),
        ("groups[].startTimeout", "more than 0, at most 24h"),
        ("groups[].hangTimeout", "100ms to 24h, or off"),
        ("groups[].restart.maxRestarts", "0 to 1000000"),
        ("groups[].restart.window", "more than 0, at most 720h"),
        ("groups[].restart.backoff.initial", "0 to 24h"),
        ("groups[].restart.backoff.factor", "1 to 1000"),
        ("groups[].restart.backoff.max", "backoff.initial to 24h"),
        ("groups[].restart.backoff.resetAfter", "0 to 720h"),
        ("groups[].jobs.maxConcurrent", "1 to 100000"),
        ("groups[].jobs.maxWeight", "0 (no limit) to 4294967295"),
        ("groups[].jobs.maxQueued", "0 to 1000000"),
        ("groups[].scaling.shrinkAfterIdle", "0 to 720h, or never"),
        ("groups[].recycle.maxJobs", "1 to 1000000000000"),
        ("groups[].recycle.maxMemory", "1 B to 16 TiB"),
        ("groups[].recycle.memorySamples", "1 to 3600"),
        ("groups[].recycle.maxLifetime", "more than 0, at most 8760h"),
        ("groups[].recycle.maxIdle", "more than 0, at most 8760h"),
        ("groups[].recycle.jitter", "0 to under 1"),
        ("groups[].listen[].backlog", "1 to 65535"),
        ("groups[].settings", "maps and lists nested at most 32 levels"),
    ]
}

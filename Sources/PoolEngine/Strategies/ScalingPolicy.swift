/// Scaling by request: when no worker of a job group can take a job, a sender asks the watcher
/// for one more (up to max, at most one per 200 ms); an idle group shrinks back toward min.
public struct ScalingPolicy: Hashable, Sendable, Codable {
    /// Whether senders may grow the group.
    public var onDemand: Bool
    /// A group above min whose workers had no job in flight for this long loses one worker,
    /// then another after the same time again; nil keeps the workers.
    public var shrinkAfterIdle: Duration?

    public init(onDemand: Bool = true, shrinkAfterIdle: Duration? = .seconds(60)) {
        self.onDemand = onDemand
        self.shrinkAfterIdle = shrinkAfterIdle
    }

    /// Scaling by request with a shrink after a minute of idleness (the default).
    public static let byRequest = ScalingPolicy()
    /// The group changes size only when an operator scales it.
    public static let manual = ScalingPolicy(onDemand: false, shrinkAfterIdle: nil)
}

/// Recycling by quota (the seed's auto-restart by quota, working): a worker that reaches a
/// quota is replaced after finishing its jobs, and its exit reason names the quota.
///
/// Every limit is scaled by a random factor within ±`jitter` per worker process, so workers
/// started together do not recycle together.
public struct RecyclePolicy: Hashable, Sendable, Codable {
    /// Jobs processed by one process.
    public var maxJobs: Int?
    /// Resident memory, over `memorySamples` consecutive samples (one a second).
    public var maxMemoryBytes: UInt64?
    public var memorySamples: Int
    /// Time since the process became ready.
    public var maxLifetime: Duration?
    /// Time without any job or connection activity.
    public var maxIdle: Duration?
    /// 0.1 means each limit is scaled by a factor in 0.9...1.1.
    public var jitter: Double

    public init(
        maxJobs: Int? = nil, maxMemoryBytes: UInt64? = nil, memorySamples: Int = 3, maxLifetime: Duration? = nil,
        maxIdle: Duration? = nil, jitter: Double = 0.1
    ) {
        self.maxJobs = maxJobs
        self.maxMemoryBytes = maxMemoryBytes
        self.memorySamples = memorySamples
        self.maxLifetime = maxLifetime
        self.maxIdle = maxIdle
        self.jitter = jitter
    }

    /// Whether any quota is set.
    public var isActive: Bool { maxJobs != nil || maxMemoryBytes != nil || maxLifetime != nil || maxIdle != nil }
}

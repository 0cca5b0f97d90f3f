/// A job latency histogram as shared memory keeps it: one per worker slot for queue wait and
/// one for run time, summed per group by the metrics (`pooltop_job_queue_wait_seconds`,
/// `pooltop_job_run_seconds`).
public struct LatencyHistogram: Hashable, Sendable, Codable {
    /// Upper bounds of the buckets in seconds, from 50 µs (a job on an idle pool) to 30 s (the
    /// default job timeout); one more bucket, +Inf, takes the rest.
    public static let bounds: [Double] = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]
    static let boundNanoseconds: [UInt64] = bounds.map { UInt64(($0 * 1e9).rounded()) }
    static let bucketCount = bounds.count + 1

    public var count: UInt64 = 0
    public var sumNanoseconds: UInt64 = 0
    /// Observations per bucket, not cumulative: `bounds.count + 1` entries, the last for +Inf;
    /// empty while nothing was observed (a snapshot of 1,000 idle slots then builds no arrays).
    public var buckets: [UInt64] = []

    public init() {}

    public var sumSeconds: Double { Double(sumNanoseconds) / 1e9 }

    /// The bucket an observation of `nanoseconds` falls in.
    static func bucket(for nanoseconds: UInt64) -> Int {
        // 18 bounds: a linear scan is as quick as a binary search and simpler.
        boundNanoseconds.firstIndex { nanoseconds <= $0 } ?? bounds.count
    }

    /// Counts one observation (a process's own histogram; shared memory's are written by
    /// ``WorkerActivityRecorder`` word by word).
    package mutating func record(seconds: Double) {
        let nanoseconds = UInt64(max(0, min(seconds, 1e9)) * 1e9)
        if buckets.isEmpty { buckets = Array(repeating: 0, count: Self.bucketCount) }
        count &+= 1
        sumNanoseconds &+= nanoseconds
        buckets[Self.bucket(for: nanoseconds)] &+= 1
    }

    /// Adds another histogram's observations (workers of one group into the group's).
    public mutating func add(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        if buckets.isEmpty { buckets = Array(repeating: 0, count: Self.bucketCount) }
        count &+= other.count
        sumNanoseconds &+= other.sumNanoseconds
        for index in buckets.indices where index < other.buckets.count { buckets[index] &+= other.buckets[index] }
    }
}

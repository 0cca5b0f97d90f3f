/// When the watcher reads what from its workers. Pure: the pool, the time and whether anyone
/// is looking in; the next tick and what it reads out.
///
/// - The workers' activity (their own records in shared memory: plain loads, no system call)
///   is read at every tick: busy workers, job quotas and idle shrinking are decided from it.
/// - /proc (RSS and CPU time, a `pread` per worker) is read at full rate (`interval`) while
///   someone looks, and every `backgroundInterval` otherwise; the workers of groups with a
///   memory quota are read at full rate always, so their quota counts every sample.
/// - The tick itself runs at full rate while someone looks, while a group has a recycle quota,
///   or while a group grown on demand waits to shrink after idleness; otherwise at the
///   background rate.
struct SamplingSchedule: Sendable {
    let interval: Duration
    let backgroundInterval: Duration
    /// Groups (by index) whose workers' RSS is read at every tick: they have a memory quota.
    let memoryQuotaGroups: Set<Int>
    /// Whether some group has a recycle quota: decided from activity at every tick.
    let hasRecycleQuotas: Bool
    private(set) var lastResourceSample: PoolInstant?
    /// The last sample of any kind, and the rate chosen then: the first comes at full rate
    /// (figures for a new pool), then the rate follows whether anyone looks.
    private var lastSample: PoolInstant?
    private(set) var tickInterval: Duration

    init(pool: PoolDescription, interval: Duration, backgroundInterval: Duration) {
        self.interval = interval
        self.backgroundInterval = max(backgroundInterval, interval)
        memoryQuotaGroups = Set(pool.groups.indices.filter { pool.groups[$0].recycle?.maxMemoryBytes != nil })
        hasRecycleQuotas = pool.groups.contains { $0.recycle?.isActive ?? false }
        tickInterval = interval
    }

    /// Whether a sample is due (a tick can come a little early: 10 % slack).
    func isDue(at now: PoolInstant) -> Bool {
        lastSample.map { now.duration(since: $0) >= tickInterval * 0.9 } ?? true
    }

    /// A sample was taken: the next is due after the rate this state calls for.
    mutating func sampled(at now: PoolInstant, viewed: Bool, shrinkPending: Bool) {
        lastSample = now
        tickInterval = tickInterval(viewed: viewed, shrinkPending: shrinkPending)
    }

    /// How long until the next tick; `shrinkPending` when a group grown on demand may shrink
    /// (its idleness is measured from the ticks).
    func tickInterval(viewed: Bool, shrinkPending: Bool) -> Duration {
        viewed || hasRecycleQuotas || shrinkPending ? interval : backgroundInterval
    }

    /// What this tick reads from /proc: every worker, the memory-quota groups' only, or none.
    enum Resources: Hashable, Sendable {
        case all
        case groups(Set<Int>)
    }

    mutating func resourcesToRead(at now: PoolInstant, viewed: Bool) -> Resources {
        // The same 10 % slack keeps "every 10 s" from becoming every 11.
        let due = lastResourceSample.map { now.duration(since: $0) >= backgroundInterval * 0.9 } ?? true
        if viewed || due {
            lastResourceSample = now
            return .all
        }
        return .groups(memoryQuotaGroups)
    }
}

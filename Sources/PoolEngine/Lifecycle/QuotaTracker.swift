/// Decides, once a sample, which workers reached a recycle quota and which groups grown on
/// demand have been idle long enough to shrink. Pure: slots, samples and the time in; inputs
/// for the watcher core out. The core owns it and feeds it every ``WorkerSample``.
struct QuotaTracker: Sendable {
    private struct Track: Sendable {
        var generation: Int
        /// This process's limits are scaled by this factor (1 ± jitter).
        var factor: Double
        var memoryOver = 0
        var lastUpdate: UInt64
        var lastActiveAt: PoolInstant
        var requested = false
    }

    private var tracks: [WorkerID: Track] = [:]
    private var groupActiveAt: [GroupID: PoolInstant] = [:]

    mutating func evaluate(
        _ core: WatcherCore, samples: [WorkerID: WorkerSample], at now: PoolInstant, random: () -> Double
    ) -> [WatcherInput] {
        var inputs: [WatcherInput] = []
        for group in core.pool.groups {
            var groupBusy = false
            for id in group.workerIDs {
                guard let slot = core.slot(id), slot.state == .ready else {
                    tracks.removeValue(forKey: id)
                    continue
                }
                guard let sample = samples[id] else { continue }
                let activity = sample.activity
                if sample.isBusy { groupBusy = true }
                guard let policy = group.recycle, policy.isActive else { continue }
                if tracks[id]?.generation != slot.generation {
                    tracks[id] = Track(
                        generation: slot.generation,
                        factor: 1 + policy.jitter * (2 * random() - 1), lastUpdate: activity.lastUpdate, lastActiveAt: now)
                }
                guard var track = tracks[id], !track.requested else { continue }
                if sample.isBusy || activity.lastUpdate != track.lastUpdate {
                    track.lastActiveAt = now
                    track.lastUpdate = activity.lastUpdate
                }
                // Only a sample that read /proc counts towards (or resets) the memory quota.
                let rss = sample.rssBytes ?? 0
                if let rssBytes = sample.rssBytes {
                    if let limit = policy.maxMemoryBytes, Double(rssBytes) > Double(limit) * track.factor {
                        track.memoryOver += 1
                    } else {
                        track.memoryOver = 0
                    }
                }
                var quota: String?
                // The worker notes the slot's total when its process starts: the rest is its own.
                let processed = activity.jobsProcessed &- min(activity.jobsProcessed, activity.jobsProcessedBeforeStart)
                if let maxJobs = policy.maxJobs, Double(processed) >= Double(maxJobs) * track.factor {
                    quota = "max jobs \(maxJobs) reached (\(processed) processed)"
                } else if let limit = policy.maxMemoryBytes, track.memoryOver >= policy.memorySamples {
                    quota = "max memory \(limit) bytes exceeded (\(rss) bytes for \(track.memoryOver) samples)"
                } else if let lifetime = policy.maxLifetime, let readyAt = slot.readyAt,
                    now.duration(since: readyAt).seconds >= lifetime.seconds * track.factor
                {
                    quota = "max lifetime \(DurationParser.format(lifetime)) reached"
                } else if let idle = policy.maxIdle, now.duration(since: track.lastActiveAt).seconds >= idle.seconds * track.factor {
                    quota = "max idle time \(DurationParser.format(idle)) reached"
                }
                if let quota {
                    track.requested = true
                    inputs.append(.workerRecycleRequested(id, generation: slot.generation, quota: quota))
                }
                tracks[id] = track
            }
            if groupBusy || groupActiveAt[group.id] == nil { groupActiveAt[group.id] = now }
            if let lastGrowth = core.lastScaleUp[group.id], lastGrowth > groupActiveAt[group.id]! {
                groupActiveAt[group.id] = lastGrowth
            }
            if let idleAfter = group.scaling.shrinkAfterIdle, core.onDemandExtra[group.id, default: 0] > 0,
                now.duration(since: groupActiveAt[group.id]!) >= idleAfter
            {
                inputs.append(.shrinkRequested(group.id))
                // The next step down needs another idle period.
                groupActiveAt[group.id] = now
            }
        }
        return inputs
    }
}

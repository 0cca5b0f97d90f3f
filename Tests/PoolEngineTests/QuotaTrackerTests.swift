import Testing

@testable import PoolEngine

/// Samples of `slots` workers; slot 1 has the chosen activity and RSS (nil: /proc not read).
func samples(
    slots: Int, jobsProcessed: UInt64 = 0, before: UInt64 = 0, inFlight: UInt64 = 0, lastUpdate: UInt64 = 0,
    rss: UInt64? = 0
) -> [WorkerID: WorkerSample] {
    var first = WorkerActivity()
    first.jobsProcessed = jobsProcessed
    first.jobsProcessedBeforeStart = before
    first.jobsInFlight = inFlight
    first.lastUpdate = lastUpdate
    var samples = [WorkerID(1): WorkerSample(activity: first, rssBytes: rss)]
    for id in stride(from: 2, through: slots, by: 1) { samples[WorkerID(id)] = WorkerSample(activity: WorkerActivity(), rssBytes: 0) }
    return samples
}

@Suite("Recycle quotas and shrinking after idleness, with a manual clock")
struct QuotaTrackerTests {
    func harness(recycle: RecyclePolicy?, scaling: ScalingPolicy = .byRequest, min: Int = 1, max: Int = 1) throws -> CoreHarness {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: min, maxWorkers: max, scaling: scaling, recycle: recycle)
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        return harness
    }

    @Test("max jobs counts from the process's start, scaled by its jitter factor")
    func maxJobs() throws {
        let harness = try harness(recycle: RecyclePolicy(maxJobs: 10, jitter: 0.2))
        var tracker = QuotaTracker()
        let now = harness.clock.now
        // Factor 0.8 (random 0): the limit is 8; earlier processes of the slot did 5 of the total.
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, jobsProcessed: 5, before: 5), at: now) { 0 }.isEmpty)
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, jobsProcessed: 12, before: 5), at: now) { 0 }.isEmpty)
        let inputs = tracker.evaluate(harness.core, samples: samples(slots: 1, jobsProcessed: 13, before: 5), at: now) { 0 }
        #expect(inputs == [.workerRecycleRequested(WorkerID(1), generation: 1, quota: "max jobs 10 reached (8 processed)")])
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, jobsProcessed: 20, before: 5), at: now) { 0 }.isEmpty, "asked once")
    }

    @Test("the recycle stops the worker with reason quota, and its replacement starts at once")
    func recycleInCore() throws {
        var harness = try harness(recycle: RecyclePolicy(maxJobs: 1))
        let stop = harness.send(.workerRecycleRequested(WorkerID(1), generation: 1, quota: "max jobs 1 reached"))
        #expect(stop.stopRequests.map(\.1) == [.quota])
        let exit = harness.exit(1, .exited(0), report: .clean)
        #expect(exit.exits.first?.reason == .quota)
        #expect(exit.exits.first?.message == "recycled: max jobs 1 reached")
        #expect(exit.spawned == [1])
    }

    @Test("memory must stay over the limit for the given number of samples")
    func memory() throws {
        let harness = try harness(recycle: RecyclePolicy(maxMemoryBytes: 1000, memorySamples: 3, jitter: 0))
        var tracker = QuotaTracker()
        let now = harness.clock.now
        for rss: UInt64 in [2000, 2000, 500, 2000, 2000] {
            #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, rss: rss), at: now) { 0.5 }.isEmpty)
        }
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, rss: 2000), at: now) { 0.5 }.count == 1)
    }

    @Test("lifetime counts from ready; idle time from the last activity")
    func lifetimeAndIdle() throws {
        var harness = try harness(recycle: RecyclePolicy(maxLifetime: .seconds(100), jitter: 0))
        var tracker = QuotaTracker()
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1), at: harness.clock.now) { 0.5 }.isEmpty)
        harness.clock.advance(.seconds(99))
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1), at: harness.clock.now) { 0.5 }.isEmpty)
        harness.clock.advance(.seconds(1))
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1), at: harness.clock.now) { 0.5 }.count == 1)

        var idle = try self.harness(recycle: RecyclePolicy(maxIdle: .seconds(10), jitter: 0))
        var idleTracker = QuotaTracker()
        #expect(idleTracker.evaluate(idle.core, samples: samples(slots: 1, lastUpdate: 1), at: idle.clock.now) { 0.5 }.isEmpty)
        idle.clock.advance(.seconds(8))
        #expect(idleTracker.evaluate(idle.core, samples: samples(slots: 1, lastUpdate: 2), at: idle.clock.now) { 0.5 }.isEmpty, "activity resets the idle clock")
        idle.clock.advance(.seconds(9))
        #expect(idleTracker.evaluate(idle.core, samples: samples(slots: 1, lastUpdate: 2), at: idle.clock.now) { 0.5 }.isEmpty)
        idle.clock.advance(.seconds(1))
        #expect(idleTracker.evaluate(idle.core, samples: samples(slots: 1, lastUpdate: 2), at: idle.clock.now) { 0.5 }.count == 1)
    }

    @Test("only workers added on demand are shed after idleness, one per idle period, never below min")
    func shrink() throws {
        var harness = try harness(recycle: nil, scaling: ScalingPolicy(onDemand: true, shrinkAfterIdle: .seconds(30)), min: 1, max: 3)
        var tracker = QuotaTracker()
        harness.send(.scaleUpRequested(GroupID(1)))
        harness.clock.advance(.seconds(1))
        harness.send(.scaleUpRequested(GroupID(1)))
        #expect(harness.core.desiredCount(GroupID(1)) == 3)
        let busy = samples(slots: 3, inFlight: 1)
        #expect(tracker.evaluate(harness.core, samples: busy, at: harness.clock.now) { 0.5 }.isEmpty)
        harness.clock.advance(.seconds(29))
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 3), at: harness.clock.now) { 0.5 }.isEmpty)
        harness.clock.advance(.seconds(1))
        let first = tracker.evaluate(harness.core, samples: samples(slots: 3), at: harness.clock.now) { 0.5 }
        #expect(first == [.shrinkRequested(GroupID(1))])
        first.forEach { harness.send($0) }
        #expect(harness.core.desiredCount(GroupID(1)) == 2)
        harness.clock.advance(.seconds(30))
        tracker.evaluate(harness.core, samples: samples(slots: 3), at: harness.clock.now) { 0.5 }.forEach { harness.send($0) }
        #expect(harness.core.desiredCount(GroupID(1)) == 1)
        harness.clock.advance(.seconds(30))
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 3), at: harness.clock.now) { 0.5 }.isEmpty, "back at min")
    }

    @Test("an operator's scale is kept: nothing is shed from it later")
    func operatorScaleKept() throws {
        var harness = try harness(recycle: nil, scaling: ScalingPolicy(onDemand: true, shrinkAfterIdle: .seconds(1)), min: 1, max: 3)
        var tracker = QuotaTracker()
        harness.send(.scaleUpRequested(GroupID(1)))
        harness.command(.scale(GroupID(1), to: 3))
        harness.clock.advance(.seconds(10))
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 3), at: harness.clock.now) { 0.5 }.isEmpty)
    }

    @Test("scale-up requests are rate-limited and stop at max")
    func scaleUpLimits() throws {
        var harness = try harness(recycle: nil, min: 1, max: 2)
        #expect(harness.send(.scaleUpRequested(GroupID(1))).spawned == [2])
        harness.clock.advance(.milliseconds(300))
        #expect(harness.send(.scaleUpRequested(GroupID(1))).spawned.isEmpty, "at max")
    }
}

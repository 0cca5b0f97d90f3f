import Testing

@testable import PoolEngine

@Suite("When the watcher samples its workers: full rate only while someone looks or a quota needs it")
struct SamplingScheduleTests {
    func schedule(_ groups: [WorkerGroup]) throws -> SamplingSchedule {
        let pool = try PoolValidator.validate(name: "sampling", stopTimeout: .seconds(1), groups: groups, entryPoints: nil)
        return SamplingSchedule(pool: pool, interval: .seconds(1), backgroundInterval: .seconds(10))
    }

    @Test("nobody looking and no quota: /proc once per background interval, ticks at that rate")
    func background() throws {
        var schedule = try schedule([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)])
        var clock = ManualClock()
        #expect(schedule.tickInterval(viewed: false, shrinkPending: false) == .seconds(10))
        #expect(schedule.tickInterval(viewed: false, shrinkPending: true) == .seconds(1), "idleness is measured at full rate")
        #expect(schedule.resourcesToRead(at: clock.now, viewed: false) == .all, "the first sample reads everything")
        clock.advance(.seconds(1))
        #expect(schedule.resourcesToRead(at: clock.now, viewed: false) == .groups([]))
        clock.advance(.seconds(9))
        #expect(schedule.resourcesToRead(at: clock.now, viewed: false) == .all)
    }

    @Test("someone looking: full rate, every worker")
    func viewed() throws {
        var schedule = try schedule([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)])
        var clock = ManualClock()
        _ = schedule.resourcesToRead(at: clock.now, viewed: false)
        clock.advance(.seconds(1))
        #expect(schedule.tickInterval(viewed: true, shrinkPending: false) == .seconds(1))
        #expect(schedule.resourcesToRead(at: clock.now, viewed: true) == .all)
    }

    @Test("a memory quota keeps its group's workers at full rate; other groups stay in the background")
    func memoryQuota() throws {
        var schedule = try schedule([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1, recycle: RecyclePolicy(maxMemoryBytes: 1 << 30)),
        ])
        var clock = ManualClock()
        #expect(schedule.tickInterval(viewed: false, shrinkPending: false) == .seconds(1), "the quota counts samples a second apart")
        _ = schedule.resourcesToRead(at: clock.now, viewed: false)
        clock.advance(.seconds(1))
        #expect(schedule.resourcesToRead(at: clock.now, viewed: false) == .groups([1]))
    }

    @Test("a viewer is noted once per viewing: the first look asks for a sample, the next ones do not")
    func viewerTracker() {
        let tracker = ViewerTracker()
        #expect(!tracker.isViewed)
        #expect(tracker.noteView())
        #expect(!tracker.noteView())
        #expect(tracker.isViewed)
        let streams = ViewerTracker()
        #expect(streams.streamStarted())
        #expect(!streams.streamStarted())
        streams.streamEnded()
        streams.streamEnded()
        #expect(!streams.isViewed)
    }

    @Test("a memory sample that did not read /proc neither counts towards the quota nor resets it")
    func unreadMemory() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, recycle: RecyclePolicy(maxMemoryBytes: 1000, memorySamples: 2, jitter: 0))
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        var tracker = QuotaTracker()
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, rss: 2000), at: harness.clock.now) { 0.5 }.isEmpty)
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, rss: nil), at: harness.clock.now) { 0.5 }.isEmpty)
        #expect(tracker.evaluate(harness.core, samples: samples(slots: 1, rss: 2000), at: harness.clock.now) { 0.5 }.count == 1)
    }
}

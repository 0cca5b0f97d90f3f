import Testing

@testable import PoolEngine

extension [WatcherAction] {
    var waiting: [String] {
        compactMap { if case .emit(.groupWaiting(let group, let why)) = $0 { return "\(group): \(why)" } else { return nil } }
    }
}

@Suite("Start order between groups (after:), with a manual clock")
struct StartOrderTests {
    /// migrate (one-shot, ids 1), cache (ids 2-3), api after both (ids 4-5).
    func pool() throws -> CoreHarness {
        try CoreHarness([
            WorkerGroup(entryPoint: "m", kind: .service, minWorkers: 1, name: "migrate", restart: .never),
            WorkerGroup(entryPoint: "c", kind: .service, minWorkers: 2, maxWorkers: 2, name: "cache"),
            WorkerGroup(
                entryPoint: "a", kind: .service, minWorkers: 2, maxWorkers: 2, name: "api",
                after: [GroupDependency("migrate", .completed), GroupDependency("cache", .ready)]),
        ])
    }

    @Test("a group starts only once every group it names reached its condition")
    func waitsThenStarts() throws {
        var harness = try pool()
        let start = harness.send(.poolDidStart)
        #expect(start.spawned == [1, 2, 3], "api waits")
        #expect(start.waiting == ["api: migrate (completed), cache (ready)"])
        harness.ready(2)
        harness.ready(3)
        #expect(harness.state(4) == .stopped, "cache is ready, but migrate has not completed")
        harness.ready(1)
        let done = harness.exit(1, .exited(0), report: .clean)
        #expect(done.spawned == [4, 5], "migrate exited 0: api starts")
        #expect(harness.core.held.isEmpty)
    }

    @Test("a dependency that fails blocks the group for good, says why, and the pool ends saying it never started")
    func blockedByFailure() throws {
        var harness = try pool()
        harness.send(.poolDidStart)
        harness.ready(2)
        harness.ready(3)
        harness.ready(1)
        let failed = harness.exit(1, .exited(3))
        #expect(failed.spawned.isEmpty)
        #expect(failed.waiting.first?.contains("did not complete: worker 1 exited crash") == true, "\(failed.waiting)")
        #expect(harness.refusal(.scale(GroupID(3), to: 2)) == .busy, "a waiting group is not started by hand either")
        #expect(harness.refusal(.restartWorker(WorkerID(4), hard: false)) == .busy)
        harness.send(.command(.stopWorker(WorkerID(2)), reply: ReplyToken(rawValue: 99)))
        harness.exit(2, .exited(0), report: .clean)
        let end = harness.send(.command(.stopWorker(WorkerID(3)), reply: ReplyToken(rawValue: 98)))
        #expect(end.finish == nil)
        let finish = harness.exit(3, .exited(0), report: .clean)
        guard case .some(.some(let failure)) = finish.finish else {
            Issue.record("the pool did not end with a failure")
            return
        }
        #expect(failure.message.contains("'api' (waiting for migrate (completed), cache (ready)) never started"))
    }

    @Test("started and ready count the group's minimum; a group with min 0 is met at once")
    func conditions() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .service, minWorkers: 2, maxWorkers: 2, name: "a"),
            WorkerGroup(entryPoint: "b", kind: .service, minWorkers: 1, name: "b", after: [GroupDependency("a", .started)]),
            WorkerGroup(entryPoint: "c", kind: .service, minWorkers: 0, maxWorkers: 1, name: "c"),
            WorkerGroup(entryPoint: "d", kind: .service, minWorkers: 1, name: "d", after: [GroupDependency("c")]),
        ])
        let start = harness.send(.poolDidStart)
        // a's two workers were started (spawning), so b starts in the same turn; c needs none.
        #expect(start.spawned == [1, 2, 3, 5])
    }

    @Test("the pool stops in reverse start order: a group is asked to stop once those waiting for it have stopped")
    func reverseStop() throws {
        var harness = try pool()
        harness.send(.poolDidStart)
        harness.ready(2)
        harness.ready(3)
        harness.ready(1)
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(4)
        harness.ready(5)
        let stop = harness.send(.stopRequested(reason: "test"))
        #expect(stop.stopRequests.map(\.0) == [4, 5], "api first; cache waits for it")
        harness.exit(4, .exited(0), report: .clean)
        #expect(harness.state(2) == .ready)
        let next = harness.exit(5, .exited(0), report: .clean)
        #expect(next.stopRequests.map(\.0) == [2, 3], "then cache")
        harness.exit(2, .exited(0), report: .clean)
        #expect(harness.exit(3, .exited(0), report: .clean).finish == .some(nil))
    }

    @Test("after a hard restart the start order applies again")
    func hardRestart() throws {
        var harness = try pool()
        harness.send(.poolDidStart)
        for id in [1, 2, 3] { harness.ready(id) }
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(4)
        harness.ready(5)
        harness.send(.restartRequested(hard: true))
        for id in [2, 3, 4, 5] { harness.exit(id, .signaled(15)) }
        #expect(harness.log.spawned.suffix(2) == [2, 3], "cache comes back; api waits for it again")
        #expect(harness.state(4) == .stopped)
        harness.ready(2)
        let ready = harness.send(.workerDidBecomeReady(WorkerID(3), generation: harness.generation(3)))
        #expect(ready.spawned == [4, 5])
    }

    @Test("an unknown group, a group waiting for itself and a cycle are configuration errors naming the key")
    func validation() {
        func error(_ groups: [WorkerGroup]) -> ConfigurationError? {
            do {
                _ = try PoolValidator.validate(name: "p", stopTimeout: .seconds(1), groups: groups, entryPoints: nil)
                return nil
            } catch {
                return error
            }
        }
        let unknown = error([WorkerGroup(entryPoint: "a", kind: .service, name: "a", after: [GroupDependency("nope")])])
        #expect(unknown?.path == "groups[0].after[0].group")
        #expect(unknown?.message.contains("unknown group 'nope'") == true)
        let itself = error([WorkerGroup(entryPoint: "a", kind: .service, name: "a", after: [GroupDependency("a")])])
        #expect(itself?.message.contains("cannot wait for itself") == true)
        let cycle = error([
            WorkerGroup(entryPoint: "a", kind: .service, name: "a", after: [GroupDependency("c")]),
            WorkerGroup(entryPoint: "b", kind: .service, name: "b", after: [GroupDependency("a")]),
            WorkerGroup(entryPoint: "c", kind: .service, name: "c", after: [GroupDependency("b")]),
        ])
        #expect(cycle?.path == "groups[0].after")
        #expect(cycle?.message == "the start order has a cycle: 'a' → 'c' → 'b' → 'a' (each waits for the next)")
    }
}

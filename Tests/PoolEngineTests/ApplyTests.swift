import Foundation
import Testing

@testable import PoolEngine

/// `pooltop apply`: the plan (pure, from two descriptions) and the core carrying it out, with
/// a manual clock.
@Suite("Applying a changed configuration to a running pool")
struct ApplyTests {
    static func describe(_ groups: [WorkerGroup], stopTimeout: Duration = .seconds(10)) throws -> PoolDescription {
        try PoolValidator.validate(name: "test", stopTimeout: stopTimeout, groups: groups, entryPoints: nil)
    }

    /// jobs (ids 1-4, min 2), web (5-6, reactor on a port), tick (7).
    static let running: [WorkerGroup] = [
        WorkerGroup(entryPoint: "job", kind: .job, minWorkers: 2, maxWorkers: 4, name: "jobs"),
        WorkerGroup(
            entryPoint: "http", kind: .reactor, minWorkers: 2, name: "web", jobGroups: ["jobs"],
            listeners: [try! Listener("127.0.0.1:18080")]),
        WorkerGroup(entryPoint: "tick", kind: .service, minWorkers: 1, name: "tick"),
    ]

    func plan(_ groups: [WorkerGroup], from running: [WorkerGroup] = Self.running) throws -> PoolChange {
        PoolChange.plan(running: try Self.describe(running), candidate: try Self.describe(groups))
    }

    func actions(_ change: PoolChange) -> [String: PoolChange.Action] {
        Dictionary(uniqueKeysWithValues: change.groups.map { ($0.group, $0.action) })
    }

    // MARK: - The plan

    @Test("the same file changes nothing, and every hash is the running one")
    func unchanged() throws {
        let change = try plan(Self.running)
        #expect(change.isEmpty)
        #expect(change.refusals.isEmpty)
        #expect(Set(change.groups.map(\.action)) == [.unchanged])
        let running = try Self.describe(Self.running)
        #expect(change.groups.map(\.definition) == running.groups.map { GroupDescription.formatDefinition($0.definitionHash) })
    }

    @Test("limits and policies update in place; what a worker reads at start rolls the group")
    func updateOrRoll() throws {
        var groups = Self.running
        groups[0].minWorkers = 3
        groups[0].restart = .never
        groups[1].runner = WorkerRunner(environment: ["MODE": "fast"])
        groups[2].entryPoint = "tock"
        let change = try plan(groups)
        #expect(change.refusals.isEmpty, "\(change.refusals)")
        #expect(actions(change) == ["jobs": .update, "web": .roll, "tick": .roll])
        #expect(change.groups[0].changes == ["min 2 → 3", "restart changed"])
        #expect(change.groups[1].changes == ["env changed"])
        #expect(change.groups[2].changes == ["entryPoint changed"])
        #expect(change.groups[0].definition != GroupDescription.formatDefinition(try Self.describe(Self.running).groups[0].definitionHash))
        // Ids and slots never move.
        #expect(change.next.groups.map(\.id) == change.base.groups.map(\.id))
        #expect(change.next.groups.map(\.firstWorkerID) == change.base.groups.map(\.firstWorkerID))
    }

    @Test("a new group takes the next id and the slots after every existing one, out of the reserve")
    func newGroup() throws {
        let groups = [Self.running[2], WorkerGroup(entryPoint: "x", kind: .service, minWorkers: 1, maxWorkers: 3, name: "extra")] + Self.running[0...1]
        let change = try plan(groups)
        #expect(change.refusals.isEmpty, "\(change.refusals)")
        #expect(actions(change)["extra"] == .start)
        let extra = try #require(change.next.group(.name("extra")))
        #expect(extra.id == GroupID(4))
        #expect(extra.firstWorkerID == WorkerID(8))
        #expect(extra.slots == 3)
        #expect(change.next.reserve.groups == change.base.reserve.groups - 1)
        #expect(change.next.reserve.slots == change.base.reserve.slots - 3)
        #expect(change.next.groupCapacity == change.base.groupCapacity, "the segment's size does not change")
        #expect(change.next.slotCapacity == change.base.slotCapacity)
        // References in the file (by its own ids) point at the running ids.
        #expect(change.next.group(.name("web"))?.jobGroups == [GroupID(1)])
    }

    @Test("a removed group is retired: it keeps its slots, loses its name, and a new group may take the name")
    func removedGroup() throws {
        let change = try plan(Array(Self.running[0...1]))
        #expect(actions(change)["tick"] == .stop)
        let tick = change.next.groups[2]
        #expect(tick.retired && tick.maxWorkers == 0 && tick.slots == 1)
        #expect(change.next.group(.name("tick")) == nil)
        #expect(change.next.activeGroups.count == 2)
        // Added back later under the same name: a new group with new slots.
        let again = PoolChange.plan(running: change.next, candidate: try Self.describe(Self.running))
        #expect(actions(again)["tick"] == .start)
        #expect(again.next.group(.name("tick"))?.id == GroupID(4))
    }

    @Test("what cannot change live is refused, each with its key path")
    func refusals() throws {
        var groups = Self.running
        groups[0].maxWorkers = 6
        groups[0].jobExecutor = JobExecutorConfiguration(maxConcurrentJobs: 4)
        groups[1].listeners = [try Listener("127.0.0.1:18081")]
        groups[2].kind = .reactor
        groups[2].listeners = [try Listener("127.0.0.1:18082")]
        let change = try plan(groups)
        #expect(change.refusals.map(\.path).sorted() == ["groups[0].jobs.maxConcurrent", "groups[0].max", "groups[2].kind"])
        #expect(change.refusals.contains { $0.message.contains("has 4 worker slots (its max when it was added); a max of 6 needs a restart") })
    }

    @Test("new listeners roll the group; an address cannot change hands, switch to shared, or be renamed while served")
    func listeners() throws {
        var groups = Self.running
        groups[1].listeners = [try Listener("127.0.0.1:18080"), try Listener("127.0.0.1:18081", name: "admin")]
        let added = try plan(groups)
        #expect(added.refusals.isEmpty, "\(added.refusals)")
        #expect(actions(added)["web"] == .roll)
        #expect(added.groups[1].changes == ["listen changed"])

        var shared = Self.running
        shared[1].listeners[0].shared = true
        #expect(try plan(shared).refusals.map(\.path) == ["groups[1].listen[0].shared"])
        var renamed = Self.running
        renamed[1].listeners[0].name = "http"
        #expect(try plan(renamed).refusals.map(\.path) == ["groups[1].listen[0].name"])

        var moved = Self.running
        moved[1].listeners = [try Listener("127.0.0.1:18081")]
        moved[2].kind = .reactor
        moved[2].listeners = [try Listener("127.0.0.1:18080")]
        let refused = try plan(moved)
        #expect(refused.refusals.map(\.path).contains("groups[2].listen[0]"), "\(refused.refusals)")
        #expect(refused.refusals.contains { $0.message.contains("still served by group 'web', which this change moves it from") })
    }

    @Test("a lowered max may be raised again up to the group's slots")
    func maxWithinSlots() throws {
        var lowered = Self.running
        lowered[0].maxWorkers = 2
        let first = try plan(lowered)
        #expect(first.refusals.isEmpty)
        let back = PoolChange.plan(running: first.next, candidate: try Self.describe(Self.running))
        #expect(back.refusals.isEmpty)
        #expect(back.groups[0].changes == ["max 2 → 4"])
    }

    @Test("new groups beyond the reserve, or on an address a removed group still serves, are refused")
    func reserveAndAddresses() throws {
        var running = try Self.describe(Self.running)
        running.reserve = PoolReserve(groups: 1, slots: 2, runningJobBytes: 0)
        let many = try Self.describe(
            Self.running + [
                WorkerGroup(entryPoint: "a", kind: .service, minWorkers: 1, name: "a"),
                WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 2, name: "b"),
            ])
        let change = PoolChange.plan(running: running, candidate: many)
        #expect(change.refusals.count == 3, "\(change.refusals)")
        #expect(change.refusals.contains { $0.message.contains("room for 1 more group(s) and this change adds 2") })
        #expect(change.refusals.contains { $0.message.contains("need 3 worker slots and the pool has 2 left") })
        #expect(change.refusals.contains { $0.message.contains("running-jobs tables") })

        let moved = try Self.describe([
            Self.running[0], Self.running[2],
            WorkerGroup(entryPoint: "http", kind: .reactor, minWorkers: 2, name: "web2", listeners: [try Listener("127.0.0.1:18080")]),
        ])
        let swap = PoolChange.plan(running: try Self.describe(Self.running), candidate: moved)
        #expect(swap.refusals.map(\.path) == ["groups[2].listen[0]"])
        #expect(swap.refusals.first?.message.contains("still served by group 'web', which this change removes") == true)
    }

    @Test("an envFile whose entries changed rolls the group, though its path did not")
    func envFileContents() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pooltop-apply-\(Posix.processID)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "MODE=one\n".write(toFile: "\(directory)/.env", atomically: true, encoding: .utf8)
        var group = WorkerGroup(entryPoint: "", kind: .service, minWorkers: 1, name: "app")
        group.program = ExternalProgram(["sleep", "60"], environmentFile: "\(directory)/.env")
        let before = try Self.describe([group])
        try "MODE=two\n".write(toFile: "\(directory)/.env", atomically: true, encoding: .utf8)
        let change = PoolChange.plan(running: before, candidate: try Self.describe([group]))
        #expect(change.groups.map(\.action) == [.roll])
        #expect(change.groups[0].changes == ["envFile changed"])
    }

    // MARK: - The core carrying it out

    func harness() throws -> CoreHarness {
        var harness = try CoreHarness(Self.running)
        harness.send(.poolDidStart)
        for id in [1, 2, 5, 6, 7] { harness.ready(id) }
        return harness
    }

    mutating func apply(_ harness: inout CoreHarness, _ groups: [WorkerGroup]) throws -> (actions: [WatcherAction], reply: CommandReply?) {
        let change = PoolChange.plan(running: harness.core.pool, candidate: try Self.describe(groups))
        let (actions, token) = harness.commandToken(.apply(change))
        return (actions, harness.replies[token])
    }

    @Test("a new min scales the group up at once, a lower max scales it down, and the answer comes at once")
    mutating func limits() throws {
        var harness = try harness()
        var groups = Self.running
        groups[0].minWorkers = 3
        let (up, reply) = try apply(&harness, groups)
        #expect(reply == .success(0))
        #expect(up.spawned == [3])
        #expect(harness.core.desiredCount(GroupID(1)) == 3)
        harness.ready(3)
        groups[0].minWorkers = 1
        groups[0].maxWorkers = 1
        let (down, _) = try apply(&harness, groups)
        #expect(down.stopRequests.map(\.0).sorted() == [2, 3])
        #expect(harness.core.pool.groups[0].maxWorkers == 1)
        #expect(harness.refusal(.scale(GroupID(1), to: 2)) == .outOfRange, "the new max holds for operators too")
    }

    @Test("a changed entry point rolls the group: each worker replaced by one started from the new definition")
    mutating func rolls() throws {
        var harness = try harness()
        var groups = Self.running
        groups[0].entryPoint = "job2"
        let (actions, reply) = try apply(&harness, groups)
        #expect(reply == .success(0), "answered at once; the roll goes on")
        #expect(actions.spawned == [3], "a spare starts beside worker 1")
        #expect(harness.core.pool.groups[0].entryPoint == "job2", "the spawn reads the new definition")
        harness.ready(3)
        #expect(harness.core.slot(WorkerID(1))?.state == .stopping)
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(1)
        harness.exit(2, .exited(0), report: .clean)
        #expect(harness.core.rolls.isEmpty)
        #expect(harness.log.contains { if case .emit(.groupRolling(_, .finished(replaced: 2))) = $0 { return true } else { return false } })
        // A second apply while a roll runs is refused.
        groups[0].entryPoint = "job3"
        let (_, first) = try apply(&harness, groups)
        #expect(first == .success(0))
        groups[0].entryPoint = "job4"
        let (_, second) = try apply(&harness, groups)
        guard case .failure(let error) = second else {
            Issue.record("a second apply during a roll was accepted")
            return
        }
        #expect(error.code == .busy)
    }

    @Test("a new group starts, after the groups it waits for; a removed one stops, its dependents first")
    mutating func addAndRemove() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "db", kind: .service, minWorkers: 1, name: "db"),
            WorkerGroup(entryPoint: "api", kind: .service, minWorkers: 1, name: "api", after: [GroupDependency("db", .ready)]),
            WorkerGroup(entryPoint: "keep", kind: .service, minWorkers: 1, name: "keep"),
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        harness.ready(3)
        let (removal, reply) = try apply(&harness, [
            WorkerGroup(entryPoint: "keep", kind: .service, minWorkers: 1, name: "keep"),
            WorkerGroup(entryPoint: "new", kind: .service, minWorkers: 2, maxWorkers: 2, name: "new", after: [GroupDependency("keep", .ready)]),
            WorkerGroup(entryPoint: "late", kind: .service, minWorkers: 1, name: "late", after: [GroupDependency("new", .ready)]),
        ])
        #expect(reply == .success(0))
        #expect(removal.stopRequests.map(\.0) == [2], "api stops before db, which it waited for")
        #expect(removal.spawned == [4, 5], "new starts (keep is ready); late waits for it")
        #expect(harness.core.slots.count == 6)
        harness.exit(2, .exited(0), report: .clean)
        #expect(harness.core.slot(WorkerID(1))?.state == .stopping, "db stops once api has gone")
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(4)
        let released = harness.send(.workerDidBecomeReady(WorkerID(5), generation: harness.generation(5)))
        #expect(released.spawned == [6])
        #expect(harness.core.slot(WorkerID(1))?.state == .stopped)
        #expect(harness.core.mode == .running)
        #expect(harness.refusal(.scale(GroupID(1), to: 1)) == .outOfRange, "a removed group's slots stay down")
    }

    @Test("a plan made against another description is refused, and so is one while the pool is not running")
    mutating func stalePlan() throws {
        var harness = try harness()
        var groups = Self.running
        groups[0].minWorkers = 3
        let stale = PoolChange.plan(running: harness.core.pool, candidate: try Self.describe(groups))
        groups[0].minWorkers = 4
        _ = try apply(&harness, groups)
        #expect(harness.refusal(.apply(stale)) == .busy)
        harness.send(.stopRequested(reason: "test"))
        #expect(harness.refusal(.apply(stale)) == .notRunning)
    }
}

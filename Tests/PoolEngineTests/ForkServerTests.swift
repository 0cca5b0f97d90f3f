import Testing

@testable import PoolEngine

@Suite("Fork servers: started with their group, fork its processes, leave when stale")
struct ForkServerTests {
    func harness(standby: Bool = false, forkServer: Bool = true, canFork: Bool = true, min: Int = 2) throws -> CoreHarness {
        var group = WorkerGroup(entryPoint: "a", kind: .job, minWorkers: min, maxWorkers: min + 1, restart: .always(backoff: RestartBackoff(resetAfter: .zero)))
        group.standby = standby
        group.forkServer = forkServer
        var harness = try CoreHarness([group])
        harness.core.canFork = canFork
        return harness
    }

    /// Starts the pool, makes both workers ready, and returns the generation of its fork server.
    func startWithServer(_ harness: inout CoreHarness) throws -> Int {
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        return try #require(harness.log.forkServersStarted.last).generation
    }

    @Test("a group of 2 is spawned; once a worker is ready and none starts, its fork server comes and forks every later process, and stays")
    func forksAfterReady() throws {
        var harness = try harness()
        let start = harness.send(.poolDidStart)
        #expect(start.forkServersStarted.isEmpty && start.spawned == [1, 2])
        // One ready, the other still starting: not yet.
        #expect(harness.send(.workerDidBecomeReady(WorkerID(1), generation: 1)).forkServersStarted.isEmpty)
        let started = harness.send(.workerDidBecomeReady(WorkerID(2), generation: 1)).forkServersStarted
        #expect(started.map(\.group) == [0])
        let server = try #require(started.first).generation
        let first = harness.exit(1, .signaled(9))
        #expect(first.forked.map(\.slot) == [1] && first.forked.map(\.server) == [server])
        #expect(first.spawned.isEmpty)
        #expect(harness.state(1) == .starting)
        // Not used up: the next death, while the first fork is still starting, is forked too.
        let second = harness.exit(2, .exited(1))
        #expect(second.forked.map(\.slot) == [2] && second.spawned.isEmpty)
        #expect(harness.core.standbys.map(\.generation) == [server])
        // A scale-up is forked as well.
        harness.ready(1)
        harness.ready(2)
        #expect(harness.command(.scale(GroupID(1), to: 3)).forked.map(\.slot) == [3])
        #expect(harness.log.forkServersStarted.count == 1)
    }

    @Test("a group starting 4 workers or more starts its fork server first, spawns its first worker beside it and forks the rest")
    func forksAhead() throws {
        var harness = try harness(min: WatcherCore.forkAheadMinimum)
        let start = harness.send(.poolDidStart)
        #expect(start.forkServersStarted.map(\.group) == [0])
        let server = try #require(start.forkServersStarted.first).generation
        // Asked for before the forks that need it, in the same batch.
        #expect(start.firstIndex { if case .spawnStandby = $0 { true } else { false } } ?? .max
            < start.firstIndex { if case .forkWorker = $0 { true } else { false } } ?? .min)
        #expect(start.spawned == [1])
        #expect(start.forked.map(\.slot) == Array(2...WatcherCore.forkAheadMinimum) && start.forked.allSatisfy { $0.server == server })
    }

    @Test("no second process starts beside a pool's starting workers: a ready group waits for the others' to be ready")
    func waitsForThePoolsStart() throws {
        var one = WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, name: "one")
        one.forkServer = true
        var other = WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, name: "other")
        other.forkServer = true
        var harness = try CoreHarness([one, other])
        harness.core.canFork = true
        harness.send(.poolDidStart)
        #expect(harness.send(.workerDidBecomeReady(WorkerID(1), generation: 1)).forkServersStarted.isEmpty)
        let both = harness.send(.workerDidBecomeReady(WorkerID(2), generation: 1)).forkServersStarted
        #expect(both.map(\.group) == [0, 1])
    }

    @Test("no fork server when the group turns it off or the kernel cannot report a fork's exit")
    func off() throws {
        for var harness in [try harness(forkServer: false), try harness(canFork: false)] {
            harness.send(.poolDidStart)
            harness.ready(1)
            harness.ready(2)
            #expect(harness.log.forkServersStarted.isEmpty)
            #expect(harness.exit(1, .signaled(9)).spawned == [1])
        }
    }

    @Test("a standby, when the group keeps one, is used before the fork server")
    func standbyFirst() throws {
        var harness = try harness(standby: true)
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        #expect(harness.log.standbysStarted.count == 1 && harness.log.forkServersStarted.count == 1)
        let first = harness.exit(1, .signaled(9))
        #expect(first.promoted == [1] && first.forked.isEmpty)
        let second = harness.exit(2, .signaled(9))
        #expect(second.promoted.isEmpty && second.forked.map(\.slot) == [2])
    }

    @Test("a group restart ends the fork server and spawns; a new one follows once a worker is ready; the pool's stop waits for it")
    func restartAndStop() throws {
        var harness = try harness()
        var server = try startWithServer(&harness)
        let restart = harness.command(.restartGroup(GroupID(1), hard: true))
        #expect(restart.killed.contains(WorkerID.standby(server).rawValue))
        harness.send(.processDidExit(.standby(server), generation: server, .exited(0)))
        #expect(harness.exit(1, .signaled(9)).spawned == [1])
        harness.exit(2, .signaled(9))
        harness.ready(1)
        harness.ready(2)
        server = try #require(harness.log.forkServersStarted.last).generation
        #expect(harness.log.forkServersStarted.count == 2)
        let stopping = harness.send(.stopRequested(reason: "test"))
        #expect(stopping.killed.contains(WorkerID.standby(server).rawValue))
        // A second request kills it again: the loop made the first a request to go, this one a
        // SIGKILL, for a fork server that would never see its children out.
        #expect(harness.send(.stopRequested(reason: "again")).killed.contains(WorkerID.standby(server).rawValue))
        harness.exit(1, .exited(0), report: .clean)
        #expect(harness.exit(2, .exited(0), report: .clean).finish == nil)
        #expect(harness.send(.processDidExit(.standby(server), generation: server, .exited(0))).finish == .some(nil))
    }

    @Test("a fork server that dies on its own is not replaced until a worker of its group is ready again")
    func diedOnItsOwn() throws {
        var harness = try harness()
        let server = try startWithServer(&harness)
        harness.send(.processDidExit(.standby(server), generation: server, .signaled(9)))
        #expect(harness.exit(1, .signaled(9)).spawned == [1])
        #expect(harness.log.forkServersStarted.count == 1)
        harness.ready(1)
        #expect(harness.log.forkServersStarted.count == 2)
    }
}

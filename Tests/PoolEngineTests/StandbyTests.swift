import Testing

@testable import PoolEngine

@Suite("Standby processes: started once a group is ready, handed the next slot, discarded when stale")
struct StandbyTests {
    func group(standby: Bool = true, min: Int = 2, max: Int = 3) -> WorkerGroup {
        var group = WorkerGroup(entryPoint: "a", kind: .job, minWorkers: min, maxWorkers: max, restart: .always(backoff: RestartBackoff(resetAfter: .zero)))
        group.standby = standby
        return group
    }

    /// Starts the pool, makes `slots` ready, and returns the generation of the standby that brought.
    func startWithStandby(_ harness: inout CoreHarness, ready slots: [Int]) throws -> Int {
        harness.send(.poolDidStart)
        for slot in slots { harness.ready(slot) }
        return try #require(harness.log.standbysStarted.first).generation
    }

    @Test("a standby starts once a worker is ready and none is starting; a crash's replacement is the standby")
    func promotedOnCrash() throws {
        var harness = try CoreHarness([group()])
        #expect(harness.send(.poolDidStart).standbysStarted.isEmpty)
        // One of two ready, the other still starting: not yet.
        #expect(harness.send(.workerDidBecomeReady(WorkerID(1), generation: 1)).standbysStarted.isEmpty)
        let started = harness.send(.workerDidBecomeReady(WorkerID(2), generation: 1)).standbysStarted
        #expect(started.map(\.group) == [0])
        let standby = try #require(started.first).generation
        // A crash: the slot gets the standby, not a spawn.
        let actions = harness.exit(1, .signaled(9))
        #expect(actions.promoted == [1])
        #expect(actions.spawned.isEmpty)
        #expect(harness.state(1) == .starting)
        #expect(harness.core.standbys.isEmpty)
        // The next standby waits until the promoted worker is ready.
        #expect(actions.standbysStarted.isEmpty)
        let next = harness.send(.workerDidBecomeReady(WorkerID(1), generation: harness.generation(1))).standbysStarted
        #expect(next.count == 1 && next[0].generation != standby)
    }

    @Test("a group without standby never gets one")
    func off() throws {
        var harness = try CoreHarness([group(standby: false)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        #expect(harness.log.standbysStarted.isEmpty)
        #expect(harness.exit(1, .signaled(9)).spawned == [1])
    }

    @Test("stopping the pool kills the standby and finishes only once it is reaped")
    func stopWaitsForStandby() throws {
        var harness = try CoreHarness([group(min: 1, max: 1)])
        let standby = try startWithStandby(&harness, ready: [1])
        let stopping = harness.send(.stopRequested(reason: "test"))
        #expect(stopping.killed == [WorkerID.standby(standby).rawValue])
        let exited = harness.exit(1, .exited(0))
        #expect(exited.finish == nil)
        let reaped = harness.send(.processDidExit(.standby(standby), generation: standby, .signaled(9)))
        #expect(reaped.finish == .some(nil))
    }

    @Test("once every worker of the group has ended for good, the standby is killed and the pool finishes after its reap")
    func endedGroupFinishes() throws {
        var group = group(min: 1, max: 1)
        group.restart = .never
        var harness = try CoreHarness([group])
        let standby = try startWithStandby(&harness, ready: [1])
        let ended = harness.exit(1, .exited(0), report: .clean)
        #expect(ended.killed == [WorkerID.standby(standby).rawValue])
        #expect(ended.promoted.isEmpty && ended.finish == nil)
        let reaped = harness.send(.processDidExit(.standby(standby), generation: standby, .signaled(9)))
        #expect(reaped.finish == .some(nil))
    }

    @Test("a standby that dies on its own is not replaced until a worker of its group is ready again")
    func noStandbyLoop() throws {
        var harness = try CoreHarness([group()])
        let standby = try startWithStandby(&harness, ready: [1, 2])
        let died = harness.send(.processDidExit(.standby(standby), generation: standby, .exited(1)))
        #expect(died.standbysStarted.isEmpty)
        #expect(harness.send(.clockDidAdvance).standbysStarted.isEmpty)
        // A crash now spawns (no standby), and that worker's ready brings a new standby.
        #expect(harness.exit(2, .signaled(9)).spawned == [2])
        #expect(harness.send(.workerDidBecomeReady(WorkerID(2), generation: harness.generation(2))).standbysStarted.count == 1)
    }

    @Test("restarting the group, a soft or hard pool restart, or a roll discards the standby; replacements are spawned")
    func restartsDiscard() throws {
        var harness = try CoreHarness([group()])
        var standby = try startWithStandby(&harness, ready: [1, 2])
        let restart = harness.command(.restartGroup(GroupID(1), hard: true))
        #expect(restart.killed.contains(WorkerID.standby(standby).rawValue))
        harness.send(.processDidExit(.standby(standby), generation: standby, .signaled(9)))
        let replaced = harness.exit(1, .signaled(9))
        #expect(replaced.spawned == [1])
        #expect(replaced.promoted.isEmpty)
        harness.exit(2, .signaled(9))
        harness.ready(1)
        harness.ready(2)
        standby = try #require(harness.log.standbysStarted.last).generation
        // A soft restart of the pool.
        let soft = harness.send(.restartRequested(hard: false))
        #expect(soft.killed.contains(WorkerID.standby(standby).rawValue))
        harness.send(.processDidExit(.standby(standby), generation: standby, .signaled(9)))
        #expect(harness.exit(1, .exited(0), report: .clean).spawned == [1])
        harness.exit(2, .exited(0), report: .clean)
        harness.ready(1)
        harness.ready(2)
        standby = try #require(harness.log.standbysStarted.last).generation
        // A rolling restart: no standby while it runs.
        let roll = harness.command(.rollingRestart(GroupID(1)))
        #expect(roll.killed.contains(WorkerID.standby(standby).rawValue))
        #expect(roll.promoted.isEmpty)
    }

    @Test("the configuration refuses a standby for a program group, naming the key, and takes one for a group with listeners")
    func validation() throws {
        var program = WorkerGroup(entryPoint: "", kind: .service, minWorkers: 1)
        program.program = ExternalProgram(["/bin/sleep", "10"])
        program.standby = true
        #expect(throws: ConfigurationError.self) { try CoreHarness([program]) }
        do {
            _ = try CoreHarness([program])
        } catch let error as ConfigurationError {
            #expect(error.path == "groups[0].standby")
            #expect(error.message.contains("program"))
        }
        // A group with listeners may keep one: its slot's sockets are passed when it takes the slot.
        var reactor = WorkerGroup(entryPoint: "a", kind: .reactor, minWorkers: 1)
        reactor.listeners = [Listener(address: .tcp(host: "127.0.0.1", port: 8080), name: "http")]
        reactor.standby = true
        #expect(throws: Never.self) { try CoreHarness([reactor]) }
    }
}

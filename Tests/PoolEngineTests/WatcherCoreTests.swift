import Testing

@testable import PoolEngine

@Suite("Watcher core: lifecycle, restart policies and pool modes, with a manual clock")
struct WatcherCoreTests {
    let backoff = RestartBackoff(initial: .milliseconds(100), factor: 2, maximum: .seconds(1), resetAfter: .seconds(10))

    @Test("start spawns each group's minimum on the lowest ids of its block")
    func startSpawnsMinimum() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, maxWorkers: 3),
            WorkerGroup(entryPoint: "b", kind: .service, minWorkers: 1, maxWorkers: 2),
        ])
        let actions = harness.send(.poolDidStart)
        #expect(actions.spawned == [1, 2, 4])
        #expect(harness.state(3) == .stopped)
        #expect(harness.state(4) == .starting)
        harness.ready(4)
        #expect(harness.state(4) == .ready)
    }

    @Test("a pool with every minimum at zero finishes at once (reference testStartWithMinZero)")
    func minZeroFinishes() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 0, maxWorkers: 1)])
        let actions = harness.send(.poolDidStart)
        #expect(actions.spawned.isEmpty)
        #expect(actions.finish == .some(nil))
    }

    @Test("the first crash after a stable run restarts at once; quick repeats back off exponentially up to the cap")
    func crashBackoff() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, restart: .always(backoff: backoff))
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.clock.advance(.seconds(30))
        var actions = harness.exit(1, .signaled(9))
        #expect(actions.exits.first?.reason == .signal)
        #expect(actions.spawned == [1], "a crash after a stable run is replaced without delay")
        var delays: [Duration] = []
        for _ in 0..<6 {
            harness.ready(1)
            harness.clock.advance(.milliseconds(10))
            actions = harness.exit(1, .exited(3))
            #expect(actions.exits.first?.reason == .crash)
            delays += actions.backoffDelays
            #expect(harness.state(1) == .backoff)
            harness.advance(delays.last ?? .zero)
            #expect(harness.state(1) == .starting)
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
    }

    @Test("the backoff resets after resetAfter of ready uptime")
    func backoffResets() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, restart: .always(backoff: backoff))
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.exit(1, .exited(1))  // first: immediate
        harness.ready(1)
        #expect(harness.exit(1, .exited(1)).backoffDelays == [.milliseconds(100)])
        harness.advance(.milliseconds(100))
        harness.ready(1)
        harness.clock.advance(.seconds(11))
        let actions = harness.exit(1, .exited(1))
        #expect(actions.backoffDelays.isEmpty)
        #expect(actions.spawned == [1])
    }

    @Test("a worker that dies before it is ready never loops without a pause")
    func bootFailureBacksOff() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, restart: .always(backoff: backoff))
        ])
        harness.send(.poolDidStart)
        let actions = harness.exit(1, .exited(4))
        #expect(actions.exits.first?.reason == .bootFailure)
        #expect(actions.spawned.isEmpty)
        #expect(actions.backoffDelays == [.milliseconds(100)])
        #expect(harness.core.nextDeadline == harness.clock.now + .milliseconds(100))
        #expect(harness.advance(.milliseconds(99)).spawned.isEmpty)
        #expect(harness.advance(.milliseconds(1)).spawned == [1])
    }

    @Test("policy never stops the slot for good and the pool returns when all have (reference testStart)")
    func neverPolicyFinishes() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .service, minWorkers: 2, restart: .never)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        harness.exit(1, .exited(0), report: .clean)
        #expect(harness.state(1) == .finished)
        let actions = harness.exit(2, .exited(0), report: .clean)
        #expect(actions.exits.first?.reason == .cleanExit)
        #expect(actions.finish == .some(nil))
    }

    @Test("limited gives up after maxRestarts within the window, and the window slides")
    func limitedPolicy() throws {
        let quick = RestartBackoff(initial: .zero, factor: 1, maximum: .zero, resetAfter: .seconds(100))
        var harness = try CoreHarness([
            WorkerGroup(
                entryPoint: "a", kind: .job, minWorkers: 1,
                restart: .limited(maxRestarts: 2, window: .seconds(60), backoff: quick)),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1, restart: .never),
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        #expect(harness.exit(1, .exited(1)).spawned == [1])
        harness.ready(1)
        harness.clock.advance(.seconds(50))
        #expect(harness.exit(1, .exited(1)).spawned == [1])
        harness.ready(1)
        // The first restart (t=0) leaves the 60 s window at t=61: one more is allowed then.
        harness.clock.advance(.seconds(11))
        #expect(harness.exit(1, .exited(1)).spawned == [1])
        harness.ready(1)
        let actions = harness.exit(1, .exited(1))
        #expect(actions.spawned.isEmpty)
        #expect(harness.state(1) == .failed)
        // The other group still runs; when it ends, the pool reports the slot it gave up on.
        harness.ready(2)
        let end = harness.exit(2, .exited(0), report: .clean)
        guard case .some(.some(let failure)) = end.finish else {
            Issue.record("expected the pool to finish with a failure")
            return
        }
        #expect(failure.code == .workersFailed)
    }

    @Test("terminate stops only that slot for good (reference testTerminateWorkerException)")
    func terminate() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        let actions = harness.exit(1, .exited(0), report: .terminate("done"))
        #expect(actions.exits.first?.reason == .terminate)
        #expect(actions.spawned.isEmpty)
        #expect(harness.state(1) == .finished)
        #expect(harness.state(2) == .ready)
        #expect(harness.core.mode == .running)
    }

    @Test("a fatal report stops the pool and run() fails with it; the restart policy is not consulted")
    func fatalStopsPool() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        let actions = harness.exit(1, .exited(1), report: .fatal("boom"))
        #expect(actions.exits.first?.reason == .fatal)
        #expect(actions.spawned.isEmpty)
        #expect(actions.stopRequests.map(\.0) == [2])
        #expect(harness.core.mode == .stopping)
        let end = harness.exit(2, .exited(0), report: .clean)
        guard case .some(.some(let failure)) = end.finish else {
            Issue.record("expected a fatal failure")
            return
        }
        #expect(failure.code == .fatalWorkerError)
        #expect(failure.message == "boom")
        #expect(failure.worker == WorkerID(1))
    }

    @Test("stop asks every worker, kills those past the stop timeout, and finishes")
    func stopWithTimeout() throws {
        var harness = try CoreHarness(
            [WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)], stopTimeout: .seconds(5))
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        let actions = harness.send(.stopRequested(reason: "test"))
        #expect(actions.stopRequests.map(\.0) == [1, 2])
        #expect(actions.stopRequests.allSatisfy { $0.1 == .shutdown })
        harness.exit(1, .exited(0), report: .clean)
        #expect(harness.advance(.milliseconds(4999)).killed.isEmpty)
        #expect(harness.advance(.milliseconds(1)).killed == [2])
        let end = harness.exit(2, .signaled(9))
        #expect(end.exits.first?.reason == .shutdown)
        #expect(end.exits.first?.message?.contains("did not stop within") == true)
        #expect(end.finish == .some(nil))
    }

    @Test("a second stop request kills what is left at once")
    func secondStopKills() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.send(.stopRequested(reason: "first"))
        #expect(harness.send(.stopRequested(reason: "second")).killed == [1])
    }

    @Test("stopping during startup asks the starting worker too, and a backing-off slot just stops")
    func stopDuringStartupAndBackoff() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, restart: .always(backoff: backoff))])
        harness.send(.poolDidStart)
        harness.exit(2, .exited(4))
        #expect(harness.state(2) == .backoff)
        let actions = harness.send(.stopRequested(reason: "test"))
        #expect(actions.stopRequests.map(\.0) == [1])
        #expect(harness.state(2) == .stopped)
        #expect(harness.core.nextDeadline != nil)
        let end = harness.exit(1, .exited(0), report: .clean)
        #expect(end.finish == .some(nil))
        #expect(harness.advance(.seconds(1)).spawned.isEmpty)
    }

    @Test("hard restart stops all, then starts all, without consulting the restart policy (reference testRestart)")
    func hardRestart() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, restart: .never),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1, restart: .never),
        ])
        harness.send(.poolDidStart)
        for id in [1, 2, 3] { harness.ready(id) }
        let actions = harness.send(.restartRequested(hard: true))
        #expect(actions.stopRequests.map(\.0) == [1, 2, 3])
        #expect(actions.stopRequests.allSatisfy { $0.1 == .restart })
        #expect(harness.exit(1, .exited(0), report: .clean).spawned.isEmpty)
        #expect(harness.exit(3, .exited(0), report: .clean).spawned.isEmpty, "nothing starts until all have stopped")
        let restarted = harness.exit(2, .exited(0), report: .clean)
        #expect(restarted.spawned == [1, 2, 3])
        #expect(harness.core.hardRestarts == 1)
        #expect(harness.core.mode == .running)
    }

    @Test("a slot that terminated itself stays stopped through a hard restart")
    func hardRestartKeepsTerminated() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        harness.exit(1, .exited(0), report: .terminate("bye"))
        harness.send(.restartRequested(hard: true))
        #expect(harness.exit(2, .exited(0), report: .clean).spawned == [2])
        #expect(harness.state(1) == .finished)
    }

    @Test("soft restart replaces each worker as soon as it exits, even under policy never")
    func softRestart() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, restart: .never)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.ready(2)
        let actions = harness.send(.restartRequested(hard: false))
        #expect(actions.stopRequests.map(\.0) == [1, 2])
        let first = harness.exit(1, .exited(0), report: .clean)
        #expect(first.exits.first?.reason == .restart)
        #expect(first.spawned == [1], "replaced without waiting for worker 2")
        #expect(harness.core.softRestarts == 1)
    }

    @Test("scaling up takes the lowest free ids, scaling down removes the highest ready ones")
    func scaling() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 5)])
        harness.send(.poolDidStart)
        harness.ready(1)
        #expect(harness.command(.scale(GroupID(1), to: 3)).spawned == [2, 3])
        harness.ready(2)
        harness.ready(3)
        #expect(harness.core.desiredCount(GroupID(1)) == 3)
        let down = harness.command(.scale(GroupID(1), to: 1))
        #expect(down.stopRequests.map(\.0) == [3, 2])
        #expect(down.stopRequests.allSatisfy { $0.1 == .scaleDown })
        let exit = harness.exit(3, .exited(0), report: .clean)
        #expect(exit.exits.first?.reason == .scaleDown)
        #expect(exit.spawned.isEmpty)
        #expect(harness.state(3) == .stopped)
    }

    @Test("scaling down stops idle workers before busy ones")
    func scaleDownPrefersIdle() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 4)])
        harness.send(.poolDidStart)
        harness.command(.scale(GroupID(1), to: 4))
        for id in 1...4 { harness.ready(id) }
        harness.busy([4, 2])
        let down = harness.command(.scale(GroupID(1), to: 2))
        #expect(down.stopRequests.map(\.0) == [3, 1])
        let more = harness.command(.scale(GroupID(1), to: 1))
        #expect(more.stopRequests.map(\.0) == [4], "when only busy ones are left, the highest id goes and finishes its work")
    }

    @Test("scaling down prefers a backing-off worker over a serving one")
    func scaleDownPrefersBackoff() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, maxWorkers: 3, restart: .always(backoff: backoff))
        ])
        harness.send(.poolDidStart)
        harness.ready(2)
        harness.exit(1, .exited(4))
        #expect(harness.state(1) == .backoff)
        harness.command(.scale(GroupID(1), to: 3))
        harness.ready(3)
        let down = harness.command(.scale(GroupID(1), to: 2))
        #expect(down.stopRequests.isEmpty)
        #expect(harness.state(1) == .stopped)
        #expect(harness.state(3) == .ready)
    }

    @Test("a scale outside min...max is refused with the range")
    func scaleRange() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 2)])
        harness.send(.poolDidStart)
        let (actions, token) = harness.commandToken(.scale(GroupID(1), to: 3))
        #expect(actions.spawned.isEmpty)
        guard case .failure(let refusal) = harness.replies[token] else {
            Issue.record("a scale beyond max was not refused")
            return
        }
        #expect(refusal.code == .outOfRange)
        #expect(refusal.message.contains("1...2"))
        #expect(harness.refusal(.scale(GroupID(1), to: 0)) == .outOfRange)
        #expect(harness.refusal(.scale(GroupID(9), to: 1)) == .noSuchGroup)
        let accepted = harness.commandToken(.scale(GroupID(1), to: 2))
        #expect(accepted.actions.spawned == [2])
        #expect(harness.replies[accepted.token] == .success(0), "answered in the same turn as its effect")
    }

    @Test("restarting a worker the pool gave up on starts it again at once")
    func restartFailedWorker() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, restart: .limited(maxRestarts: 0, window: .seconds(60))),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1),
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.exit(1, .exited(1))
        #expect(harness.state(1) == .failed)
        #expect(harness.command(.restartWorker(WorkerID(1), hard: false)).spawned == [1])
    }

    @Test("a worker that does not become ready within its start timeout is killed as a boot failure")
    func startTimeout() throws {
        var harness = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, restart: .always(backoff: backoff), startTimeout: .seconds(2))
        ])
        harness.send(.poolDidStart)
        #expect(harness.advance(.seconds(2)).killed == [1])
        let exit = harness.exit(1, .signaled(9))
        #expect(exit.exits.first?.reason == .bootFailure)
        #expect(exit.backoffDelays == [.milliseconds(100)])
    }

    @Test("a closed control channel gets the process killed if it lingers")
    func lostChannel() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1)])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.send(.channelDidClose(WorkerID(1), generation: harness.generation(1)))
        #expect(harness.advance(.milliseconds(999)).killed.isEmpty)
        #expect(harness.advance(.milliseconds(1)).killed == [1])
        #expect(harness.exit(1, .signaled(9)).exits.first?.reason == .signal)
    }

    @Test("events from an earlier generation of a slot are ignored")
    func staleGeneration() throws {
        var harness = try CoreHarness([WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1)])
        harness.send(.poolDidStart)
        harness.ready(1)
        let old = harness.generation(1)
        harness.clock.advance(.seconds(20))
        harness.exit(1, .signaled(9))
        #expect(harness.generation(1) == old + 1)
        let stale = harness.send(.processDidExit(WorkerID(1), generation: old, .signaled(9)))
        #expect(stale.isEmpty)
        #expect(harness.state(1) == .starting)
    }
}

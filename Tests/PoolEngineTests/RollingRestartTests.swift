import Testing

@testable import PoolEngine

extension [WatcherAction] {
    var rolling: [RollingRestartProgress] {
        compactMap { if case .emit(.groupRolling(_, let progress)) = $0 { return progress } else { return nil } }
    }
}

@Suite("Rolling restarts in the watcher core, step by step with a manual clock")
struct RollingRestartTests {
    let quick = RestartBackoff(initial: .milliseconds(100), factor: 2, maximum: .seconds(1), resetAfter: .seconds(10))

    /// A pool with group `a` (ids 1…max) running `running` ready workers, and group `b` (one worker).
    func pool(running: Int = 2, max: Int = 3, restart: RestartStrategy? = nil) throws -> CoreHarness {
        var harness = try CoreHarness([
            WorkerGroup(
                entryPoint: "a", kind: .job, minWorkers: running, maxWorkers: max,
                restart: restart ?? .always(backoff: quick), startTimeout: .seconds(5)),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1, maxWorkers: 1),
        ])
        harness.send(.poolDidStart)
        for id in 1...running { harness.ready(id) }
        harness.ready(max + 1)
        return harness
    }

    @Test("with a spare slot each replacement is ready before the worker it replaces is asked to leave")
    func besideSpare() throws {
        var harness = try pool()
        let (start, token) = harness.commandToken(.rollingRestart(GroupID(1)))
        #expect(start.rolling == [.started(workers: 2)])
        #expect(start.spawned == [3], "the replacement of worker 1 starts in the spare slot 3")
        #expect(start.stopRequests.isEmpty, "nobody leaves before the replacement is ready")
        #expect(harness.replies[token] == nil, "answered at the end, not now")

        #expect(harness.send(.workerDidBecomeReady(WorkerID(3), generation: harness.generation(3))).stopRequests.map(\.0) == [1])
        #expect(harness.core.desiredCount(GroupID(1)) == 2, "worker 1 is no longer wanted")
        // One extra worker at a time: the next replacement waits until worker 1 has left.
        #expect(harness.advance(.seconds(1)).spawned.isEmpty)
        let left = harness.exit(1, .exited(0), report: .clean)
        #expect(left.exits.first?.reason == .restart)
        #expect(left.rolling == [.replaced(WorkerID(1), by: WorkerID(3), done: 1, of: 2)])
        #expect(left.spawned == [1], "slot 1 is the next spare: it takes worker 2's replacement")

        harness.ready(1)
        #expect(harness.log.stopRequests.last?.0 == 2)
        let done = harness.exit(2, .exited(0), report: .clean)
        #expect(done.rolling == [.replaced(WorkerID(2), by: WorkerID(1), done: 2, of: 2), .finished(replaced: 2)])
        #expect(harness.replies[token] == .success(2))
        #expect(harness.core.desiredCount(GroupID(1)) == 2)
        #expect([1, 2, 3].map { harness.state($0) } == [.ready, .stopped, .ready])
        #expect(harness.core.rolls.isEmpty)
    }

    @Test("a group at its max restarts each worker in its own slot, one after the other")
    func inPlace() throws {
        var harness = try pool(running: 2, max: 2)
        let (start, token) = harness.commandToken(.rollingRestart(GroupID(1)))
        #expect(start.stopRequests.map(\.0) == [1])
        #expect(start.spawned.isEmpty)
        #expect(harness.exit(1, .exited(0), report: .clean).spawned == [1], "its slot starts the replacement at once")
        #expect(harness.state(2) == .ready, "worker 2 waits for worker 1's replacement")
        let ready = harness.send(.workerDidBecomeReady(WorkerID(1), generation: harness.generation(1)))
        #expect(ready.rolling == [.replaced(WorkerID(1), by: WorkerID(1), done: 1, of: 2)])
        #expect(ready.stopRequests.map(\.0) == [2])
        harness.exit(2, .exited(0), report: .clean)
        harness.ready(2)
        #expect(harness.replies[token] == .success(2))
    }

    @Test("a replacement that does not get ready stops the roll; its slot goes back to spare and the rest run on")
    func replacementFails() throws {
        var harness = try pool()
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        // The spare's start timeout passes: killed, then a boot failure that backs off.
        #expect(harness.advance(.seconds(5)).killed == [3])
        let exit = harness.exit(3, .signaled(9))
        #expect(exit.exits.first?.reason == .bootFailure)
        guard case .failure(let error) = harness.replies[token] else {
            Issue.record("the roll was not answered with a failure")
            return
        }
        #expect(error.code == .failed)
        #expect(error.message.contains("stopped after 0 of 2"))
        #expect(exit.rolling.count == 1)
        #expect(harness.state(3) == .stopped)
        #expect(harness.core.slot(WorkerID(3))?.isDesired == false)
        #expect([harness.state(1), harness.state(2)] == [.ready, .ready], "the workers not yet reached were left alone")
        #expect(harness.log.stopRequests.isEmpty)
        #expect(harness.core.desiredCount(GroupID(1)) == 2)
        #expect(harness.advance(.seconds(1)).spawned.isEmpty, "the spare is not restarted by its backoff")
    }

    @Test("in place, a replacement its restart policy gives up on ends the roll with the reason")
    func inPlaceFails() throws {
        var harness = try pool(running: 2, max: 2, restart: .never)
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        harness.exit(1, .exited(0), report: .clean)
        harness.exit(1, .exited(3))
        guard case .failure(let error) = harness.replies[token] else {
            Issue.record("not answered with a failure")
            return
        }
        #expect(error.code == .failed)
        #expect(error.message.contains("replacement of worker 1 did not start"))
        #expect(harness.state(2) == .ready)
    }

    @Test("a second roll of the group and a scale of it are refused busy; another group can roll meanwhile")
    func busy() throws {
        var harness = try pool()
        harness.command(.rollingRestart(GroupID(1)))
        #expect(harness.refusal(.rollingRestart(GroupID(1))) == .busy)
        #expect(harness.refusal(.scale(GroupID(1), to: 3)) == .busy)
        #expect(harness.refusal(.scale(GroupID(1), to: 2)) == .busy)
        let other = harness.commandToken(.rollingRestart(GroupID(2)))
        #expect(other.actions.stopRequests.map(\.0) == [4], "group b is at its max: in place")
        #expect(harness.core.rolls.count == 2)
    }

    @Test("a group grown on demand does not shrink while it rolls, and the roll's spare is never scaled away")
    func shrinkWaits() throws {
        var harness = try CoreHarness([
            WorkerGroup(
                entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 3,
                scaling: ScalingPolicy(onDemand: true, shrinkAfterIdle: .seconds(1)))
        ])
        harness.send(.poolDidStart)
        harness.ready(1)
        harness.send(.scaleUpRequested(GroupID(1)))
        harness.ready(2)
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        #expect(harness.log.spawned.last == 3)
        #expect(harness.send(.shrinkRequested(GroupID(1))).stopRequests.isEmpty, "no shrink during the roll")
        #expect(harness.state(3) == .starting)
        harness.ready(3)
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(1)
        harness.exit(2, .exited(0), report: .clean)
        #expect(harness.replies[token] == .success(2))
        #expect(harness.send(.shrinkRequested(GroupID(1))).stopRequests.count == 1, "it shrinks once the roll is over")
    }

    @Test("a kill of the worker being replaced: its slot's new process is retired in its place")
    func killOfReplaced() throws {
        var harness = try pool()
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        harness.command(.killWorker(WorkerID(1)))
        harness.clock.advance(.seconds(20))
        #expect(harness.exit(1, .signaled(9)).spawned == [1], "the restart policy brings it back")
        harness.ready(3)
        #expect(harness.log.stopRequests.last?.0 == 1, "slot 1 leaves all the same: slot 3 replaces it")
        harness.exit(1, .exited(0), report: .clean)
        harness.ready(1)
        harness.exit(2, .exited(0), report: .clean)
        #expect(harness.replies[token] == .success(2))
        #expect(harness.core.desiredCount(GroupID(1)) == 2, "never more than before")
    }

    @Test("a kill of the starting replacement ends the roll")
    func killOfSpare() throws {
        var harness = try pool()
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        harness.command(.killWorker(WorkerID(3)))
        harness.exit(3, .signaled(9))
        guard case .failure(let error) = harness.replies[token] else {
            Issue.record("not answered with a failure")
            return
        }
        #expect(error.code == .failed)
        #expect(harness.core.slot(WorkerID(3))?.isDesired == false)
        #expect(harness.state(3) == .stopped)
    }

    @Test("a worker that left before its turn is skipped; a roll of an empty group ends at once")
    func skipsLeft() throws {
        var harness = try pool()
        let token = harness.commandToken(.rollingRestart(GroupID(1))).token
        harness.command(.stopWorker(WorkerID(2)))
        harness.ready(3)
        harness.exit(1, .exited(0), report: .clean)
        #expect(harness.replies[token] == .success(1))

        var empty = try CoreHarness([
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 0, maxWorkers: 2),
            WorkerGroup(entryPoint: "b", kind: .job, minWorkers: 1),
        ])
        empty.send(.poolDidStart)
        let answer = empty.commandToken(.rollingRestart(GroupID(1)))
        #expect(empty.replies[answer.token] == .success(0))
        #expect(answer.actions.rolling == [.started(workers: 0), .finished(replaced: 0)])
    }

    @Test("a pool stop or restart ends the roll: notRunning for a stop, failed for a soft restart")
    func poolStopEndsRoll() throws {
        var stopping = try pool()
        let token = stopping.commandToken(.rollingRestart(GroupID(1))).token
        stopping.send(.stopRequested(reason: "test"))
        guard case .failure(let stopped) = stopping.replies[token] else {
            Issue.record("not answered")
            return
        }
        #expect(stopped.code == .notRunning)

        var restarting = try pool()
        let second = restarting.commandToken(.rollingRestart(GroupID(1))).token
        restarting.send(.restartRequested(hard: false))
        guard case .failure(let soft) = restarting.replies[second] else {
            Issue.record("not answered")
            return
        }
        #expect(soft.code == .failed)
        #expect(restarting.core.rolls.isEmpty)
    }
}

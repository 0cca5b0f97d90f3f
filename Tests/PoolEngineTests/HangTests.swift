import Testing

@testable import PoolEngine

/// The hang watchdog in the core, with a manual clock: heartbeats in, backtrace and kill out.
@Suite("Hang watchdog (hangTimeout) in the watcher core, with a manual clock")
struct HangTests {
    func harness(hangTimeout: Duration? = .seconds(2), restart: RestartStrategy = .always()) throws -> CoreHarness {
        var group = WorkerGroup(entryPoint: "job", kind: .job, minWorkers: 1, name: "jobs", restart: restart)
        group.hangTimeout = hangTimeout
        var harness = try CoreHarness([group])
        harness.send(.poolDidStart)
        harness.ready(1)
        return harness
    }

    func beat(_ harness: CoreHarness, ago: Duration) -> [WorkerID: PoolInstant?] {
        [WorkerID(1): .some(harness.clock.now + (.zero - ago))]
    }

    func captures(_ actions: [WatcherAction]) -> [Int] {
        actions.compactMap { if case .captureBacktrace(let id, _, _) = $0 { return id.rawValue } else { return nil } }
    }

    @Test("a ready worker is looked at once per hangTimeout; a heartbeat that moved pushes the check on")
    func beatsKeepItAlive() throws {
        var harness = try harness()
        #expect(harness.core.nextDeadline == harness.clock.now + .seconds(2), "checked hangTimeout after it became ready")
        #expect(harness.core.hangChecksDue(at: harness.clock.now).isEmpty)
        harness.clock.advance(.seconds(2))
        #expect(harness.core.hangChecksDue(at: harness.clock.now) == [WorkerID(1)])
        let alive = harness.send(.heartbeatsRead(beat(harness, ago: .milliseconds(300))))
        #expect(captures(alive).isEmpty)
        #expect(harness.core.slot(WorkerID(1))?.hangAt == harness.clock.now + .milliseconds(1700))
        #expect(harness.state(1) == .ready)
    }

    @Test("a heartbeat that stood still for hangTimeout: out of service, backtrace asked for, then killed; exit reason hang, and restarted")
    func hangFound() throws {
        var harness = try harness()
        harness.clock.advance(.seconds(2))
        let found = harness.send(.heartbeatsRead(beat(harness, ago: .milliseconds(2100))))
        #expect(captures(found) == [1])
        #expect(found.contains { if case .emit(.workerHung(WorkerID(1), _, _, let why)) = $0 { return why.contains("stood still for 2s (hangTimeout 2s)") } else { return false } })
        #expect(harness.state(1) == .stopping, "no new job or connection goes to it")
        #expect(found.killed.isEmpty, "not before the backtrace")
        let killed = harness.send(.backtraceCaptured(WorkerID(1), generation: harness.generation(1), "#3 freezeEventLoop"))
        #expect(killed.killed == [1])
        #expect(killed.contains { if case .emit(.workerBacktrace(WorkerID(1), _, _, "#3 freezeEventLoop")) = $0 { return true } else { return false } })
        let exit = harness.exit(1, .signaled(9))
        #expect(exit.exits.first?.reason == .hang)
        #expect(exit.exits.first?.message?.contains("hung: its heartbeat stood still") == true)
        #expect(exit.spawned == [1], "the restart policy brings it back")
    }

    @Test("a worker that never beat counts from when it became ready")
    func neverBeat() throws {
        var harness = try harness()
        harness.clock.advance(.seconds(2))
        #expect(captures(harness.send(.heartbeatsRead([WorkerID(1): .none]))) == [1])
    }

    @Test("a capture that never answers does not keep a hung worker alive: killed at the backtrace limit")
    func captureBounded() throws {
        var harness = try harness()
        harness.clock.advance(.seconds(2))
        harness.send(.heartbeatsRead(beat(harness, ago: .seconds(3))))
        #expect(harness.advance(.seconds(4)).killed.isEmpty)
        let late = harness.advance(.seconds(1))
        #expect(late.killed == [1])
        #expect(harness.exit(1, .signaled(9)).exits.first?.reason == .hang)
        // An answer for the old process after it is gone changes nothing.
        #expect(harness.send(.backtraceCaptured(WorkerID(1), generation: 1, "late")).isEmpty)
    }

    @Test("hangTimeout off: no check, no deadline")
    func off() throws {
        var harness = try harness(hangTimeout: nil)
        #expect(harness.core.nextDeadline == nil)
        #expect(harness.core.slot(WorkerID(1))?.hangAt == nil)
        harness.clock.advance(.seconds(3600))
        #expect(harness.core.hangChecksDue(at: harness.clock.now).isEmpty)
    }

    @Test("a worker asked to stop is not checked for a hang (its stop timeout bounds it)")
    func stoppingNotChecked() throws {
        var harness = try harness()
        harness.command(.restartWorker(WorkerID(1), hard: false))
        #expect(harness.state(1) == .stopping)
        harness.clock.advance(.seconds(3))
        #expect(harness.core.hangChecksDue(at: harness.clock.now).isEmpty)
        #expect(harness.core.nextDeadline == harness.clock.now + .seconds(7), "only its stop timeout")
    }
}

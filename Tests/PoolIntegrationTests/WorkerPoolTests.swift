import Glibc
import Testing

@testable import PoolEngine

/// amphp-pool's WorkerPoolTest and the supervision cases of the engine issue,
/// with real worker processes spawned from the fixture binary by an in-process watcher.
@Suite("WorkerPool with real worker processes", .serialized)
struct WorkerPoolTests {
    /// A pool whose workers run the fixture binary in a fresh directory, tagged for the orphan check.
    struct Fixture {
        let name: String
        let directory: String
        let pool: WorkerPool

        init(_ prefix: String, stopTimeout: Duration = .seconds(5), pidFile: String? = nil, jobWait: JobWaitPolicy = .suspend) {
            name = TestSupport.uniqueName(prefix)
            directory = TestSupport.makeDirectory(name)
            pool = WorkerPool(
                name: name,
                configuration: WorkerPool.Configuration(
                    stopTimeout: stopTimeout, pidFile: pidFile, handlesSignals: false, workerLogLevel: .debug, jobWait: jobWait))
        }

        func group(
            _ entryPoint: String, kind: WorkerKind = .service, min: Int = 1, max: Int = 0, name: String = "",
            restart: RestartStrategy = .always(), startTimeout: Duration = .seconds(60),
            onUncaughtError: UncaughtErrorPolicy = .stopPool
        ) -> WorkerGroup {
            WorkerGroup(
                entryPoint: entryPoint, kind: kind, minWorkers: min, maxWorkers: max, name: name,
                runner: TestSupport.runner(directory: directory, tag: self.name), restart: restart,
                startTimeout: startTimeout, onUncaughtError: onUncaughtError)
        }

        func lines(_ file: String) -> [String] { TestSupport.lines(directory, file) }

        /// Runs a group of `entryPoint` with 2 workers and hands the body its fork server
        /// (decision 0028), which comes with the group.
        func withForkServer(_ entryPoint: String, _ body: (EventRecorder, pid_t) async throws -> Void) async throws {
                try pool.describeGroup(group(entryPoint, min: 2))
            try await withRunningPool { events in
                let server = try #require(await TestSupport.forkServer(of: name))
                try await body(events, server)
            }
        }

        /// Runs the pool while `body` runs (after every started worker is ready), then stops it,
        /// expects a clean end and checks that no process is left.
        func withRunningPool(
            sourceLocation: SourceLocation = #_sourceLocation, _ body: (EventRecorder) async throws -> Void
        ) async throws {
            let events = EventRecorder(pool)
            let running = RunningPool(pool)
            await pool.awaitStart()
            // A pool that could not start (a port taken meanwhile, say) has no snapshot: say why
            // rather than run the body against nothing.
            if pool.snapshot() == nil, case .failure(let error) = await running.finish() {
                Issue.record("the pool did not start: \(error)", sourceLocation: sourceLocation)
                throw error
            }
            // The recorder reads the event stream in its own task: wait until it has caught up
            // with every worker the pool has made ready, so a body may read `readyPIDs` at once.
            let ready = pool.snapshot()?.groups.reduce(0) { $0 + $1.ready } ?? 0
            _ = await events.waitFor { $0.readyPIDs.count >= ready }
            do {
                try await body(events)
            } catch {
                pool.stop()
                _ = await running.finish()
                await TestSupport.expectNoOrphans(name, sourceLocation: sourceLocation)
                throw error
            }
            pool.stop()
            await #expect(throws: Never.self, sourceLocation: sourceLocation) { try await running.finish().get() }
            await TestSupport.expectNoOrphans(name, sourceLocation: sourceLocation)
        }
    }

    @Test("run() returns on its own once both workers exit under policy never (testStart)")
    func start() async throws {
        let fixture = Fixture("start")
        try fixture.pool.describeGroup(fixture.group("hello", min: 2, restart: .never))
        let result = await RunningPool(fixture.pool).finish()
        #expect(throws: Never.self) { try result.get() }
        let lines = fixture.lines("hello")
        #expect(lines.count == 2)
        // Every worker was reaped by the watcher: not even a zombie is left.
        let pids = lines.compactMap { $0.split(separator: " ").last.flatMap { pid_t($0) } }
        #expect(pids.count == 2 && pids.allSatisfy(TestSupport.isReaped))
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("stop() lets workers finish run() gracefully, then run() returns (testStop)")
    func stop() async throws {
        let fixture = Fixture("stop")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2, restart: .never))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        #expect(await events.waitFor { $0.readyPIDs.count == 2 })
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        #expect(fixture.lines("stopped").count == 2, "each worker wrote after awaitTermination returned")
        #expect(events.exits.map(\.reason) == [.shutdown, .shutdown])
        #expect(events.exits.allSatisfy { $0.status == .exited(0) })
        #expect(events.readyPIDs.allSatisfy { TestSupport.isReaped($0.1) })
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("awaitStart() queued before run() returns once the workers are ready (testAwaitStart)")
    func awaitStart() async throws {
        let fixture = Fixture("await")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2))
        let events = EventRecorder(fixture.pool)
        let waiter = Task { await fixture.pool.awaitStart() }
        let running = RunningPool(fixture.pool)
        await waiter.value
        // Shared memory is written before awaitStart resumes; the recorder's task may lag behind.
        #expect(fixture.pool.snapshot()?.groups.first?.ready == 2)
        #expect(await events.waitFor { $0.readyPIDs.count == 2 })
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a hard restart stops the worker without consulting the restart policy, then starts it again (testRestart)")
    func hardRestart() async throws {
        let fixture = Fixture("restart")
        try fixture.pool.describeGroup(fixture.group("restart-once", min: 1))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        fixture.pool.restart(.hard)
        let result = await running.finish()
        #expect(throws: Never.self) { try result.get() }
        #expect(fixture.lines("restart-counter") == ["1"])
        #expect(events.exits.map(\.reason) == [.restart, .terminate])
        #expect(events.backoffDelays.isEmpty, "the restart policy was never consulted")
        #expect(fixture.pool.restartCounts.hard == 1)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("with min 0 nothing starts and run() returns at once (testStartWithMinZero)")
    func minZero() async throws {
        let fixture = Fixture("minzero")
        try fixture.pool.describeGroup(fixture.group("hello", min: 0, max: 1))
        await #expect(throws: Never.self) { try await RunningPool(fixture.pool).finish().get() }
        #expect(fixture.lines("hello").isEmpty)
    }

    @Test("max 0 with min 0 is refused before anything starts (testStartWithMaxZero)")
    func maxZero() async throws {
        let fixture = Fixture("maxzero")
        try fixture.pool.describeGroup(fixture.group("hello", min: 0, max: 0))
        let result = await RunningPool(fixture.pool).finish()
        #expect(throws: ConfigurationError.self) { try result.get() }
    }

    @Test("a run() refused before it starts ends awaitStart(), called before or after it", .timeLimit(.minutes(1)))
    func refusedRunEndsAwaitStart() async throws {
        let fixture = Fixture("refusedwaiters")
        try fixture.pool.describeGroup(fixture.group("hello", min: 0, max: 0))
        // Called before run(): it queues for a watcher that will never start.
        async let early: Void = fixture.pool.awaitStart()
        try await Task.sleep(for: .milliseconds(50))
        await #expect(throws: ConfigurationError.self) { try await fixture.pool.run() }
        await early
        // Called after (`Task { try await pool.run() }` then `awaitStart()` races so): at once.
        await fixture.pool.awaitStart()
        #expect(fixture.pool.poolDescription == nil)
        await #expect(throws: CommandError.self) { try await fixture.pool.scale(.name("hello"), to: 1) }
    }

    @Test("an error thrown from run() stops the pool and run() throws it; no restart (testFatalWorkerException)")
    func fatal() async throws {
        let fixture = Fixture("fatal")
        try fixture.pool.describeGroup(fixture.group("fatal", min: 1))
        let events = EventRecorder(fixture.pool)
        let result = await RunningPool(fixture.pool).finish()
        guard case .failure(let error as PoolFailure) = result else {
            Issue.record("expected a PoolFailure, got \(result)")
            return
        }
        #expect(error.code == .fatalWorkerError)
        #expect(error.message.contains("the fixture failed on purpose"))
        #expect(error.worker == WorkerID(1))
        #expect(events.starts == 1)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("under onUncaughtError restart an error is a crash and the worker comes back")
    func uncaughtErrorRestarts() async throws {
        let fixture = Fixture("uncaught")
        let quick = RestartStrategy.limited(maxRestarts: 2, window: .seconds(60), backoff: RestartBackoff(initial: .milliseconds(10)))
        try fixture.pool.describeGroup(fixture.group("fatal", min: 1, restart: quick, onUncaughtError: .restart))
        let events = EventRecorder(fixture.pool)
        let result = await RunningPool(fixture.pool).finish()
        guard case .failure(let error as PoolFailure) = result else {
            Issue.record("expected the pool to give up on the worker, got \(result)")
            return
        }
        #expect(error.code == .workersFailed)
        #expect(events.exits.map(\.reason) == [.crash, .crash, .crash])
    }

    @Test("a worker that terminates itself stops for good and run() completes without error (testTerminateWorkerException)")
    func terminate() async throws {
        let fixture = Fixture("terminate")
        try fixture.pool.describeGroup(fixture.group("terminate", min: 2, restart: .never))
        let events = EventRecorder(fixture.pool)
        await #expect(throws: Never.self) { try await RunningPool(fixture.pool).finish().get() }
        #expect(events.exits.map(\.reason) == [.terminate, .terminate])
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("two groups get contiguous id blocks and every worker reports ready (testWorkerState)")
    func workerIDs() async throws {
        let fixture = Fixture("ids")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2, name: "first"))
        try fixture.pool.describeGroup(fixture.group("wait", min: 3, name: "second"))
        try await fixture.withRunningPool { events in
            let ready = events.all.compactMap { event -> (Int, String)? in
                if case .workerReady(let id, let group, _, _) = event { return (id.rawValue, group) } else { return nil }
            }.sorted { $0.0 < $1.0 }
            #expect(ready.map(\.0) == [1, 2, 3, 4, 5])
            #expect(ready.map(\.1) == ["first", "first", "second", "second", "second"])
            // Each worker writes the file after reporting ready, so wait for the last writes.
            let started = { fixture.lines("started").map { $0.split(separator: " ").first.map(String.init) ?? "" }.sorted() }
            #expect(await TestSupport.eventually { started() == ["1", "2", "3", "4", "5"] }, "started: \(started())")
        }
    }

    @Test("a worker that loses its control channel and exits without a report is a crash (testChannelLost)")
    func channelLost() async throws {
        let fixture = Fixture("channel")
        try fixture.pool.describeGroup(fixture.group("lost-channel", min: 1, restart: .never))
        let events = EventRecorder(fixture.pool)
        await #expect(throws: Never.self) { try await RunningPool(fixture.pool).finish().get() }
        let exit = try #require(events.exits.first)
        #expect(exit.reason == .crash)
        #expect(exit.message?.contains("control channel was lost") == true)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("scaling up starts the next slots; every start is counted (testScale)")
    func scale() async throws {
        let fixture = Fixture("scale")
        try fixture.pool.describeGroup(fixture.group("start-counter", min: 1, max: 5, name: "counted", restart: .never))
        try await fixture.withRunningPool { events in
            try await fixture.pool.scale("counted", to: 3)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            await fixture.pool.awaitStart()
            #expect(await TestSupport.eventually { fixture.lines("start-counter") == ["3"] })
            await #expect(throws: CommandError.self) { try await fixture.pool.scale("counted", to: 6) }
            await #expect(throws: CommandError.self) { try await fixture.pool.scale("nope", to: 1) }
            try await fixture.pool.scale("counted", to: 1)
            #expect(await events.waitFor { $0.exits.count == 2 })
            #expect(events.exits.map(\.reason) == [.scaleDown, .scaleDown])
            #expect(Set(events.exits.map(\.id)) == [WorkerID(2), WorkerID(3)])
        }
    }

    @Test("a soft restart replaces the worker with a new process and counts one soft restart (testSoftRestart)")
    func softRestart() async throws {
        let fixture = Fixture("soft")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, restart: .never))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        fixture.pool.restart(.soft)
        #expect(await events.waitFor { $0.readyPIDs.count == 2 })
        let pids = events.readyPIDs.map(\.1)
        #expect(pids[0] != pids[1])
        #expect(events.exits.first?.reason == .restart)
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        #expect(fixture.pool.restartCounts.soft == 1)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a SIGKILLed worker is replaced by a new process in the same slot")
    func killedWorkerReplaced() async throws {
        let fixture = Fixture("kill")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2))
        try await fixture.withRunningPool { events in
            let (victimID, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let exit = try #require(events.exits.first)
            #expect(exit.id == victimID)
            #expect(exit.reason == .signal)
            #expect(exit.status == .signaled(SIGKILL))
            let replacement = try #require(events.readyPIDs.last)
            #expect(replacement.0 == victimID)
            #expect(replacement.1 != victimPID)
        }
    }

    @Test("a replacement is forked by the group's fork server, and its exit code and signal reach the watcher all the same", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerReplacesWorkers() async throws {
        let fixture = Fixture("forks")
        // It comes once the group's workers are ready; `ps` names it.
        try await fixture.withForkServer("exit-when-marked") { events, server in
            #expect(await TestSupport.eventually { TestSupport.processName(server) == "exit-when-marked#fork-server".prefix(15) })
            let (victimID, victimPID) = try #require(events.readyPIDs.first)
            #expect(TestSupport.parent(of: victimPID) == getpid(), "a group of 2 starts spawned")
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let forked = try #require(events.readyPIDs.last)
            #expect(forked.0 == victimID && forked.1 != victimPID)
            #expect(TestSupport.parent(of: forked.1) == server)
            #expect(await TestSupport.eventually { TestSupport.processName(forked.1) == "exit-when-marked#\(victimID)".prefix(15) })
            // The fork server reaps it; the watcher reads its status from its pidfd.
            TestSupport.touch("\(fixture.directory)/exit-\(forked.1)")
            #expect(await events.waitFor { $0.exits.count == 2 && $0.readyPIDs.count == 4 })
            let exited = try #require(events.exits.last)
            #expect(exited.id == victimID && exited.status == .exited(5) && exited.reason == .crash, "\(exited)")
            let next = try #require(events.readyPIDs.last)
            #expect(TestSupport.parent(of: next.1) == server)
            kill(next.1, SIGKILL)
            #expect(await events.waitFor { $0.exits.count == 3 })
            let killed = try #require(events.exits.last)
            #expect(killed.id == victimID && killed.status == .signaled(SIGKILL) && killed.reason == .signal, "\(killed)")
            #expect(await events.waitFor { $0.readyPIDs.count == 5 })
        }
        // The fork server left with the pool (`withRunningPool` checks that nothing outlived it).
    }

    @Test("a fork server killed under its children: they keep running, watched, their exits still reported with their status", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerKilled() async throws {
        let fixture = Fixture("forkdied")
        try await fixture.withForkServer("exit-when-marked") { events, server in
            let (victimID, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let forked = try #require(events.readyPIDs.last).1
            #expect(TestSupport.parent(of: forked) == server)
            kill(server, SIGKILL)
            #expect(await TestSupport.eventually { !TestSupport.isAlive(server) })
            // Orphaned: its new parent is whatever reaper is above (an init that may never reap
            // it); the watcher still reads its status, from the kernel or from its zombie.
            #expect(TestSupport.parent(of: forked) != server)
            TestSupport.touch("\(fixture.directory)/exit-\(forked)")
            #expect(await events.waitFor { $0.exits.count == 2 })
            let exited = try #require(events.exits.last)
            #expect(exited.id == victimID && exited.status == .exited(5), "\(exited)")
            // Its replacement is spawned (the fork server died on its own); once it is ready the
            // group gets a new fork server.
            #expect(await events.waitFor { $0.readyPIDs.count == 4 })
            #expect(TestSupport.parent(of: try #require(events.readyPIDs.last).1) == getpid())
            #expect(await TestSupport.forkServer(of: fixture.name, other: server) != nil)
        }
    }

    @Test("a fork server that does not answer (SIGSTOPped) is killed once the watcher gives up on it, and the slot is spawned", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerSilent() async throws {
        let fixture = Fixture("forksilent")
        try await fixture.withForkServer("wait") { events, server in
            kill(server, SIGSTOP)
            let (victimID, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let replacement = try #require(events.readyPIDs.last)
            #expect(replacement.0 == victimID && TestSupport.parent(of: replacement.1) == getpid())
            #expect(await TestSupport.eventually { !TestSupport.isAlive(server) })
            // Its forks are orphans now, still watched: the pool stops them as usual.
            #expect(await TestSupport.forkServer(of: fixture.name, other: server) != nil)
        }
    }

    @Test("a fork server with other threads (the binary started one before runIfWorker) forks nothing: the workers are spawned", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerWithThreads() async throws {
        let fixture = Fixture("forkthreads")
        var group = fixture.group("wait", min: 2)
        group.runner.environment["PT_THREAD_BEFORE_WORKER"] = "1"
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let server = try #require(await TestSupport.forkServer(of: fixture.name))
            #expect(events.readyPIDs.allSatisfy { TestSupport.parent(of: $0.1) == getpid() }, "the group's start")
            let (_, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            #expect(TestSupport.parent(of: try #require(events.readyPIDs.last).1) == getpid())
            // It refused, and stays: a refusal is not a failure.
            #expect(TestSupport.isAlive(server))
        }
    }

    @Test("a group starting 4 workers: the first is spawned beside the starting fork server, the other three are its forks", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerAhead() async throws {
        let fixture = Fixture("forkahead")
        try fixture.pool.describeGroup(fixture.group("wait", min: 4))
        try await fixture.withRunningPool { events in
            let server = try #require(await TestSupport.forkServer(of: fixture.name))
            let parents = events.readyPIDs.map { TestSupport.parent(of: $0.1) }
            #expect(parents.filter { $0 == getpid() }.count == 1 && parents.filter { $0 == server }.count == 3, "\(parents)")
        }
    }

    @Test("a second stop request ends a fork server that cannot leave on its own (SIGSTOPped)", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkServerStoppedAtStop() async throws {
        let fixture = Fixture("forkstopped")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let server = try #require(await TestSupport.forkServer(of: fixture.name))
        kill(server, SIGSTOP)
        fixture.pool.stop()
        // Its workers are gone; the stopped fork server cannot see to its own leaving.
        #expect(await TestSupport.eventually { TestSupport.taggedWorkers(fixture.name).isEmpty })
        #expect(TestSupport.isAlive(server))
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("with forkServer: false every replacement is spawned by the watcher, and no fork server runs")
    func forkServerOff() async throws {
        let fixture = Fixture("noforks")
        var group = fixture.group("wait", min: 2)
        group.forkServer = false
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let (_, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let replacement = try #require(events.readyPIDs.last)
            #expect(TestSupport.parent(of: replacement.1) == getpid())
            #expect(!TestSupport.taggedProcesses(fixture.name).contains(where: TestSupport.isForkServer))
        }
    }

    @Test("with standby: true a SIGKILLed worker's replacement is the standby process, and a new standby follows")
    func standbyReplacesKilledWorker() async throws {
        let fixture = Fixture("standby")
        var group = fixture.group("wait", min: 2)
        group.standby = true
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            // The standby: a process of the pool that is none of its ready workers.
            let standby = try #require(await events.standby(of: fixture.name))
            // What `ps` shows of it: its name and command line say what it is.
            func shown(_ file: String) -> String {
                let bytes = (try? Posix.readFile("/proc/\(standby)/\(file)")) ?? []
                // Arguments are NUL-separated, a rewritten one NUL-padded; comm ends in a newline.
                return String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\0" || $0 == "\n" }).joined(separator: " ")
            }
            // Named once its process is past its own start (it may still be on its way).
            #expect(await TestSupport.eventually { shown("comm") == "wait#standby" })
            #expect(shown("cmdline").hasSuffix("worker \(fixture.name)/wait#standby"))
            let (victimID, victimPID) = try #require(events.readyPIDs.first)
            kill(victimPID, SIGKILL)
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            let replacement = try #require(events.readyPIDs.last)
            #expect(replacement.0 == victimID)
            #expect(replacement.1 == standby)
            // It runs as the slot's worker: the id in its environment is the slot's (its `run()`
            // writes the line just after it said ready).
            var line: String?
            #expect(await TestSupport.eventually {
                line = fixture.lines("started").first { $0.hasPrefix("\(victimID) \(standby) ") }
                return line != nil
            })
            let started = try #require(line)
            #expect(started.hasSuffix(" \(victimID)"))
            #expect(shown("comm") == "wait#\(victimID)")
            #expect(shown("cmdline").hasSuffix("worker \(fixture.name)/wait#\(victimID)"))
            // And the group gets a new standby once the replacement is ready.
            let next = await events.standby(of: fixture.name)
            #expect(next != nil && next != standby)
        }
    }

    @Test("a crash-looping worker backs off exponentially as configured")
    func crashLoopBacksOff() async throws {
        let fixture = Fixture("crashloop")
        let backoff = RestartBackoff(initial: .milliseconds(20), factor: 2, maximum: .seconds(1), resetAfter: .seconds(30))
        try fixture.pool.describeGroup(fixture.group("exit-code", min: 1, restart: .limited(maxRestarts: 4, window: .seconds(60), backoff: backoff)))
        let events = EventRecorder(fixture.pool)
        let result = await RunningPool(fixture.pool).finish()
        #expect(throws: PoolFailure.self) { try result.get() }
        // First crash: at once; then 20, 40, 80 ms; the fifth exit exhausts the limit.
        #expect(events.backoffDelays == [.milliseconds(20), .milliseconds(40), .milliseconds(80)])
        #expect(events.exits.count == 5)
        #expect(events.exits.allSatisfy { $0.reason == .crash && $0.status == .exited(3) })
        #expect(fixture.lines("crashed").count == 5)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a worker that dies before it is ready is a boot failure and waits before its next start")
    func bootFailure() async throws {
        let fixture = Fixture("boot")
        let backoff = RestartBackoff(initial: .milliseconds(30), factor: 2, maximum: .seconds(1), resetAfter: .seconds(30))
        try fixture.pool.describeGroup(fixture.group("boot-crash", min: 1, restart: .limited(maxRestarts: 2, window: .seconds(60), backoff: backoff)))
        let events = EventRecorder(fixture.pool)
        _ = await RunningPool(fixture.pool).finish()
        #expect(events.exits.map(\.reason) == [.bootFailure, .bootFailure, .bootFailure])
        #expect(events.backoffDelays == [.milliseconds(30), .milliseconds(30)])
        #expect(events.readyPIDs.isEmpty)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a worker that ignores the stop request is SIGKILLed after the stop timeout")
    func ignoresStop() async throws {
        let fixture = Fixture("stubborn", stopTimeout: .milliseconds(300))
        try fixture.pool.describeGroup(fixture.group("ignore-stop", min: 1))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        let exit = try #require(events.exits.first)
        #expect(exit.reason == .shutdown)
        #expect(exit.status == .signaled(SIGKILL))
        #expect(exit.message?.contains("did not stop within") == true, "message: \(String(describing: exit.message))")
        await TestSupport.expectNoOrphans(fixture.name)
    }

    /// The code of the refusal `body` throws; nil when it does not throw.
    static func refusal(_ body: () async throws(CommandError) -> Void) async -> CommandError.Code? {
        do throws(CommandError) {
            try await body()
            return nil
        } catch {
            return error.code
        }
    }

    @Test("a second rolling restart of a group while one runs is refused as busy; each refusal carries its code")
    func secondRollIsBusy() async throws {
        let fixture = Fixture("roll2")
        // Workers that never get ready: the roll waits on its first replacement for as long as
        // the test needs it under way.
        try fixture.pool.describeGroup(
            fixture.group("stuck-initialize", min: 1, max: 2, name: "stuck", restart: .never, startTimeout: .seconds(60)))
        let running = RunningPool(fixture.pool)
        #expect(await TestSupport.eventually { fixture.pool.snapshot()?.worker(WorkerID(1))?.state.hasProcess == true })
        let first = Task { await Self.refusal { () async throws(CommandError) in _ = try await fixture.pool.rollingRestart("stuck") } }
        // The roll has started its replacement in the spare slot 2 and waits for it.
        #expect(await TestSupport.eventually { fixture.pool.snapshot()?.worker(WorkerID(2))?.state.hasProcess == true })
        #expect(await Self.refusal { () async throws(CommandError) in _ = try await fixture.pool.rollingRestart("stuck") } == .busy)
        #expect(await Self.refusal { () async throws(CommandError) in try await fixture.pool.scale("stuck", to: 5) } == .outOfRange)
        #expect(await Self.refusal { () async throws(CommandError) in try await fixture.pool.scale("nope", to: 1) } == .noSuchGroup)
        #expect(await Self.refusal { () async throws(CommandError) in try await fixture.pool.restartWorker(WorkerID(9)) } == .noSuchWorker)
        #expect(throws: CommandError(.misuse, "groups cannot be described after run() started")) {
            try fixture.pool.describeGroup(fixture.group("wait"))
        }
        fixture.pool.stop()
        // The first roll ends with the pool: its replacement never got ready.
        #expect(await first.value != nil)
        #expect(await Self.refusal { () async throws(CommandError) in _ = try await fixture.pool.rollingRestart("stuck") } == .notRunning)
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a worker stuck in initialize is killed at its start timeout as a boot failure")
    func startTimeout() async throws {
        let fixture = Fixture("stuck")
        try fixture.pool.describeGroup(fixture.group("stuck-initialize", min: 1, restart: .never, startTimeout: .milliseconds(300)))
        let events = EventRecorder(fixture.pool)
        await #expect(throws: Never.self) { try await RunningPool(fixture.pool).finish().get() }
        let exit = try #require(events.exits.first)
        #expect(exit.reason == .bootFailure)
        #expect(exit.status == .signaled(SIGKILL))
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("worker log records reach the watcher with their level, message and metadata")
    func logForwarding() async throws {
        let fixture = Fixture("log")
        try fixture.pool.describeGroup(fixture.group("logger", min: 1, name: "loggers"))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        let found = await events.waitFor { recorder in
            recorder.all.contains {
                if case .workerLog(WorkerID(1), "loggers", let record) = $0 {
                    return record.message == "fixture log line" && record.level == "notice" && record.metadata["marker"] == "42"
                }
                return false
            }
        }
        #expect(found)
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("restartWorker replaces one worker; unknown ids are refused")
    func restartOneWorker() async throws {
        let fixture = Fixture("restartone")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2))
        try await fixture.withRunningPool { events in
            try await fixture.pool.restartWorker(WorkerID(2))
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            #expect(events.exits.map(\.id) == [WorkerID(2)])
            #expect(events.exits.map(\.reason) == [.restart])
            await #expect(throws: CommandError.self) { try await fixture.pool.restartWorker(WorkerID(9)) }
        }
    }

    @Test("a second pool with the same PID file refuses to start and names the holder")
    func pidFile() async throws {
        let first = Fixture("pid", pidFile: "/tmp/pooltop-tests/pidfile-\(getpid())")
        try first.pool.describeGroup(first.group("wait", min: 1))
        let running = RunningPool(first.pool)
        await first.pool.awaitStart()
        #expect(TestSupport.lines("/tmp/pooltop-tests", "pidfile-\(getpid())") == ["\(getpid())"])
        let second = Fixture("pid2", pidFile: "/tmp/pooltop-tests/pidfile-\(getpid())")
        try second.pool.describeGroup(second.group("wait", min: 1))
        let result = await RunningPool(second.pool).finish()
        guard case .failure(let error as PoolStartError) = result else {
            Issue.record("expected the second pool to refuse, got \(result)")
            first.pool.stop()
            return
        }
        #expect(error.code == .alreadyRunning)
        #expect(error.message.contains("locked by pid \(getpid())"))
        first.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        #expect(access("/tmp/pooltop-tests/pidfile-\(getpid())", F_OK) != 0, "the PID file is removed on exit")
        await TestSupport.expectNoOrphans(first.name)
    }

    @Test("groups are frozen once run() starts")
    func frozen() async throws {
        let fixture = Fixture("frozen")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        #expect(throws: CommandError.self) { try fixture.pool.describeGroup(fixture.group("wait")) }
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

import ServiceLifecycle
import Logging

@Suite("WorkerPool as a swift-service-lifecycle Service", .serialized)
struct WorkerPoolServiceTests {
    @Test("a graceful shutdown of the ServiceGroup stops the pool and its workers")
    func gracefulShutdown() async throws {
        let fixture = WorkerPoolTests.Fixture("service")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2))
        let events = EventRecorder(fixture.pool)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [fixture.pool], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        await fixture.pool.awaitStart()
        // Events reach the recorder's task a moment after awaitStart resumes.
        #expect(await events.waitFor { $0.readyPIDs.count == 2 })
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(events.exits.map(\.reason) == [.shutdown, .shutdown])
        #expect(fixture.lines("stopped").count == 2)
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

@Suite("Start order between groups with real processes", .serialized)
struct StartOrderProcessTests {
    @Test("a group after a one-shot migration starts once it exited 0; status shows the wait; the pool stops dependents first")
    func migrationThenService() async throws {
        let fixture = WorkerPoolTests.Fixture("order")
        try fixture.pool.describeGroup(fixture.group("hello", min: 1, name: "migrate", restart: .never))
        var api = fixture.group("wait", min: 2, name: "api")
        api.after = [GroupDependency("migrate", .completed)]
        try fixture.pool.describeGroup(api)
        try await fixture.withRunningPool { events in
            #expect(await events.waitFor { $0.readyPIDs.filter { $0.0 != WorkerID(1) }.count == 2 }, "api started after the migration")
            #expect(fixture.lines("hello").count == 1)
            let order = events.all.compactMap { event -> String? in
                switch event {
                case .workerExited(let exit) where exit.group == "migrate": return "migrate exited \(exit.reason.rawValue)"
                case .workerStarting(_, let group, _, _) where group == "api": return "api starting"
                case .groupWaiting(let group, let why): return "\(group) waits for \(why)"
                default: return nil
                }
            }
            #expect(order == ["api waits for migrate (completed)", "migrate exited clean-exit", "api starting", "api starting"], "\(order)")
            #expect(fixture.pool.snapshot()?.groups.map(\.waitingFor) == [nil, nil])
        }
    }

    @Test("a group after a migration that failed never starts, and the status says so")
    func failedMigration() async throws {
        let fixture = WorkerPoolTests.Fixture("orderfail")
        try fixture.pool.describeGroup(fixture.group("exit-code", min: 1, name: "migrate", restart: .never))
        var api = fixture.group("wait", min: 1, name: "api")
        api.after = [GroupDependency("migrate", .completed)]
        try fixture.pool.describeGroup(api)
        let events = EventRecorder(fixture.pool)
        let result = await RunningPool(fixture.pool).finish()
        guard case .failure(let error as PoolFailure) = result else {
            Issue.record("expected the pool to end with a failure, got \(result)")
            return
        }
        #expect(error.message.contains("'api' (waiting for migrate (completed)) never started"), "\(error.message)")
        #expect(events.all.contains { if case .groupWaiting("api", let why) = $0 { why.contains("did not complete") } else { false } })
        #expect(events.readyPIDs.allSatisfy { $0.0 == WorkerID(1) }, "no api worker ever ran")
    }
}

import Testing

@testable import PoolEngine

@Suite("Program workers (command:) in the watcher core, with a manual clock")
struct ProgramWorkerTests {
    func harness(_ readiness: Readiness, watchdog: Duration? = nil, restart: RestartStrategy = .always()) throws -> CoreHarness {
        var group = WorkerGroup(entryPoint: "", kind: .reactor, minWorkers: 1, maxWorkers: 2, name: "api", restart: restart)
        group.program = ExternalProgram(["python3", "app.py"], readiness: readiness, watchdog: watchdog)
        return try CoreHarness([group])
    }

    @discardableResult
    static func exec(_ harness: inout CoreHarness, _ id: Int, failure: String? = nil) -> [WatcherAction] {
        harness.send(.programDidExec(WorkerID(id), generation: harness.generation(id), failure: failure))
    }

    @Test("ready: started makes a worker ready when its exec succeeds, not before")
    func startedIsReadyAtExec() throws {
        var harness = try harness(.started)
        harness.send(.poolDidStart)
        #expect(harness.state(1) == .starting)
        let actions = Self.exec(&harness, 1)
        #expect(harness.state(1) == .ready)
        #expect(actions.contains { if case .emit(.workerReady) = $0 { return true } else { return false } })
    }

    @Test("ready: notify waits for READY=1; STATUS alone does not make it ready")
    func notifyWaitsForReady() throws {
        var harness = try harness(.notify)
        harness.send(.poolDidStart)
        Self.exec(&harness, 1)
        #expect(harness.state(1) == .starting)
        harness.send(.programDidNotify(WorkerID(1), generation: harness.generation(1), NotifyMessage(status: "loading")))
        #expect(harness.state(1) == .starting)
        harness.send(.programDidNotify(WorkerID(1), generation: harness.generation(1), NotifyMessage(isReady: true)))
        #expect(harness.state(1) == .ready)
    }

    @Test("an exec that fails is a spawn failure with its reason; the exit is a boot failure and the backoff applies")
    func execFailure() throws {
        var harness = try harness(.started)
        harness.send(.poolDidStart)
        let failed = Self.exec(&harness, 1, failure: "cannot execute app: Permission denied")
        #expect(failed.contains { if case .emit(.workerSpawnFailed(_, _, let error)) = $0 { return error.contains("Permission denied") } else { return false } })
        let exit = harness.exit(1, .exited(127))
        #expect(exit.exits.first?.reason == .bootFailure)
        #expect(exit.exits.first?.message == "cannot execute app: Permission denied")
        #expect(exit.backoffDelays.count == 1 && exit.spawned.isEmpty, "backs off before the next try")
    }

    @Test("a program reports nothing: exit 0 is a clean exit, a code is a crash, a signal is a signal; none says its channel was lost")
    func exitClassification() throws {
        for (status, reason) in [(TerminationStatus.exited(0), ExitReason.cleanExit), (.exited(2), .crash), (.signaled(11), .signal)] {
            var harness = try harness(.started)
            harness.send(.poolDidStart)
                Self.exec(&harness, 1)
            let exit = harness.exit(1, status)
            #expect(exit.exits.first?.reason == reason)
            #expect(exit.exits.first?.message?.contains("control channel") != true)
        }
    }

    @Test("a stop request goes to a program like to a Swift worker; the exit after it is classified by the request")
    func stopByRequest() throws {
        var harness = try harness(.started)
        harness.send(.poolDidStart)
        Self.exec(&harness, 1)
        let stop = harness.send(.stopRequested(reason: "test"))
        #expect(stop.stopRequests.map(\.0) == [1])
        let exit = harness.exit(1, .signaled(15))
        #expect(exit.exits.first?.reason == .shutdown)
        #expect(exit.finish != nil)
    }

    @Test("a ready program whose WATCHDOG=1 stopped is hung: backtrace, then killed (reason hang); each beat moves the deadline")
    func watchdog() throws {
        var harness = try harness(.started, watchdog: .seconds(2))
        harness.send(.poolDidStart)
        Self.exec(&harness, 1)
        #expect(harness.advance(.milliseconds(1500)).killed.isEmpty)
        harness.send(.programDidNotify(WorkerID(1), generation: harness.generation(1), NotifyMessage(isWatchdogBeat: true)))
        #expect(harness.advance(.milliseconds(1500)).killed.isEmpty, "the beat moved the deadline")
        let expired = harness.advance(.milliseconds(600))
        #expect(expired.contains { if case .captureBacktrace(WorkerID(1), _, _) = $0 { return true } else { return false } })
        #expect(harness.state(1) == .stopping, "out of service while its backtrace is taken")
        let killed = harness.send(.backtraceCaptured(WorkerID(1), generation: harness.generation(1), "#0 main"))
        #expect(killed.killed == [1])
        #expect(harness.core.slot(WorkerID(1))?.killedBecause?.contains("no WATCHDOG=1 within its watchdog, 2s") == true)
        #expect(harness.exit(1, .signaled(9)).exits.first?.reason == .hang)
    }

    @Test("STOPPING=1 takes a program out of service and bounds its exit by the stop timeout")
    func stoppingByItself() throws {
        var harness = try harness(.started)
        harness.send(.poolDidStart)
        Self.exec(&harness, 1)
        harness.send(.programDidNotify(WorkerID(1), generation: harness.generation(1), NotifyMessage(isStopping: true)))
        #expect(harness.state(1) == .stopping)
        #expect(harness.advance(.seconds(11)).killed == [1], "the pool's stop timeout is 10 s")
    }

    @Test("a probe's first success makes it ready; a failure once ready restarts it, with the reason")
    func probe() throws {
        var harness = try harness(.probe(ReadinessProbe(.tcp(host: "127.0.0.1", port: 8000))))
        harness.send(.poolDidStart)
        Self.exec(&harness, 1)
        #expect(harness.state(1) == .starting, "the exec alone does not make a probed worker ready")
        harness.send(.probeDidSucceed(WorkerID(1), generation: harness.generation(1)))
        #expect(harness.state(1) == .ready)
        let failed = harness.send(.probeDidFail(WorkerID(1), generation: harness.generation(1), why: "3 times in a row"))
        #expect(failed.stopRequests.map(\.1) == [.restart])
        #expect(harness.core.slot(WorkerID(1))?.stopMessage == "its readiness probe failed: 3 times in a row")
        let exit = harness.exit(1, .exited(0))
        #expect(exit.spawned == [1], "replaced at once")
    }
}

@Suite("Program worker inputs: env files, sd_notify messages, output lines, program keys")
struct ProgramInputTests {
    @Test("an env file takes comments, export, quotes and escapes; a bad line names the file and line")
    func environmentFile() throws {
        let entries = try EnvironmentFile.parse(
            "# comment\n\nA=1\nexport B = two words # note\nC='single # kept'\nD=\"line\\nnext \\\"q\\\"\"\r\nA=3\n", file: ".env")
        #expect(entries.map(\.key) == ["A", "B", "C", "D", "A"])
        #expect(entries.map(\.value) == ["1", "two words", "single # kept", "line\nnext \"q\"", "3"])
        #expect(throws: EnvironmentFile.ParseError.self) { try EnvironmentFile.parse("A=1\nnot a line\n", file: ".env") }
        do {
            _ = try EnvironmentFile.parse("A=1\n1X=2\n", file: "app.env")
        } catch {
            #expect("\(error)" == "app.env:2: '1X' is not a variable name (letters, digits and '_')")
        }
        #expect(throws: EnvironmentFile.ParseError.self) { try EnvironmentFile.parse("A=\"open\n", file: ".env") }
    }

    @Test("sd_notify datagrams: READY, STATUS, STOPPING, WATCHDOG=1 and trigger; unknown keys ignored")
    func notifyMessages() {
        let message = NotifyMessage(parsing: Array("READY=1\nSTATUS=serving 4 clients\nMAINPID=7\nbogus".utf8))
        #expect(message.isReady && message.status == "serving 4 clients" && !message.isStopping && !message.isWatchdogBeat)
        #expect(NotifyMessage(parsing: Array("STOPPING=1".utf8)).isStopping)
        #expect(NotifyMessage(parsing: Array("WATCHDOG=1".utf8)).isWatchdogBeat)
        #expect(NotifyMessage(parsing: Array("WATCHDOG=trigger".utf8)).triggersWatchdog)
        #expect(!NotifyMessage(parsing: Array("READY=0".utf8)).isReady)
    }

    @Test("output is split into lines: CRLF, a line split across reads, an endless line cut, the tail at the end")
    func outputLines() {
        var lines = OutputLines()
        #expect(lines.append(Array("one\r\ntw".utf8)) == ["one"])
        #expect(lines.append(Array("o\nthr".utf8)) == ["two"])
        #expect(lines.finish() == ["thr"])
        let long = lines.append([UInt8](repeating: UInt8(ascii: "x"), count: OutputLines.maximumLength + 5))
        #expect(long.count == 1 && long[0].utf8.count == OutputLines.maximumLength)
        #expect(lines.finish() == ["xxxxx"])
    }

    @Test("program keys parse: paths relative to the file, env merged, readiness, signal, watchdog; the group is named after the program")
    func programKeys() throws {
        let yaml = """
            groups:
              - kind: reactor
                command: ["./bin/api", "--port", "8000"]
                env: {MODE: production}
                envFile: .env.missing-is-checked-below
                ready: {http: "http://127.0.0.1:8000/health", interval: 250ms, failureThreshold: 2}
                stopSignal: int
                watchdog: 5s
                listen: ["127.0.0.1:8000"]
            """
        // The env file must exist: a missing one is an error naming the key.
        #expect(throws: ConfigurationError.self) { try PoolConfiguration.parse(yaml: yaml, file: "/srv/app/pool.yaml", entryPoints: nil) }
        let (configuration, description) = try PoolConfiguration.parse(
            yaml: yaml.replacingOccurrences(of: "envFile: .env.missing-is-checked-below\n", with: "workingDirectory: /tmp\n"),
            file: "/srv/app/pool.yaml", entryPoints: nil)
        let program = try #require(description.groups[0].program)
        #expect(description.groups[0].name == "api" && description.groups[0].entryPoint.isEmpty)
        #expect(program.arguments == ["./bin/api", "--port", "8000"])
        #expect(program.workingDirectory == "/tmp")
        #expect(program.stopSignal == 2)
        #expect(program.watchdog == .seconds(5))
        #expect(program.readiness == .probe(ReadinessProbe(.http(host: "127.0.0.1", port: 8000, path: "/health"), interval: .milliseconds(250), failureThreshold: 2)))
        #expect(configuration.groups[0].runner.environment == ["MODE": "production"])
        let relative = try PoolConfiguration.parse(
            yaml: "groups:\n  - {kind: service, command: [sleep, '9'], workingDirectory: ./}\n", file: "/tmp/pool.yaml", entryPoints: nil)
        #expect(relative.description.groups[0].program?.workingDirectory == "/tmp")
    }
}

import Glibc
import Testing

@testable import PoolEngine

/// Every operator command end to end against a real `pooltop run`, including bad arguments.
@Suite("pooltop list, status, scale, restart, stop, logs", .serialized)
struct CLITests {
    /// A `pooltop run` of the test pool (two groups, three workers), once its workers are ready.
    static func runningWatcher(_ tag: String) async throws -> (name: String, directory: String, watcher: ExternalWatcher) {
        let name = TestSupport.uniqueName(tag)
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", config], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 3))
        return (name, directory, watcher)
    }

    @Test("the operator commands drive a running pool and exit 0, 1 or 2 as documented")
    func operatorCommands() async throws {
        let (name, directory, watcher) = try await Self.runningWatcher("cli")
        func run(_ arguments: String...) throws -> CommandOutput { try TestSupport.pooltop(arguments, directory: directory) }

        let list = try run("list")
        #expect(list.status == .exited(0))
        #expect(list.stdout.contains(name) && list.stdout.contains("\(watcher.pid)"), "\(list)")

        let status = try run("status", name)
        #expect(status.status == .exited(0))
        #expect(status.stdout.contains("pool \(name)") && status.stdout.contains("jobs") && status.stdout.contains("ready"), "\(status)")

        let json = try run("status", name, "--json")
        #expect(json.status == .exited(0))
        let document = try JSONValue.parse(json.stdout)
        #expect(document["pool"]?["name"]?.string == name)
        #expect(document["pool"]?["pid"]?.integer == Int(watcher.pid))
        #expect(document["groups"]?.array?.map { $0["name"]?.string ?? "" } == ["jobs", "ticker"])

        let scaled = try run("scale", name, "jobs", "3")
        #expect(scaled.status == .exited(0), "\(scaled)")
        #expect(await watcher.waitForLog("ready", count: 4))
        let outOfRange = try run("scale", name, "jobs", "9")
        #expect(outOfRange.status == .exited(1))
        #expect(outOfRange.stderr.contains("allowed range is 2...4"), "\(outOfRange)")
        let usage = try run("scale", name, "jobs")
        #expect(usage.status == .exited(2), "\(usage)")
        let notANumber = try run("scale", name, "jobs", "many")
        #expect(notANumber.status == .exited(2), "\(notANumber)")

        let restartWorker = try run("restart", name, "1", "--hard")
        #expect(restartWorker.status == .exited(0), "\(restartWorker)")
        #expect(await watcher.waitForLog("ready", count: 5))
        let restartGroup = try run("restart", name, "ticker")
        #expect(restartGroup.status == .exited(0))
        #expect(await watcher.waitForLog("ready", count: 6))
        let restartPool = try run("restart", name, "--soft")
        #expect(restartPool.status == .exited(0))
        #expect(await watcher.waitForLog("soft restart of the pool"))
        let badTarget = try run("restart", name, "nope")
        #expect(badTarget.status == .exited(1))
        #expect(badTarget.stderr.contains("no group 'nope'"), "\(badTarget)")

        let jobs = try run("job", name, "jobs", "echo via cli", "--count", "3", "--json")
        #expect(jobs.status == .exited(0), "\(jobs)")
        let answers = try JSONValue.parse(jobs.stdout).array ?? []
        #expect(answers.count == 3 && answers.allSatisfy { $0["result"]?.string == "via cli" && $0["worker"]?.integer != nil })
        let failing = try run("job", name, "jobs", "fail on purpose")
        #expect(failing.status == .exited(1))
        #expect(failing.stdout.contains("handler-failed: on purpose"), "\(failing)")
        let badJob = try run("job", name, "jobs", "echo", "--count", "0")
        #expect(badJob.status == .exited(2))

        let logs = try run("logs", name)
        #expect(logs.status == .exited(0))
        #expect(logs.stdout.contains("tick 1"), "\(logs.stdout)")
        #expect(logs.stdout.contains("exited (restart"), "\(logs.stdout)")

        let unknown = try run("status", "no-such-pool")
        #expect(unknown.status == .exited(1))
        #expect(unknown.stderr.contains("running pools:") && unknown.stderr.contains(name), "\(unknown)")

        let stopWorker = try run("stop", name, "--worker", "2")
        #expect(stopWorker.status == .exited(0))
        #expect(await watcher.waitForLog("reason=stopped"))

        let stop = try run("stop", name)
        #expect(stop.status == .exited(0))
        #expect(watcher.waitForExit() == .exited(0))
        #expect(!Posix.isDirectory(path: RuntimeDirectory.path(pool: name)))
        let gone = try run("status", name)
        #expect(gone.status == .exited(1))
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a watcher stopped by SIGSTOP: a command gives up after POOLTOP_CONTROL_TIMEOUT, exit 1 naming the pool")
    func stoppedWatcher() async throws {
        let (name, directory, watcher) = try await Self.runningWatcher("clistopped")
        // The kernel still accepts its connections; nobody answers them.
        watcher.signal(SIGSTOP)
        let status = try TestSupport.shell(
            "POOLTOP_CONTROL_TIMEOUT=0.5 '\(TestSupport.pooltopExecutable)' status '\(name)'", directory: directory)
        watcher.signal(SIGCONT)
        #expect(status.status == .exited(1), "\(status)")
        #expect(status.stderr.contains("pool '\(name)' did not answer within 500ms"), "\(status)")
        // Running again, it answers as before.
        let again = try TestSupport.pooltop(["status", name], directory: directory)
        #expect(again.status == .exited(0), "\(again)")
        let stop = try TestSupport.pooltop(["stop", name], directory: directory)
        #expect(stop.status == .exited(0))
        #expect(watcher.waitForExit() == .exited(0))
        await TestSupport.expectNoOrphans(name)
    }

    @Test("logs filters by worker, group, text and age; bad filters are usage errors")
    func logsFilters() async throws {
        let (name, directory, watcher) = try await Self.runningWatcher("logfilter")
        #expect(await watcher.waitForLog("tick 2"), "\(watcher.log)")
        func logs(_ arguments: String...) throws -> CommandOutput { try TestSupport.pooltop(["logs", name] + arguments, directory: directory) }
        let ticker = try logs("--group", "ticker")
        #expect(ticker.status == .exited(0) && ticker.stdout.contains("tick 1"), "\(ticker)")
        #expect(!ticker.stdout.contains("(jobs)"), "only the ticker group: \(ticker.stdout)")
        let worker = try logs("--worker", "1")
        #expect(worker.stdout.contains("worker 1 (jobs)") && !worker.stdout.contains("worker 2 ") && !worker.stdout.contains("tick"), "\(worker.stdout)")
        let grep = try logs("--grep", "tick [12]$")
        let lines = grep.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasSuffix("tick 1") || $0.hasSuffix("tick 2") }, "\(grep.stdout)")
        let none = try logs("--since", "1ms", "--grep", "tick 1$")
        #expect(none.status == .exited(0) && none.stdout.isEmpty, "tick 1 is older than 1 ms: \(none.stdout)")
        let recent = try logs("--since", "1h", "--grep", "tick 1$")
        #expect(recent.stdout.contains("tick 1"), "\(recent.stdout)")
        let badRegex = try logs("--grep", "tick (")
        #expect(badRegex.status == .exited(2) && badRegex.stderr.contains("is not a regular expression"), "\(badRegex)")
        let badSince = try logs("--since", "soon")
        #expect(badSince.status == .exited(2) && badSince.stderr.contains("is not a duration"), "\(badSince)")
        await watcher.stopExpectingCleanExit()
    }

    @Test("logs -f follows new lines until the pool stops")
    func logsFollow() async throws {
        let (name, directory, watcher) = try await Self.runningWatcher("follow")
        // Follow in the background; stop the pool after a couple of ticks.
        let followOut = "\(directory)/follow.out"
        let follower = try Posix.spawn(
            path: "/bin/sh", arguments: ["-c", "exec '\(TestSupport.pooltopExecutable)' logs '\(name)' -f >'\(followOut)' 2>&1"],
            environment: Posix.environment(), inherited: [])
        let pidfd = try Posix.pidfdOpen(follower)
        defer { Posix.close(pidfd) }
        #expect(await TestSupport.eventually { TestSupport.lines(directory, "follow.out").contains { $0.contains("tick 3") } })
        watcher.signal(SIGTERM)
        #expect(watcher.waitForExit() == .exited(0))
        #expect((try? Posix.pollReadable(pidfd, timeoutMilliseconds: 10_000)) == true, "logs -f ends when the pool stops")
        #expect(try Posix.reap(pidfd: pidfd) == .exited(0))
        #expect(TestSupport.lines(directory, "follow.out").contains { $0.contains("pool stopping: ") })
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a SIGKILLed watcher's directory, socket and segment are replaced when the pool starts again")
    func staleRecovery() async throws {
        let name = TestSupport.uniqueName("stale")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let first = try ExternalWatcher(arguments: ["run", "--config", config], tag: name, directory: directory)
        #expect(await first.waitForLog("ready", count: 3))
        first.signal(SIGKILL)
        #expect(first.waitForExit() == .signaled(SIGKILL))
        let segment = SharedLayout.segmentName(pool: name, uid: Posix.userID)
        #expect((try? Posix.sharedMemoryOwnerAndMode(name: segment)) != nil, "the killed watcher left its segment")
        #expect(Posix.isDirectory(path: RuntimeDirectory.path(pool: name)))
        await TestSupport.expectNoOrphans(name, leavesRuntime: true)

        let secondDirectory = "\(directory)/second"
        try Posix.makeDirectory(secondDirectory, mode: 0o755)
        let second = try ExternalWatcher(arguments: ["run", "--config", config], tag: name, directory: secondDirectory)
        #expect(await second.waitForLog("ready", count: 3))
        let status = try TestSupport.pooltop(["status", name, "--json"], directory: directory)
        #expect(try JSONValue.parse(status.stdout)["pool"]?["pid"]?.integer == Int(second.pid), "\(status)")
        second.signal(SIGTERM)
        #expect(second.waitForExit() == .exited(0))
        #expect((try? Posix.sharedMemoryOwnerAndMode(name: segment)) == nil, "the segment is removed at exit")
        #expect(!Posix.isDirectory(path: RuntimeDirectory.path(pool: name)))
        await TestSupport.expectNoOrphans(name)
    }
}

/// `PoolTopCLI`: a binary of one's own (the test fixtures' binary, with entry points pooltop
/// does not have) gets every command, with its own name.
@Suite("PoolTopCLI in a binary of one's own", .serialized)
struct OwnBinaryTests {
    @Test("its entry points run under its own run, and its status, scale and stop drive them; pooltop cannot host them")
    func ownBinary() async throws {
        let name = TestSupport.uniqueName("ownbin")
        let directory = TestSupport.makeDirectory(name)
        let config = "\(directory)/pool.yaml"
        TestSupport.write(config, """
            name: \(name)
            stopTimeout: 5s
            groups:
              - name: waiters
                kind: service
                entryPoint: wait
                min: 2
                max: 3
                environment: {POOLTOP_TEST_DIR: '\(directory)', PT_TEST_TAG: '\(name)'}
            """)
        let binary = TestSupport.fixtureExecutable
        func run(_ arguments: String...) throws -> CommandOutput {
            try TestSupport.shell("'\(binary)' " + arguments.map { "'\($0)'" }.joined(separator: " "), directory: directory)
        }

        // pooltop has no entry point 'wait': the pool is the binary's own.
        let refused = try TestSupport.pooltop(["run", "--config", config, "--check"], directory: directory)
        #expect(refused.status == .exited(2))
        #expect(refused.stderr.contains("unknown entry point 'wait'"), "\(refused.stderr)")
        let help = try run("--help")
        #expect(help.stdout.contains("USAGE: pool-fixtures"), "\(help.stdout)")
        let noConfig = try run("run")
        #expect(noConfig.status == .exited(2))
        #expect(noConfig.stderr.contains("pool-fixtures: configuration error") && noConfig.stderr.contains("pass --config FILE"), "\(noConfig.stderr)")

        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory, executable: binary)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        let status = try run("status", name, "--json")
        #expect(status.status == .exited(0), "\(status)")
        let document = try JSONValue.parse(status.stdout)
        #expect(document["groups"]?.array?.first?["ready"]?.integer == 2)
        let scaled = try run("scale", name, "waiters", "3")
        #expect(scaled.status == .exited(0), "\(scaled)")
        #expect(await watcher.waitForLog("ready", count: 3))
        let outOfRange = try run("scale", name, "waiters", "9")
        #expect(outOfRange.status == .exited(1))
        #expect(outOfRange.stderr.contains("pool-fixtures: pool '\(name)' refused"), "\(outOfRange.stderr)")
        let stop = try run("stop", name)
        #expect(stop.status == .exited(0), "\(stop)")
        #expect(watcher.waitForExit() == .exited(0), "\(watcher.log)")
        await TestSupport.expectNoOrphans(name)
    }
}

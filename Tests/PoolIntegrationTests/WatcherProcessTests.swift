import Glibc
import Testing

@testable import PoolEngine

/// The watcher as a real process (`pooltop run`): signals, its death, configuration errors.
@Suite("pooltop run as a separate watcher process", .serialized)
struct WatcherProcessTests {
    /// A small pool of the demo entry points, written to a file.
    func poolFile(_ directory: String, name: String, jobs: Int = 2, extra: String = "") -> String {
        let path = "\(directory)/pool.yaml"
        TestSupport.write(path, """
            name: \(name)
            stopTimeout: 5s
            groups:
              - name: jobs
                kind: job
                entryPoint: demo-job
                min: \(jobs)
                max: 4
              - name: ticker
                kind: service
                entryPoint: ticker
                min: 1
            \(extra)
            """)
        return path
    }

    @Test("SIGKILL of the watcher: every worker exits on its own within a second or so")
    func watcherKilled() async throws {
        let name = TestSupport.uniqueName("orphans")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", poolFile(directory, name: name)], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 3))
        let workers = TestSupport.taggedWorkers(name).filter { $0 != watcher.pid }
        #expect(workers.count == 3)
        watcher.signal(SIGKILL)
        #expect(watcher.waitForExit() == .signaled(SIGKILL))
        // The failsafe is generous; the benchmark measures how fast they go.
        #expect(await TestSupport.eventually(timeout: .seconds(10)) { workers.allSatisfy { !TestSupport.isAlive($0) } })
        await TestSupport.expectNoOrphans(name, leavesRuntime: true)
        // The killed watcher could not clean up: leave nothing behind for the next test run.
        RuntimeDirectory.removeStale(pool: name)
    }

    /// The names of a process's threads, from /proc.
    func threadNames(_ pid: pid_t) -> [String] {
        let directory = "/proc/\(pid)/task"
        return ((try? Posix.listDirectory(directory)) ?? []).compactMap { task in  // try?: a gone process has none
            TestSupport.lines(directory, "\(task)/comm").first
        }
    }

    @Test("the watcher's tasks run on its own pool-task threads: no libdispatch thread, unless turned off")
    func taskThreads() async throws {
        for turnedOff in [false, true] {
            let name = TestSupport.uniqueName(turnedOff ? "dispatch" : "taskthreads")
            let directory = TestSupport.makeDirectory(name)
            let watcher = try ExternalWatcher(
                arguments: ["run", "--config", poolFile(directory, name: name)], tag: name, directory: directory,
                prefix: turnedOff ? ["env", "\(TaskThreads.environmentVariable)=off"] : [])
            #expect(await watcher.waitForLog("ready", count: 3))
            let names = threadNames(watcher.pid)
            // libdispatch names its threads after its queues: com.apple.root.…-qos[.overcommit],
            // cut to 15 bytes.
            let dispatch = names.filter { $0.contains("qos") }
            let own = names.filter { $0.hasPrefix("pool-task-") }
            if turnedOff {
                #expect(!dispatch.isEmpty && own.isEmpty, "\(names)")
            } else {
                #expect(dispatch.isEmpty && own.count >= 2, "\(names)")
            }
            await watcher.stopExpectingCleanExit()
        }
    }

    @Test("SIGTERM during startup stops the pool cleanly, exit status 0, nothing left behind")
    func sigtermDuringStartup() async throws {
        let name = TestSupport.uniqueName("early")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", poolFile(directory, name: name, jobs: 4)], tag: name, directory: directory)
        #expect(await watcher.waitForLog("pool \(name) starting"))
        watcher.signal(SIGTERM)
        #expect(watcher.waitForExit() == .exited(0), "log:\n\(watcher.log)")
        #expect(watcher.log.contains("pool stopping: received SIGTERM"))
        await TestSupport.expectNoOrphans(name)
    }

    @Test("Ctrl-C in the terminal reaches only the watcher, which stops every worker gracefully")
    func ctrlCReachesOnlyTheWatcher() async throws {
        let name = TestSupport.uniqueName("ctrlc")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", poolFile(directory, name: name)], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 3))
        // A terminal sends SIGINT to the whole foreground process group.
        kill(-watcher.pid, SIGINT)
        #expect(watcher.waitForExit() == .exited(0))
        let log = watcher.log
        #expect(log.contains("received SIGINT"))
        #expect(log.components(separatedBy: "reason=shutdown status=exit code 0").count - 1 == 3, "log:\n\(log)")
        await TestSupport.expectNoOrphans(name)
    }

    @Test("SIGUSR1 restarts hard, SIGUSR2 soft, and signals still work afterwards")
    func restartSignals() async throws {
        let name = TestSupport.uniqueName("signals")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", poolFile(directory, name: name)], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 3))
        watcher.signal(SIGUSR1)
        #expect(await watcher.waitForLog("hard restart of the pool"))
        #expect(await watcher.waitForLog("ready", count: 6))
        watcher.signal(SIGUSR2)
        #expect(await watcher.waitForLog("soft restart of the pool"))
        #expect(await watcher.waitForLog("ready", count: 9))
        watcher.signal(SIGUSR2)
        #expect(await watcher.waitForLog("ready", count: 12))
        watcher.signal(SIGTERM)
        #expect(watcher.waitForExit() == .exited(0), "log:\n\(watcher.log)")
        #expect(watcher.log.components(separatedBy: "reason=restart").count - 1 == 9)
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a bad configuration exits 2 with one error naming the file, line and key; nothing starts")
    func configurationError() async throws {
        let name = TestSupport.uniqueName("badconfig")
        let directory = TestSupport.makeDirectory(name)
        let path = "\(directory)/pool.yaml"
        TestSupport.write(path, "name: \(name)\ngroups:\n  - name: jobs\n    kind: job\n    entryPoint: nope\n")
        let watcher = try ExternalWatcher(arguments: ["run", "--config", path], tag: name, directory: directory)
        #expect(watcher.waitForExit() == .exited(2))
        #expect(watcher.log.contains("\(path):5: groups[0].entryPoint: unknown entry point 'nope'"), "log:\n\(watcher.log)")
        #expect(!watcher.log.contains("starting"))
    }

    @Test("a missing configuration file exits 2 and says which file")
    func missingFile() async throws {
        let name = TestSupport.uniqueName("nofile")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/absent.yaml"], tag: name, directory: directory)
        #expect(watcher.waitForExit() == .exited(2))
        #expect(watcher.log.contains("configuration error: cannot read \(directory)/absent.yaml: open(\(directory)/absent.yaml) failed: No such file or directory"), "log:\n\(watcher.log)")
    }
}

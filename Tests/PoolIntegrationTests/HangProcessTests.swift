import Glibc
import Testing

@testable import PoolEngine

/// The hang watchdog with real processes: a worker whose event loop is blocked, and one stopped
/// with SIGSTOP, are found hung, their threads' backtraces captured, killed and replaced.
@Suite("Hang watchdog with real processes", .serialized)
struct HangProcessTests {
    func runningPool(_ tag: String) async throws -> (name: String, directory: String, watcher: ExternalWatcher) {
        let name = TestSupport.uniqueName(tag)
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            stopTimeout: 5s
            groups:
              - {name: jobs, kind: job, entryPoint: demo-job, min: 2, hangTimeout: 1s}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        return (name, directory, watcher)
    }

    @Test("a freeze longer than hangTimeout is a hang: a backtrace naming the freezing function, reason hang, and a replacement")
    func freeze() async throws {
        guard (try? TestSupport.shell("command -v eu-stack || command -v gdb", directory: "/tmp"))?.status == .exited(0) else {
            Issue.record("neither eu-stack nor gdb is installed: scripts/ensure-deps test installs elfutils")
            return
        }
        let (name, directory, watcher) = try await runningPool("freeze")
        let job = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' job '\(name)' jobs 'freeze 6000'", directory: directory)
        #expect(job.status == .exited(1) && job.stdout.contains("worker-lost"), "the job's worker was killed under it: \(job)")
        #expect(await watcher.waitForLog("reason=hang"), "\(watcher.log)")
        let log = watcher.log
        #expect(log.contains("is hung: its heartbeat stood still for"), "\(log)")
        #expect(log.contains("DemoJobs.freezeEventLoop(milliseconds: Swift.Int)"), "the backtrace names the freezing function: \(log)")
        #expect(await watcher.waitForLog("ready", count: 3), "a replacement: \(watcher.log)")
        let logs = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' logs '\(name)'", directory: directory)
        #expect(logs.stdout.contains("capturing its backtrace, then killing it"), "\(logs.stdout)")
        #expect(logs.stdout.contains("backtrace:\n") && logs.stdout.contains("freezeEventLoop"), "pooltop logs shows the frames: \(logs.stdout)")
        #expect(logs.stdout.contains("exited (hang, signal 9)"), "\(logs.stdout)")
        let status = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' status '\(name)' --json", directory: directory)
        let workers = try JSONValue.parse(status.stdout)["workers"]?.array ?? []
        #expect(workers.contains { $0["exits"]?["hang"]?.integer == 1 }, "status counts the hang: \(status.stdout)")
        await watcher.stopExpectingCleanExit()
    }

    @Test("a worker stopped with SIGSTOP is found hung and replaced")
    func stopped() async throws {
        let (name, _, watcher) = try await runningPool("sigstop")
        let workers = TestSupport.taggedProcesses(name).filter { $0 != watcher.pid }
        let victim = try #require(workers.first)
        kill(victim, SIGSTOP)
        #expect(await watcher.waitForLog("pid \(victim) is hung"), "\(watcher.log)")
        #expect(await watcher.waitForLog("reason=hang"), "\(watcher.log)")
        #expect(await watcher.waitForLog("ready", count: 3), "a replacement: \(watcher.log)")
        #expect(await TestSupport.eventually { !TestSupport.isAlive(victim) })
        await watcher.stopExpectingCleanExit()
    }
}

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
        // The post-mortem outlives the pool, backtrace and all.
        let why = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' why '\(name)'", directory: directory)
        #expect(why.status == .exited(0), "\(why)")
        #expect(why.stdout.contains(": hang, signal 9") && why.stdout.contains("freezeEventLoop"), "\(why.stdout)")
        #expect(why.stdout.contains("a 'freeze' job blocks the job-server thread"), "its last log lines: \(why.stdout)")
    }

    @Test("why shows the job a SIGKILLed worker was running, and outlives the pool")
    func whyAfterKill() async throws {
        let (name, directory, watcher) = try await runningPool("why")
        let pooltop = TestSupport.pooltopExecutable
        // A job that runs long enough to be caught running.
        let job = Task {
            try await TestSupport.shellOffPool("'\(pooltop)' job '\(name)' jobs 'sleep 8000' --priority 3 --weight 2", directory: directory)
        }
        var running: (worker: Int, pid: Int32, job: Int)?
        for _ in 0..<100 where running == nil {
            let status = try await TestSupport.shellOffPool("'\(pooltop)' status '\(name)' --json", directory: directory)
            let workers = (try? JSONValue.parse(status.stdout))?["workers"]?.array ?? []
            if let busy = workers.first(where: { $0["currentJob"]?["id"]?.integer != nil }) {
                running = (busy["id"]?.integer ?? 0, Int32(busy["pid"]?.integer ?? 0), busy["currentJob"]?["id"]?.integer ?? 0)
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let victim = try #require(running, "a worker shows the job running")
        kill(victim.pid, SIGKILL)
        #expect(await watcher.waitForLog("reason=signal"), "\(watcher.log)")
        _ = try await job.value
        await watcher.stopExpectingCleanExit()
        // Newest first: the replacement's shutdown at the stop, then the kill.
        let why = try await TestSupport.shellOffPool("'\(pooltop)' why '\(name)' \(victim.worker) --last 2 --json", directory: directory)
        #expect(why.status == .exited(0), "\(why)")
        let records = try why.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(records.map { $0["reason"]?.string ?? "" } == ["shutdown", "signal"], "\(why.stdout)")
        let killed = try #require(records.last)
        #expect(killed["pid"]?.integer == Int(victim.pid) && killed["worker"]?.integer == victim.worker, "\(why.stdout)")
        #expect(killed["status"]?.string == "signaled" && killed["signal"]?.integer == 9, "\(why.stdout)")
        #expect(killed["job"]?["id"]?.integer == victim.job, "the job it was running: \(why.stdout)")
        #expect(killed["job"]?["priority"]?.integer == 3 && killed["job"]?["weight"]?.integer == 2, "\(why.stdout)")
        #expect(killed["job"]?["payloadHead"]?.string == "sleep 8000" && killed["job"]?["payloadBytes"]?.integer == 10, "\(why.stdout)")
        #expect(killed["job"]?["sender"] == nil, "an operator's job has no sender in the pool: \(why.stdout)")
        let text = try await TestSupport.shellOffPool("'\(pooltop)' why '\(name)' \(victim.worker) --last 2", directory: directory)
        #expect(text.stdout.contains(": signal, signal 9") && text.stdout.contains("running job \(victim.job) for"), "\(text.stdout)")
        #expect(text.stdout.contains("(from outside the pool, priority 3, weight 2): \"sleep 8000\""), "\(text.stdout)")
        let none = try await TestSupport.shellOffPool("'\(pooltop)' why no-such-pool-here", directory: directory)
        #expect(none.status == .exited(1) && none.stderr.contains("no death of pool 'no-such-pool-here' is on record"), "\(none)")
    }

    @Test("a worker stopped with SIGSTOP is found hung and replaced")
    func stopped() async throws {
        let (name, _, watcher) = try await runningPool("sigstop")
        let workers = TestSupport.taggedWorkers(name).filter { $0 != watcher.pid }
        let victim = try #require(workers.first)
        kill(victim, SIGSTOP)
        #expect(await watcher.waitForLog("pid \(victim) is hung"), "\(watcher.log)")
        #expect(await watcher.waitForLog("reason=hang"), "\(watcher.log)")
        #expect(await watcher.waitForLog("ready", count: 3), "a replacement: \(watcher.log)")
        #expect(await TestSupport.eventually { !TestSupport.isAlive(victim) })
        await watcher.stopExpectingCleanExit()
    }
}

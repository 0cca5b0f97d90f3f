import Foundation
import Glibc
import Testing

@testable import PoolEngine

/// Workers that read nothing (stopped with SIGSTOP, as a wedged process would be) delay no
/// one else: the watcher never waits on a worker's control channel.
@Suite("Wedged workers", .serialized)
struct WedgedWorkerTests {
    @Test("a pool stop with two workers stopped by SIGSTOP: the healthy one leaves first and cleanly, the wedged ones are killed at the stop timeout")
    func wedgedWorkersDelayNobody() async throws {
        let fixture = WorkerPoolTests.Fixture("wedged", stopTimeout: .seconds(2))
        try fixture.pool.describeGroup(fixture.group("wait", min: 3, name: "waiters"))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        #expect(await events.waitFor { $0.readyPIDs.count == 3 })
        let pids = events.readyPIDs.map(\.1)
        for pid in pids.prefix(2) { #expect(kill(pid, SIGSTOP) == 0) }
        // A group stop completes once every thread of the process has seen it; on a loaded
        // machine that can be after the pool's stop request was already read.
        for pid in pids.prefix(2) {
            #expect(await TestSupport.eventually { Self.isStopped(pid) }, "worker \(pid) did not stop on SIGSTOP")
        }

        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        let order = events.all.compactMap { event -> String? in
            switch event {
            case .workerExited(let exit): return "exit \(exit.pid) \(exit.reason.rawValue)"
            case .workerKilled(_, _, let pid, _): return "kill \(pid)"
            default: return nil
            }
        }
        #expect(order.first == "exit \(pids[2]) shutdown", "the healthy worker left first, on its own: \(order)")
        for pid in pids.prefix(2) {
            #expect(order.contains("kill \(pid)"), "wedged worker \(pid) was killed: \(order)")
        }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    /// Whether /proc says every thread of `pid` is stopped (`T`).
    static func isStopped(_ pid: Int32) -> Bool {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !tasks.isEmpty else { return false }
        return tasks.allSatisfy { task in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return stat[stat.index(close, offsetBy: 2)] == "T"
        }
    }
}

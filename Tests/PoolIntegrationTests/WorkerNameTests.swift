import Glibc
import Testing

@testable import PoolEngine

/// What `ps`, `top` and `pgrep` call a worker: its group and slot, on the process, not on
/// whichever thread happened to read its bootstrap.
@Suite("Worker process names")
struct WorkerNameTests {
    @Test("a worker process is named GROUP#ID (its main thread's comm), and none of its other threads takes that name")
    func processName() async throws {
        let fixture = WorkerPoolTests.Fixture("procname")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2, name: "waiters"))
        try await fixture.withRunningPool { _ in
            let workers = try #require(fixture.pool.snapshot()?.workers.filter { $0.state == .ready })
            #expect(workers.count == 2)
            for worker in workers {
                let comm = TestSupport.lines("/proc/\(worker.pid)", "comm").first
                #expect(comm == "waiters#\(worker.id)", "pid \(worker.pid): \(comm ?? "?")")
                let task = "/proc/\(worker.pid)/task"
                let others = ((try? Posix.listDirectory(task)) ?? []).filter { $0 != "\(worker.pid)" }.compactMap { tid in
                    TestSupport.lines(task, "\(tid)/comm").first
                }
                #expect(!others.contains("waiters#\(worker.id)"), "threads of \(worker.pid): \(others)")
            }
        }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

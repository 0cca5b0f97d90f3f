import Glibc
import Testing

@testable import PoolEngine

/// A pool's runtime directory goes with the pool, whatever its workers published there
/// (`metrics/*.prom`, a queue group's `queue-*.json`, job sockets), and what a killed watcher's
/// workers left is not shown as the next pool's.
@Suite("Runtime leftovers: what workers publish goes with the pool")
struct RuntimeLeftoversTests {
    @Test("files a killed pool's workers left are removed when the name is claimed again; what workers publish during the run goes at the stop, with the directory")
    func leftovers() async throws {
        let fixture = WorkerPoolTests.Fixture("leftovers")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "waiters"))
        let directory = RuntimeDirectory.path(pool: fixture.name)
        // As a SIGKILLed watcher leaves it: its lock free, its workers' files still there.
        if !Posix.isDirectory(path: RuntimeDirectory.base) { try Posix.makeDirectory(RuntimeDirectory.base, mode: 0o700) }
        try Posix.makeDirectory(directory, mode: 0o700)
        let stale = ["metrics/queue.prom", "metrics/queue.prom.4242.tmp", "queue-orders.json", "queue-orders.json.4242.tmp", "worker-7.sock"]
        try PoolFiles.writePrivate(Array("stale 1\n".utf8), pool: fixture.name, folder: "metrics", name: "queue.prom")
        for name in stale.dropFirst() { try Posix.writeFileAtomically("\(directory)/\(name)", Array("stale".utf8), mode: 0o600) }
        #expect(stale.allSatisfy { access("\(directory)/\($0)", F_OK) == 0 })

        try await fixture.withRunningPool { _ in
            let left = stale.filter { access("\(directory)/\($0)", F_OK) == 0 }
            #expect(left.isEmpty, "a killed pool's files shown as this one's: \(left)")
            #expect(!String(decoding: PublishedMetrics.collected(pool: fixture.name), as: UTF8.self).contains("stale"))
            // What a queue group's worker publishes while the pool runs (it is killed before it
            // can withdraw them, as a worker SIGKILLed or crashed would be).
            try PublishedMetrics.publish("pool_queue_depth 3\n", pool: fixture.name, name: "orders")
            try PoolFiles.writePrivate(Array("{}".utf8), pool: fixture.name, name: "queue-orders.json")
            #expect(String(decoding: PublishedMetrics.collected(pool: fixture.name), as: UTF8.self) == "pool_queue_depth 3\n")
        }
        #expect(access(directory, F_OK) != 0, "left: \((try? Posix.listDirectory(directory)) ?? []), metrics/\((try? Posix.listDirectory("\(directory)/metrics")) ?? [])")
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

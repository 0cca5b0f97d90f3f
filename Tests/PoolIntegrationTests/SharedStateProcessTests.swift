import Glibc
import Testing

@testable import PoolEngine

/// Shared memory across real processes: a worker writes, this process reads.
@Suite("Shared state across processes", .serialized)
struct SharedStateProcessTests {
    @Test("a reader in another process sees a worker's updates and never a torn record")
    func noTornReads() async throws {
        let fixture = WorkerPoolTests.Fixture("torn")
        try fixture.pool.describeGroup(fixture.group("activity-writer", min: 1))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let reader = try PoolStateReader(pool: fixture.name)
        var torn = 0
        var reads = 0
        var distinct = Set<UInt64>()
        let deadline = ContinuousClock.now + .milliseconds(1500)
        while ContinuousClock.now < deadline {
            let a = try reader.activity(of: WorkerID(1))
            reads += 1
            let values: [UInt64] = [
                a.jobsAccepted, a.jobsProcessed, a.jobsErrors, a.jobsRejected, a.jobsInFlight, a.inFlightWeight,
                a.connectionsAccepted, a.connectionsProcessed, a.connectionsErrors, a.connectionsActive, a.currentJobID,
                a.currentJobSince,
            ]
            if Set(values).count != 1 { torn += 1 }
            distinct.insert(a.jobsAccepted)
        }
        #expect(torn == 0, "\(torn) torn reads out of \(reads)")
        #expect(distinct.count > 10, "the reader saw the writer's updates (\(distinct.count) distinct values in \(reads) reads)")
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("the watcher's snapshot tracks lifecycle, restarts and sampled resources; files are removed at exit")
    func snapshotOfRunningPool() async throws {
        let fixture = WorkerPoolTests.Fixture("snapshot")
        try fixture.pool.describeGroup(fixture.group("wait", min: 2, max: 3, name: "waiters"))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let segmentName = SharedLayout.segmentName(pool: fixture.name, uid: Posix.userID)
        let directory = RuntimeDirectory.path(pool: fixture.name)
        #expect(try Posix.ownerAndMode(path: directory).mode == 0o700)
        #expect(try Posix.ownerAndMode(path: RuntimeDirectory.controlSocket(pool: fixture.name)).mode == 0o600)
        #expect(try Posix.sharedMemoryOwnerAndMode(name: segmentName).mode == 0o600)

        // Resources are sampled once a second: wait for a figure rather than for time.
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].rssBytes ?? 0 > 0 })
        var snapshot = try PoolSnapshot.read(pool: fixture.name)
        #expect(snapshot.pool.pid == getpid())
        #expect(snapshot.groups[0].desired == 2 && snapshot.groups[0].running == 2 && snapshot.groups[0].ready == 2)
        let pids = Set(events.readyPIDs.map(\.1))
        #expect(Set(snapshot.workers.prefix(2).map(\.pid)) == pids)
        #expect(snapshot.workers[2].state == .stopped && snapshot.workers[2].pid == 0)

        let victim = snapshot.workers[0].pid
        kill(victim, SIGKILL)
        #expect(await events.waitFor { $0.readyPIDs.count == 3 })
        snapshot = try PoolSnapshot.read(pool: fixture.name)
        #expect(snapshot.workers[0].restarts == 1)
        #expect(snapshot.workers[0].lastExit?.signal == SIGKILL)
        #expect(snapshot.workers[0].lastExit?.reason == .signal)
        #expect(snapshot.workers[0].pid != victim)
        #expect(snapshot.workers[0].generation == 2)

        fixture.pool.restart(.soft)
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.pool.restarts.soft == 1 })
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        #expect(!Posix.isDirectory(path: directory), "the runtime directory is removed")
        #expect(throws: (any Error).self) { try Posix.sharedMemoryOwnerAndMode(name: segmentName) }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a second pool with a running pool's name refuses to start and names the watcher's pid; other names run side by side")
    func duplicateName() async throws {
        let first = WorkerPoolTests.Fixture("dup")
        try first.pool.describeGroup(first.group("wait", min: 1))
        let running = RunningPool(first.pool)
        await first.pool.awaitStart()

        let twin = WorkerPool(name: first.name, configuration: WorkerPool.Configuration(handlesSignals: false))
        try twin.describeGroup(first.group("wait", min: 1))
        let result = await RunningPool(twin).finish()
        guard case .failure(let error as PoolStartError) = result else {
            Issue.record("expected the twin to refuse, got \(result)")
            first.pool.stop()
            return
        }
        #expect(error.code == .alreadyRunning)
        #expect(error.message.contains("pid \(getpid())"))

        let other = WorkerPoolTests.Fixture("other")
        try other.pool.describeGroup(other.group("wait", min: 1))
        let otherRunning = RunningPool(other.pool)
        await other.pool.awaitStart()
        #expect(try PoolSnapshot.read(pool: other.name).workers[0].state == .ready)
        #expect(try PoolSnapshot.read(pool: first.name).workers[0].state == .ready, "the first pool is undisturbed")
        other.pool.stop()
        first.pool.stop()
        await #expect(throws: Never.self) { try await otherRunning.finish().get() }
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(first.name)
        await TestSupport.expectNoOrphans(other.name)
    }
}

@Suite("Runtime directory safety", .serialized)
struct RuntimeDirectoryTests {
    func refusal(_ prepare: (String) throws -> Void) async throws -> PoolStartError? {
        let fixture = WorkerPoolTests.Fixture("unsafe")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1))
        let directory = RuntimeDirectory.path(pool: fixture.name)
        try Posix.makeDirectory(RuntimeDirectory.base, mode: 0o700)
        try Posix.makeDirectory(directory, mode: 0o700)
        defer {
            Posix.removeDirectory(directory)
        }
        try prepare(directory)
        let result = await RunningPool(fixture.pool).finish()
        // The refused directory is the test's, left as it was.
        await TestSupport.expectNoOrphans(fixture.name, leavesRuntime: true)
        if case .failure(let error as PoolStartError) = result { return error }
        Issue.record("expected the pool to refuse its runtime directory, got \(result)")
        return nil
    }

    @Test("a runtime directory others may write is refused before anything starts")
    func worldWritable() async throws {
        let error = try await refusal { directory in try Posix.setMode(directory, 0o777) }
        #expect(error?.code == .runtimeDirectory)
        #expect(error?.message.contains("others may write") == true, "\(String(describing: error))")
    }

    @Test("a runtime directory owned by another user is refused", .enabled(if: getuid() == 0, "chown needs root"))
    func foreignOwner() async throws {
        let error = try await refusal { directory in #expect(chown(directory, 65534, 65534) == 0) }
        #expect(error?.code == .runtimeDirectory)
        #expect(error?.message.contains("belongs to uid 65534") == true, "\(String(describing: error))")
    }
}

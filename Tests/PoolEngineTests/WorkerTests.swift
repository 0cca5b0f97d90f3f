import Logging
import Testing

@testable import PoolEngine

/// The worker handle on its own, in-process (amphp-pool's WorkerTest).
@Suite("Worker handle: stop requests, termination and cancellation")
struct WorkerTests {
    func makeWorker() throws -> Worker {
        let pool = try PoolValidator.validate(
            name: "w", stopTimeout: .seconds(1), groups: [WorkerGroup(entryPoint: "e", kind: .job)], entryPoints: nil)
        let bootstrap = WorkerBootstrap(workerID: WorkerID(1), generation: 1, pool: pool, watcherPID: 1, logLevel: "info")
        return Worker(bootstrap: bootstrap, group: pool.groups[0], logger: Logger(label: "test"))
    }

    @Test("a stop request wakes awaitTermination and marks the worker stopping (testStop)")
    func stopWakesWaiters() async throws {
        let worker = try makeWorker()
        #expect(!worker.isStopRequested)
        let waiter = Task { await worker.awaitTermination() }
        worker.requestStop(.requested(.shutdown))
        await waiter.value
        #expect(worker.isStopRequested)
        #expect(worker.stopReason == .requested(.shutdown))
        // Once stopping, awaitTermination returns at once; a second request changes nothing.
        await worker.awaitTermination()
        worker.requestStop(.watcherLost)
        #expect(worker.stopReason == .requested(.shutdown))
    }

    @Test("a stop request cancels the task running run(), even one attached after the request")
    func stopCancelsRun() async throws {
        let worker = try makeWorker()
        let running = Task { try await Task.sleep(for: .seconds(60)) }
        worker.attach(running)
        worker.requestStop(.signal(15))
        await #expect(throws: CancellationError.self) { try await running.value }

        let late = Task { try await Task.sleep(for: .seconds(60)) }
        worker.attach(late)
        await #expect(throws: CancellationError.self) { try await late.value }
    }

    @Test("cancelling the waiting task makes awaitTermination return without a stop")
    func cancellationReturns() async throws {
        let worker = try makeWorker()
        let waiter = Task { await worker.awaitTermination() }
        waiter.cancel()
        await waiter.value
        #expect(!worker.isStopRequested)
    }
}

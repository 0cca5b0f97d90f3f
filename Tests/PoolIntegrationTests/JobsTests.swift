import Glibc
import NIOCore
import struct Synchronization.Atomic
import Testing

@testable import PoolEngine

/// Jobs between real processes: the demo job worker, a sending worker, and the operator path.
@Suite("Jobs between workers", .serialized)
struct JobsTests {
    func jobGroup(_ fixture: WorkerPoolTests.Fixture, min: Int = 2, max: Int = 0, limits: JobExecutorConfiguration? = nil) -> WorkerGroup {
        var group = fixture.group("demo-job", kind: .job, min: min, max: max, name: "jobs")
        group.jobExecutor = limits
        return group
    }

    @Test("a worker sends a job to a job group named in jobGroups and gets its result (WorkerToWorker)")
    func workerToWorker() async throws {
        let fixture = WorkerPoolTests.Fixture("w2w")
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 1, name: "group1", restart: .never))
        var sender = fixture.group("job-sender", kind: .reactor, min: 1, name: "group2", restart: .never)
        sender.jobGroups = ["group1"]
        // A worker's own client takes its group's wait; the opt-in one here, the default elsewhere.
        sender.jobWait = .adaptive
        sender.runner.environment["JOB_GROUP"] = "group1"
        sender.runner.environment["JOB_PAYLOAD"] = "echo group2 was handled"
        sender.runner.environment["JOB_THEN"] = "terminate"
        try fixture.pool.describeGroup(sender)
        let events = EventRecorder(fixture.pool)
        await #expect(throws: Never.self) { try await RunningPool(fixture.pool).finish().get() }
        #expect(fixture.lines("job-result") == ["group2 was handled"])
        #expect(Set(events.exits.map(\.reason)) == [.cleanExit, .terminate])
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a sender may not send to a group outside its jobGroups, nor to itself")
    func notAllowed() async throws {
        let fixture = WorkerPoolTests.Fixture("notallowed")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 1))
        var sender = fixture.group("job-sender", kind: .service, min: 1, name: "sender", restart: .never)
        sender.runner.environment["JOB_GROUP"] = "jobs"
        try fixture.pool.describeGroup(sender)
        let running = RunningPool(fixture.pool)
        #expect(await TestSupport.eventually { !fixture.lines("job-result").isEmpty })
        #expect(fixture.lines("job-result").first?.hasPrefix("error not-allowed") == true, "\(fixture.lines("job-result"))")
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("every job ends with its result or an explicit error: handler error, timeout, worker lost, too large, not a job group")
    func errorPaths() async throws {
        let fixture = WorkerPoolTests.Fixture("joberrors")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 2))
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "plain"))
        try await fixture.withRunningPool { events in
            let pool = fixture.pool

            let ok = try await pool.submitJob(Array("echo hi".utf8), to: "jobs")
            #expect(ok.text == "hi")
            #expect([WorkerID(1), WorkerID(2)].contains(ok.worker))
            #expect(ok.pickedBecause.contains("least jobs"))

            await #expect { try await pool.submitJob(Array("fail it broke".utf8), to: "jobs") } throws: { error in
                (error as? JobError)?.code == .handlerFailed && (error as? JobError)?.message == "it broke"
            }
            await #expect { try await pool.submitJob(Array("sleep 60000".utf8), to: "jobs", timeout: .milliseconds(200)) } throws: { error in
                (error as? JobError)?.code == .timedOut
            }
            // The timed-out job was cancelled on its worker too: nothing stays in flight.
            #expect(await TestSupport.eventually {
                guard let snapshot = try? PoolSnapshot.read(pool: fixture.name) else { return false }
                return snapshot.workers.prefix(2).allSatisfy { $0.activity.jobsInFlight == 0 }
            })
            // A worker dying mid-job fails the job at once as worker-lost, long before its timeout.
            await #expect { try await pool.submitJob(Array("crash".utf8), to: "jobs", timeout: .seconds(120)) } throws: { error in
                (error as? JobError)?.code == .workerLost
            }
            #expect(await events.waitFor { $0.readyPIDs.count == 4 }, "the crashed worker is replaced")
            let huge = [UInt8](repeating: 0x41, count: 17 * 1024 * 1024)
            await #expect { try await pool.submitJob(huge, to: "jobs") } throws: { error in (error as? JobError)?.code == .tooLarge }
            await #expect { try await pool.submitJob(Array("echo".utf8), to: "plain") } throws: { error in
                (error as? JobError)?.code == .notAllowed
            }
            await #expect { try await pool.submitJob(Array("echo".utf8), to: "nope") } throws: { error in
                (error as? JobError)?.code == .notAllowed
            }
            let after = try await pool.submitJob(Array("echo still serving".utf8), to: "jobs")
            #expect(after.text == "still serving")

            let snapshot = try PoolSnapshot.read(pool: fixture.name)
            let processed = snapshot.workers.prefix(2).map(\.activity.jobsProcessed).reduce(0, +)
            let errors = snapshot.workers.prefix(2).map(\.activity.jobsErrors).reduce(0, +)
            #expect(processed >= 3, "counters in shared memory count the jobs (\(processed))")
            #expect(errors >= 1)
        }
    }

    @Test(
        "the client's socket: megabyte payloads, 64 concurrent senders and answers slower than the sender's poll all reach the right sender",
        arguments: [JobWaitPolicy.suspend, .adaptive, .poll, .receive, .spin])
    func clientSocketUnderMixedLoad(wait: JobWaitPolicy) async throws {
        let fixture = WorkerPoolTests.Fixture("jobmixed", jobWait: wait)
        try fixture.pool.describeGroup(jobGroup(fixture, min: 2))
        try await fixture.withRunningPool { _ in
            let pool = fixture.pool
            // Bigger than a socket buffer: the request leaves in pieces, some written by the I/O thread.
            let big = await withTaskGroup(of: Bool.self) { group in
                for sender in 0..<3 {
                    group.addTask {
                        let text = String(repeating: String(UnicodeScalar(UInt8(65 + sender))), count: 4 * 1024 * 1024)
                        let result = try? await pool.submitJob(Array("echo \(text)".utf8), to: "jobs", timeout: .seconds(30))
                        return result?.payload.count == text.utf8.count && result?.text == text
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(big == [true, true, true])
            // Many senders on two connections: each answer goes to the sender of its job.
            let mismatches = await withTaskGroup(of: [String].self) { group in
                for sender in 0..<64 {
                    group.addTask {
                        var wrong: [String] = []
                        for job in 0..<20 {
                            let text = "\(sender)-\(job)"
                            do {
                                let result = try await pool.submitJob(Array("echo \(text)".utf8), to: "jobs")
                                if result.text != text { wrong.append("\(text) got \(result.text)") }
                            } catch {
                                wrong.append("\(text) failed: \(error)")
                            }
                        }
                        return wrong
                    }
                }
                return await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
            // One sender alone, its answers alternately slower than its poll (2 ms) and quick.
            for round in 0..<10 {
                let command = round.isMultiple(of: 2) ? "sleep 2" : "echo \(round)"
                let result = try await pool.submitJob(Array(command.utf8), to: "jobs")
                #expect(round.isMultiple(of: 2) ? result.text.hasPrefix("slept 2 ms") : result.text == "\(round)")
            }
        }
    }

    @Test("cancelling the sending task cancels the job on the worker")
    func cancellation() async throws {
        let fixture = WorkerPoolTests.Fixture("jobcancel")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 1))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let pool = fixture.pool
        let task = Task { try await pool.submitJob(Array("sleep 60000".utf8), to: "jobs", timeout: .seconds(120)) }
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 1 })
        task.cancel()
        await #expect { try await task.value } throws: { error in (error as? JobError)?.code == .cancelled }
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 0 })
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a full worker rejects; with no room anywhere the job fails as rejected, explicitly")
    func rejectedWhenFull() async throws {
        let fixture = WorkerPoolTests.Fixture("jobfull")
        var group = jobGroup(fixture, min: 1, max: 1, limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 0))
        // Without scaling on demand a sender does not wait for room: the refusal is the answer.
        group.scaling = .manual
        try fixture.pool.describeGroup(group)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let pool = fixture.pool
        let busy = Task { try await pool.submitJob(Array("sleep 1500".utf8), to: "jobs") }
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 1 })
        await #expect { try await pool.submitJob(Array("echo x".utf8), to: "jobs", timeout: .seconds(10)) } throws: { error in
            (error as? JobError)?.code == .rejected && (error as? JobError)?.message.contains("is full") == true
        }
        #expect(try await busy.value.text.hasPrefix("slept"))
        #expect(try PoolSnapshot.read(pool: fixture.name).workers[0].activity.jobsRejected >= 1)
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("when every worker is busy the group scales up on demand, up to max")
    func scaleOnDemand() async throws {
        let fixture = WorkerPoolTests.Fixture("jobscale")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 1, max: 3, limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 0)))
        try await fixture.withRunningPool { events in
            let pool = fixture.pool
            let results = try await withThrowingTaskGroup(of: JobResult.self) { group in
                for _ in 0..<3 { group.addTask { try await pool.submitJob(Array("sleep 1500".utf8), to: "jobs", timeout: .seconds(20)) } }
                var results: [JobResult] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(results.count == 3, "every job got its result")
            // How far it grows depends on timing (one worker may free up first); that it grows does not.
            #expect(Set(results.map(\.worker)).count >= 2, "workers that ran them: \(results.map(\.worker))")
            #expect(await events.waitFor { $0.all.contains { if case .groupScaled("jobs", 1, 2) = $0 { return true } else { return false } } })
            #expect(try PoolSnapshot.read(pool: fixture.name).groups[0].desired <= 3, "never past max")
        }
    }

    @Test("a soft restart drains a job worker's in-flight job instead of dropping it")
    func softRestartDrains() async throws {
        let fixture = WorkerPoolTests.Fixture("jobdrain")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 1))
        try await fixture.withRunningPool { events in
            let pool = fixture.pool
            let job = Task { try await pool.submitJob(Array("sleep 500".utf8), to: "jobs", timeout: .seconds(20)) }
            #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 1 })
            pool.restart(.soft)
            let result = try await job.value
            #expect(result.text.hasPrefix("slept 500 ms"))
            #expect(await events.waitFor { $0.readyPIDs.count == 2 }, "the worker was replaced after its job")
            #expect(events.exits.first?.reason == .restart)
        }
    }

    @Test("four senders submitting without pause through rolling and soft restarts of the job group: no job fails, no worker needs killing")
    func restartsUnderLoadFailNoJob() async throws {
        let fixture = WorkerPoolTests.Fixture("jobrestartload")
        try fixture.pool.describeGroup(jobGroup(fixture, min: 2, max: 3))
        try await fixture.withRunningPool { events in
            let pool = fixture.pool
            let stop = SenderStop()
            // Each sender counts its results and keeps every failure, with its message.
            let senders = (0..<4).map { _ in
                Task { () -> (ok: Int, failures: [String]) in
                    var ok = 0
                    var failures: [String] = []
                    while !stop.raised.load(ordering: .relaxed) {
                        do {
                            _ = try await pool.submitJob(Array("echo x".utf8), to: "jobs", timeout: .seconds(20))
                            ok += 1
                        } catch {
                            failures.append("\(error)")
                        }
                    }
                    return (ok, failures)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            for round in 1...2 {
                try await pool.rollingRestart(.name("jobs"))
                pool.restart(.soft)
                // Each round replaces both workers twice: wait for those exits, then for two ready workers.
                #expect(await events.waitFor { $0.exits.filter { $0.reason == .restart }.count >= 4 * round }, "round \(round)")
                #expect(await TestSupport.eventually { ((try? PoolSnapshot.read(pool: fixture.name))?.group(named: "jobs")?.ready ?? 0) >= 2 })
            }
            try await Task.sleep(for: .milliseconds(100))
            stop.raised.store(true, ordering: .relaxed)
            var total = 0
            for sender in senders {
                let (ok, failures) = await sender.value
                total += ok
                #expect(failures.isEmpty, "\(failures.count) failed: \(Array(Set(failures)).prefix(3))")
            }
            #expect(total > 200, "the senders ran throughout: \(total) jobs")
            // A stop sent right after a spawn used to be lost in the worker (read with its
            // bootstrap, never acted on): the worker then ran until killed at the stop timeout.
            #expect(!events.all.contains { if case .workerKilled = $0 { return true } else { return false } }, "a worker was killed")
        }
    }

    @Test("a worker that reaches its job quota is recycled after its jobs, with reason quota naming it")
    func recycleByJobs() async throws {
        let fixture = WorkerPoolTests.Fixture("recycle")
        var group = jobGroup(fixture, min: 1)
        group.recycle = RecyclePolicy(maxJobs: 3, jitter: 0)
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            for index in 0..<3 {
                #expect(try await fixture.pool.submitJob(Array("echo \(index)".utf8), to: "jobs").text == "\(index)")
            }
            // Quotas are checked once a second.
            #expect(await events.waitFor { $0.exits.contains { $0.reason == .quota } })
            let exit = try #require(events.exits.first { $0.reason == .quota })
            #expect(exit.message == "recycled: max jobs 3 reached (3 processed)")
            #expect(await events.waitFor { $0.readyPIDs.count == 2 }, "replaced")
            #expect(try await fixture.pool.submitJob(Array("echo after".utf8), to: "jobs").text == "after")
        }
    }

    @Test("a group grown on demand shrinks back to min after it has been idle")
    func shrinkAfterIdle() async throws {
        let fixture = WorkerPoolTests.Fixture("shrink")
        var group = jobGroup(fixture, min: 1, max: 2, limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 0))
        group.scaling = ScalingPolicy(onDemand: true, shrinkAfterIdle: .milliseconds(500))
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let pool = fixture.pool
            async let first = pool.submitJob(Array("sleep 800".utf8), to: "jobs", timeout: .seconds(20))
            async let second = pool.submitJob(Array("sleep 800".utf8), to: "jobs", timeout: .seconds(20))
            _ = try await (first, second)
            #expect(await events.waitFor { $0.all.contains { if case .groupScaled("jobs", 1, 2) = $0 { return true } else { return false } } })
            #expect(await events.waitFor { $0.all.contains { if case .groupScaled("jobs", 2, 1) = $0 { return true } else { return false } } })
            #expect(await events.waitFor { $0.exits.last?.reason == .scaleDown })
        }
    }

    @Test("a raw client speaks the documented frames; malformed bytes close only that connection (IpcServer, IpcClient)")
    func rawProtocol() async throws {
        let (fixture, running, path) = try await RawJobSender.oneJobWorker("rawjob")
        #expect(try Posix.ownerAndMode(path: path).mode == 0o600)

        /// Sends `bytes`; returns the frames read until an answer (result or error), or nil when
        /// the connection closes without one.
        func exchange(_ bytes: [UInt8]) throws -> [JobFrame]? {
            let fd = try Posix.connectUnixSocket(path)
            defer { Posix.close(fd) }
            try Posix.sendAll(fd, bytes)
            return try RawJobSender.framesUntilAnswer(fd)
        }
        let frames = try #require(try exchange(Array(RawJobSender.request(1, "echo Test").readableBytesView)))
        // The start went into the worker's running-jobs table, not onto the wire: only the answer comes.
        guard frames.count == 1, case .result(let result) = frames[0] else {
            Issue.record("expected one result frame, got \(frames)")
            return
        }
        #expect(result.jobID == 1 && result.worker == 1 && result.payload == Array("Test".utf8))

        #expect(try exchange(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == nil, "garbage: the connection is closed, no answer")
        #expect(try exchange([0x50, 0x4A, JobFrame.version, 1, 2, 0, 0, 0, 1, 2]) == nil, "a short request body")
        // The worker survived both and still answers.
        try await RawJobSender.expectAliveThenStop(fixture, running)
        #expect(access(path, F_OK) != 0, "the job socket is removed")
    }

    @Test("answers far larger than the socket's buffer all arrive whole to a sender that reads only after sending everything")
    func answersBeyondTheSocketBuffer() async throws {
        let (fixture, running, path) = try await RawJobSender.oneJobWorker("bigjob")
        let fd = try Posix.connectUnixSocket(path)
        defer { Posix.close(fd) }
        // 48 answers of 256 KiB: 12 MiB the worker must hold back while the socket is full
        // (its buffer is a few hundred KiB) and send as the sender reads.
        let count = 48
        var requests = ByteBuffer()
        for id in 1...count {
            let text = String(repeating: Character(UnicodeScalar(UInt8(65 + id % 26))), count: 256 * 1024)
            JobFrame.request(JobRequestFrame(jobID: UInt64(id), deadline: 0, priority: 0, weight: 1, senderWorker: 0, senderGroup: 0, payload: Array("echo \(text)".utf8)))
                .write(to: &requests)
        }
        try Posix.sendAll(fd, Array(requests.readableBytesView))
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var answers: [UInt64: [UInt8]] = [:]
        while answers.count < count {
            guard try Posix.pollReadable(fd, timeoutMilliseconds: 10_000) else { break }
            let n = try chunk.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, nonBlocking: false) } ?? 0
            if n == 0 { break }
            buffer.writeBytes(chunk[0..<n])
            while let frame = try JobFrame.read(from: &buffer) {
                if case .result(let result) = frame { answers[result.jobID] = result.payload }
            }
        }
        #expect(answers.count == count)
        for id in 1...count {
            let expected = [UInt8](repeating: UInt8(65 + id % 26), count: 256 * 1024)
            #expect(answers[UInt64(id)] == expected, "job \(id)'s answer")
        }
        // The worker is well and answers others.
        try await RawJobSender.expectAliveThenStop(fixture, running)
    }

    @Test("a job worker that registers no handler fails at start with an error that says so")
    func missingHandler() async throws {
        let fixture = WorkerPoolTests.Fixture("nohandler")
        try fixture.pool.describeGroup(fixture.group("wait", kind: .job, min: 1, name: "jobs"))
        let result = await RunningPool(fixture.pool).finish()
        guard case .failure(let error as PoolFailure) = result else {
            Issue.record("expected the pool to fail, got \(result)")
            return
        }
        #expect(error.code == .fatalWorkerError)
        #expect(error.message.contains("registered no JobHandler"), "\(error)")
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("with no ready worker and no scaling on demand, a job fails as no-worker-available, naming the states")
    func noWorker() async throws {
        let fixture = WorkerPoolTests.Fixture("noworker")
        var group = jobGroup(fixture, min: 1, max: 1)
        group.scaling = .manual
        try fixture.pool.describeGroup(group)
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "keepalive"))
        try await fixture.withRunningPool { events in
            try await fixture.pool.stopWorker(WorkerID(1))
            #expect(await events.waitFor { $0.exits.contains { $0.id == WorkerID(1) } })
            await #expect { try await fixture.pool.submitJob(Array("echo x".utf8), to: "jobs", timeout: .seconds(10)) } throws: { error in
                (error as? JobError)?.code == .noWorkerAvailable && (error as? JobError)?.message.contains("1 stopped") == true
            }
        }
    }

    /// A pool of one job worker that runs one job at a time, already running `sleep MS`.
    func busyLoneWorker(_ name: String, sleeping milliseconds: Int) async throws -> (WorkerPoolTests.Fixture, RunningPool, Task<JobResult, any Error>) {
        let fixture = WorkerPoolTests.Fixture(name)
        try fixture.pool.describeGroup(jobGroup(fixture, min: 1, max: 1, limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 64)))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        let pool = fixture.pool
        let blocker = Task { try await pool.submitJob(Array("sleep \(milliseconds)".utf8), to: "jobs") }
        #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 1 })
        return (fixture, running, blocker)
    }

    @Test("under load a job worker runs higher-priority jobs first")
    func priorityUnderLoad() async throws {
        let (fixture, running, blocker) = try await busyLoneWorker("priority", sleeping: 400)
        let pool = fixture.pool
        let finished = FinishOrder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, priority) in [("low-1", 0), ("high-1", 9), ("low-2", 0), ("high-2", 9), ("mid", 5)] {
                group.addTask {
                    // Each runs 30 ms, so the order they finish in is the order they ran in.
                    _ = try await pool.submitJob(Array("sleep 30".utf8), to: "jobs", priority: priority)
                    finished.append(name)
                }
            }
            // All five are queued behind the blocker before it finishes.
            #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.workers[0].activity.jobsInFlight == 6 })
            try await group.waitForAll()
        }
        _ = try await blocker.value
        let order = finished.names
        #expect(order.prefix(2).allSatisfy { $0.hasPrefix("high") }, "\(order)")
        #expect(order[2] == "mid" && order.suffix(2).allSatisfy { $0.hasPrefix("low") }, "\(order)")
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

extension JobsTests {
    @Test("a job's queue wait and run time: none for one that starts at once; one queued behind another waits from its arrival to the other's end")
    func queueWaitAndRunTime() async throws {
        let (fixture, running, blocker) = try await busyLoneWorker("waits", sleeping: 200)
        let queued = try await fixture.pool.submitJob(Array("sleep 30".utf8), to: "jobs")
        let first = try await blocker.value
        // It found the worker idle: its arrival is its start (decision 0026).
        #expect(first.queueWait == .zero, "\(first.queueWait)")
        #expect(first.runTime >= .milliseconds(200), "\(first.runTime)")
        // It started when the blocker ended, and arrived after the blocker started.
        #expect(queued.queueWait > .zero && queued.queueWait <= first.runTime, "waited \(queued.queueWait), the blocker ran \(first.runTime)")
        #expect(queued.runTime >= .milliseconds(30), "\(queued.runTime)")
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

/// The order in which jobs finished, appended from concurrent tasks.
final class FinishOrder: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ name: String) { storage.withLock { $0.append(name) } }
    var names: [String] { storage.withLock { $0 } }
}

/// Tells the senders of a load test to stop (a class, so tasks can share it).
final class SenderStop: Sendable {
    let raised = Atomic<Bool>(false)
}

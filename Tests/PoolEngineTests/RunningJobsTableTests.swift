import Testing

@testable import PoolEngine

/// How a sender learns which of its jobs a dead worker had started: the running-jobs table in
/// real shared memory, and the `started` frame the scheduler falls back to.
@Suite("Running-jobs table and start announcements", .serialized)
struct RunningJobsTableTests {
    static let groups = [
        WorkerGroup(
            entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 2, name: "jobs",
            jobExecutor: JobExecutorConfiguration(maxConcurrentJobs: 2)),
        WorkerGroup(entryPoint: "b", kind: .service, minWorkers: 1, maxWorkers: 1, name: "plain"),
    ]

    /// A pid no process has (so the table reads as final), found by asking the kernel.
    static let endedPID: Int32 = (4_000_000..<4_194_000).lazy.map { Int32($0) }.first { !Posix.processExists($0) }!

    func withSegment(_ body: (SharedSegment, PoolDescription) throws -> Void) throws {
        try SharedStateTests.withSegment(groups: Self.groups, prefix: "running-test", body)
    }

    @Test("job slots get a table of twice their concurrent jobs; other slots none; a reader's mapping checks it fits")
    func layout() throws {
        try withSegment { segment, pool in
            let layout = RunningJobsTable.layout(of: pool)
            #expect(layout.locations.keys.sorted() == [WorkerID(1), WorkerID(2)])
            #expect(layout.locations[WorkerID(1)]?.capacity == 4)
            #expect(layout.size == 2 * (16 + 4 * 16))
            #expect(segment.runningJobsOffset == SharedLayout.size(groups: pool.groupCapacity, slots: pool.slotCapacity), "after every record, the reserve's included")
            let reader = try SharedSegment.open(name: segment.name, writable: false)
            #expect(reader.runningJobsOffset == segment.runningJobsOffset)
            #expect(RunningJobsTable(segment: segment, id: WorkerID(3), pool: pool) == nil, "a service slot has no table")
        }
    }

    @Test("a dead worker's table names the jobs it had started and not answered, for the sender that sent them")
    func startedJobs() throws {
        try withSegment { segment, pool in
            let dead = Self.endedPID
            let table = try #require(RunningJobsTable(segment: segment, id: WorkerID(1), pool: pool, owner: dead))
            let location = try #require(RunningJobsTable.layout(of: pool).locations[WorkerID(1)])
            let key = { (job: UInt64) in JobScheduler.Key(connection: 1, job: job) }
            #expect(table.claim(key(10), token: 77, jobID: 10))
            #expect(table.claim(key(11), token: 77, jobID: 11))
            #expect(table.claim(JobScheduler.Key(connection: 2, job: 10), token: 88, jobID: 10))
            #expect(table.claim(key(12), token: 77, jobID: 12))
            #expect(!table.claim(key(13), token: 77, jobID: 13), "four entries: the fifth start is announced otherwise")
            table.release(key(11))
            #expect(table.claim(key(13), token: 77, jobID: 13), "an answered job's entry is free again")

            let reader = try SharedSegment.open(name: segment.name, writable: false)
            let started = RunningJobsTable.startedJobs(token: 77, pid: dead, segment: reader, location: location)
            #expect(started == [10, 12, 13], "11 was answered; 10 of token 88 is another sender's")
            #expect(RunningJobsTable.startedJobs(token: 88, pid: dead, segment: reader, location: location) == [10])
            #expect(RunningJobsTable.startedJobs(token: 99, pid: dead, segment: reader, location: location) == [])
        }
    }

    @Test("a table cannot tell while its process runs, nor before any process took it")
    func unknowable() throws {
        try withSegment { segment, pool in
            let location = try #require(RunningJobsTable.layout(of: pool).locations[WorkerID(2)])
            #expect(
                RunningJobsTable.startedJobs(token: 5, pid: Self.endedPID, segment: segment, location: location) == nil,
                "no process of the slot ever took its table")
            let live = try #require(RunningJobsTable(segment: segment, id: WorkerID(2), pool: pool))
            #expect(live.claim(JobScheduler.Key(connection: 1, job: 1), token: 5, jobID: 1))
            #expect(
                RunningJobsTable.startedJobs(token: 5, pid: Posix.processID, segment: segment, location: location, waitingForExit: .zero) == nil,
                "this process is alive: it could still start more")
        }
    }

    @Test("a replacement that took the slot over keeps its predecessor's started jobs readable, and uses only free entries meanwhile")
    func takeoverKeepsLeftovers() throws {
        try withSegment { segment, pool in
            let location = try #require(RunningJobsTable.layout(of: pool).locations[WorkerID(1)])
            let key = { (connection: UInt64, job: UInt64) in JobScheduler.Key(connection: connection, job: job) }
            let dead = try #require(RunningJobsTable(segment: segment, id: WorkerID(1), pool: pool, owner: Self.endedPID))
            #expect(dead.claim(key(1, 10), token: 77, jobID: 10))
            #expect(dead.claim(key(1, 11), token: 77, jobID: 11))
            dead.release(key(1, 11))
            // The replacement (this process) takes the slot over before the sender looked.
            let replacement = try #require(RunningJobsTable(segment: segment, id: WorkerID(1), pool: pool))
            #expect(replacement.claim(key(2, 1), token: 99, jobID: 1))
            #expect(replacement.claim(key(2, 2), token: 99, jobID: 2))
            #expect(replacement.claim(key(2, 3), token: 99, jobID: 3))
            #expect(!replacement.claim(key(2, 4), token: 99, jobID: 4), "the fourth entry is the predecessor's, kept for its senders")
            let started = RunningJobsTable.startedJobs(token: 77, pid: Self.endedPID, segment: segment, location: location)
            #expect(started == [10], "10 had started; 11 was answered")
        }
    }

    @Test("without a table, a job's handler runs only once its start was announced; a failed announcement drops it")
    func announcedStarts() async throws {
        let handler = SteeredHandler()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 4), workerID: WorkerID(1), handler: handler)
        let announced = Mutex<[(UInt64, @Sendable (Bool) -> Void)]>([])
        let gate: JobScheduler.StartGate = { jobID, launch in announced.withLock { $0.append((jobID, launch)) } }
        let replies = Replies()
        scheduler.submit(request(1, "a"), connection: 1, gate: gate, reply: replies.reply)
        scheduler.submit(request(2, "b"), connection: 1, gate: gate, reply: replies.reply)
        #expect(announced.withLock { $0.map(\.0) } == [1, 2])
        try await Task.sleep(for: .milliseconds(20))
        #expect(handler.started.isEmpty, "nothing runs before its start is announced")
        #expect(scheduler.load.running == 2)

        let (first, second) = announced.withLock { ($0[0].1, $0[1].1) }
        first(true)
        #expect(await eventually { handler.started == ["a"] })
        second(false)
        #expect(await eventually { scheduler.load.running == 1 }, "the unannounced job is dropped, not run")
        handler.release("a")
        #expect(await eventually { replies.count == 1 })
        #expect(handler.started == ["a"])
        // The launches hold their entries, which hold the gate, which holds this list: a cycle
        // the connection's announcer breaks by emptying its list on every flush; so does this.
        announced.withLock { $0.removeAll() }
    }
}

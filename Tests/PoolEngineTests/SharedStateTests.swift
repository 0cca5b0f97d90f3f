import Testing

@testable import PoolEngine

/// amphp-pool's storage tests against real POSIX shared memory.
@Suite("Shared state: the segment, its records, and coherent reads", .serialized)
struct SharedStateTests {
    static let groups = [
        WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, maxWorkers: 4, name: "jobs"),
        WorkerGroup(entryPoint: "b", kind: .reactor, minWorkers: 1, maxWorkers: 6, name: "web"),
    ]

    /// A segment named for this test, removed afterwards.
    func withSegment(_ body: (SharedSegment, PoolDescription) throws -> Void) throws {
        try Self.withSegment(groups: Self.groups, prefix: "shm-test", body)
    }

    /// A real segment of a pool of `groups`, named from `prefix` and this process, removed afterwards.
    static func withSegment(
        groups: [WorkerGroup], prefix: String, _ body: (SharedSegment, PoolDescription) throws -> Void
    ) throws {
        let pool = try PoolValidator.validate(name: "\(prefix)-\(Posix.processID)", stopTimeout: .seconds(1), groups: groups, entryPoints: nil)
        let name = SharedLayout.segmentName(pool: pool.name, uid: Posix.userID)
        let segment = try SharedSegment.create(name: name, pool: pool, watcherPID: 4242, startedAt: 1_000_000_000_000)
        defer { Posix.unlinkSharedMemory(name: name) }
        try body(segment, pool)
    }

    @Test("a core's state written by the publisher reads back through a second, read-only mapping (testWriteRead, testOnlyRead)")
    func writeRead() throws {
        try withSegment { segment, pool in
            var core = WatcherCore(pool: pool)
            let clock = PoolInstant.now
            _ = core.handle(.poolDidStart, at: clock)
            _ = core.handle(.processDidSpawn(WorkerID(1), generation: 1, pid: 111), at: clock)
            _ = core.handle(.workerDidBecomeReady(WorkerID(1), generation: 1), at: clock)
            _ = core.handle(.processDidSpawn(WorkerID(5), generation: 1, pid: 555), at: clock)
            _ = core.handle(.processDidExit(WorkerID(2), generation: 1, .signaled(9)), at: clock)
            let publisher = SharedStatePublisher(segment: segment, pool: pool)
            publisher.publish(core, at: clock)
            publisher.setPoolState(.running)

            // A reader given only the name discovers the layout from the header.
            let snapshot = try PoolSnapshot.read(pool: pool.name)
            #expect(snapshot.pool.name == pool.name)
            #expect(snapshot.pool.pid == 4242)
            #expect(snapshot.pool.state == .running)
            #expect(snapshot.workers.count == 10)
            #expect(snapshot.workers.map(\.id.rawValue) == Array(1...10), "records come in id order (testForeachWorkers)")
            #expect(snapshot.groups.map(\.name) == ["jobs", "web"])
            #expect(snapshot.groups[0].kind == .job && snapshot.groups[1].kind == .reactor)
            #expect(snapshot.groups[0].min == 2 && snapshot.groups[0].max == 4)
            let worker1 = try #require(snapshot.worker(WorkerID(1)))
            #expect(worker1.state == .ready && worker1.pid == 111 && worker1.group == "jobs" && worker1.generation == 1)
            #expect(worker1.readyAt != nil && worker1.startedAt != nil)
            let worker2 = try #require(snapshot.worker(WorkerID(2)))
            #expect(worker2.pid == 0)
            #expect(worker2.lastExit?.status == "signaled")
            #expect(worker2.lastExit?.signal == 9)
            #expect(worker2.lastExit?.reason == .bootFailure)
            #expect(worker2.state == .backoff && worker2.backoffUntil != nil)
            #expect(snapshot.worker(WorkerID(5))?.group == "web")
            #expect(snapshot.worker(WorkerID(5))?.state == .starting)
            // Group counts: jobs wants 2, has processes for 1 (the other backs off), 1 ready.
            #expect(snapshot.groups[0].desired == 2 && snapshot.groups[0].running == 1 && snapshot.groups[0].ready == 1)
            #expect(snapshot.groups[1].desired == 1 && snapshot.groups[1].running == 1 && snapshot.groups[1].ready == 0)
            // One group's records, as a job sender copies them per job.
            let web = try PoolStateReader(pool: pool.name).records(of: pool.groups[1])
            #expect(web.firstID == WorkerID(5) && web.slotCount == 6)
            #expect(web.state(of: WorkerID(5)) == .starting && web.pid(of: WorkerID(5)) == 555)
        }
    }

    @Test("the job a worker starts is described for its post-mortem: sender, priority, weight, the payload's head and length")
    func currentJobParticulars() throws {
        try withSegment { segment, pool in
            let recorder = try WorkerActivityRecorder(segmentName: segment.name, id: WorkerID(3))
            let reader = PoolStateReader(segment: segment)
            let base = segment.slotBase(WorkerID(3))
            recorder.describeCurrentJob(
                Job(id: 7, payload: Array("resize image 42 to 64x64".utf8), priority: -3, weight: 5, sender: WorkerID(9), senderGroup: GroupID(2), deadline: nil))
            var job = reader.currentJob(base)
            #expect(job.sender?.0 == WorkerID(9) && job.sender?.1 == GroupID(2))
            #expect(job.priority == -3 && job.weight == 5 && job.length == 24)
            #expect(String(decoding: job.head, as: UTF8.self) == "resize image 42 ")
            // An operator's short job replaces it whole: no sender, no leftover bytes.
            recorder.describeCurrentJob(Job(id: 8, payload: Array("ping".utf8), priority: 0, weight: 1, sender: nil, senderGroup: nil, deadline: nil))
            job = reader.currentJob(base)
            #expect(job.sender == nil && job.priority == 0 && job.weight == 1 && job.head == Array("ping".utf8) && job.length == 4)
            #expect(reader.currentJob(segment.slotBase(WorkerID(4))).length == 0, "other slots untouched")
            #expect(reader.currentRequest(base) == nil, "a job is not a request")
            // A reactor's request: its first 24 bytes, its length, when it started; cleared when done.
            recorder.describeRequest(Array("GET /reports/2026/12/01?format=csv".utf8))
            let request = try #require(reader.currentRequest(base))
            #expect(String(decoding: request.head, as: UTF8.self) == "GET /reports/2026/12/01?" && request.length == 34)
            #expect(abs(request.startedAt - Posix.wallClockSeconds()) < 5)
            recorder.clearRequest()
            #expect(reader.currentRequest(base) == nil)
            _ = pool
        }
    }

    @Test("a worker's activity part round-trips, and only changed records are rewritten")
    func activityRoundTrip() throws {
        try withSegment { segment, pool in
            let recorder = try WorkerActivityRecorder(segmentName: segment.name, id: WorkerID(3))
            recorder.update { activity in
                activity.jobsAccepted = 15
                activity.jobsProcessed = 12
                activity.jobsErrors = 1
                activity.jobsRejected = 2
                activity.jobsInFlight = 3
                activity.inFlightWeight = 40
                activity.connectionsAccepted = 7
                activity.connectionsProcessed = 6
                activity.connectionsErrors = 1
                activity.connectionsActive = 1
                activity.currentJobID = 99
                activity.currentJobSince = 5
            }
            let reader = try PoolStateReader(pool: pool.name)
            let activity = try reader.activity(of: WorkerID(3))
            #expect(activity.jobsAccepted == 15 && activity.jobsProcessed == 12 && activity.jobsErrors == 1)
            #expect(activity.jobsRejected == 2 && activity.jobsInFlight == 3 && activity.inFlightWeight == 40)
            #expect(activity.connectionsAccepted == 7 && activity.connectionsProcessed == 6)
            #expect(activity.connectionsErrors == 1 && activity.connectionsActive == 1)
            #expect(activity.currentJobID == 99 && activity.currentJobSince == 5)
            #expect(activity.lastUpdate > 0)
            #expect(try reader.activity(of: WorkerID(4)) == WorkerActivity(), "other records are untouched")
            // The last-update time is the coarse clock's (one timer tick), yet every update
            // changes it: the quota tracker takes a change for activity.
            var seen = [activity.lastUpdate]
            for count in 1...50 {
                recorder.update { $0.jobsProcessed = 12 + UInt64(count) }
                seen.append(try reader.activity(of: WorkerID(3)).lastUpdate)
            }
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 != $1 }, "each update leaves a new last-update time: \(seen)")
            #expect(seen.allSatisfy { abs(Double($0) / 1e9 - Posix.wallClockSeconds()) < 5 }, "and it is the wall clock's")
        }
    }

    @Test("states, kinds and exit reasons are stored as fixed numbers that read back, one per case")
    func sharedCodes() {
        // The numbers segments of layout version 3 hold: a change here breaks reading them.
        let states: [WorkerState: UInt64] = [.stopped: 0, .starting: 1, .ready: 2, .stopping: 3, .backoff: 4, .finished: 5, .failed: 6]
        for state in WorkerState.allCases {
            #expect(SharedCodes.code(state) == states[state], "\(state)")
            #expect(SharedCodes.state(SharedCodes.code(state)) == state)
        }
        #expect(SharedCodes.state(99) == .stopped)
        for kind in [WorkerKind.reactor, .job, .service] { #expect(SharedCodes.kind(SharedCodes.code(kind)) == kind) }
        #expect(SharedCodes.kind(7) == nil)
        let reasons: [ExitReason] = [
            .cleanExit, .crash, .signal, .bootFailure, .terminate, .fatal, .shutdown, .scaleDown, .restart, .stopped, .quota, .hang,
        ]
        #expect(Set(reasons) == Set(ExitReason.allCases), "a new reason needs the next free number here and in SharedCodes")
        for (number, reason) in reasons.enumerated() {
            #expect(SharedCodes.code(reason) == UInt64(number), "\(reason)")
            #expect(SharedCodes.reason(UInt64(number)) == reason)
        }
        #expect(ExitReason.allCases.allSatisfy { SharedCodes.code($0) < UInt64(SharedLayout.Exits.capacity) })
        #expect(SharedCodes.reason(12) == nil)
    }

    @Test("a part left mid-write by a writer that is gone is read as it is, and the next write repairs it")
    func stuckWriteOfAGoneWriter() throws {
        try withSegment { segment, _ in
            let base = segment.slotBase(WorkerID(1))
            typealias A = SharedLayout.Activity
            // Slot 1 has no process (pid 0): its activity part stays odd, as a writer killed
            // between its two stores leaves it. Readers once spun on it for good.
            segment.store(base + A.sequence, 7)
            segment.store(base + A.jobsProcessed, 5)
            let reader = PoolStateReader(segment: segment)
            let stuck = try reader.activity(of: WorkerID(1))
            #expect(stuck.jobsProcessed == 5)
            #expect(reader.records().activity(of: WorkerID(1)).jobsProcessed == 5)
            #expect(reader.snapshot().workers[0].activity.jobsProcessed == 5)
            segment.write(sequenceAt: base + A.sequence) { segment.store(base + A.jobsProcessed, 6) }
            #expect(segment.load(base + A.sequence) == 8, "the write rounded 7 down to 6, then made it odd and even again")
            let repaired = try reader.activity(of: WorkerID(1))
            #expect(repaired.jobsProcessed == 6)
        }
    }

    @Test("a records copy stays as it was taken while later copies see later writes (the reader reuses a copy's storage only once nobody holds it)")
    func recordsCopiesStayPut() throws {
        try withSegment { segment, _ in
            let base = segment.slotBase(WorkerID(1))
            typealias A = SharedLayout.Activity
            func count(_ value: UInt64) { segment.write(sequenceAt: base + A.sequence) { segment.store(base + A.jobsProcessed, value) } }
            let reader = PoolStateReader(segment: segment)
            count(1)
            let first = reader.records()
            count(2)
            let second = reader.records()
            #expect(first.activity(of: WorkerID(1)).jobsProcessed == 1, "a copy held is not written over")
            #expect(second.activity(of: WorkerID(1)).jobsProcessed == 2)
            count(3)
            // Copies released: their storage may be reused, and the next copy reads the segment anew.
            for expected in UInt64(3)...5 {
                #expect(reader.records().activity(of: WorkerID(1)).jobsProcessed == expected)
                count(expected + 1)
            }
            #expect(first.activity(of: WorkerID(1)).jobsProcessed == 1 && second.activity(of: WorkerID(1)).jobsProcessed == 2)
        }
    }

    @Test("worker ids outside the slots are refused (testWrongWorkerId, testWorkerIdOutOfRange)")
    func invalidIDs() throws {
        try withSegment { segment, pool in
            let reader = try PoolStateReader(pool: pool.name)
            #expect(throws: SharedStateError.self) { try reader.activity(of: WorkerID(0)) }
            #expect(throws: SharedStateError.self) { try reader.activity(of: WorkerID(11)) }
            #expect(throws: SharedStateError.self) { try WorkerActivityRecorder(segmentName: segment.name, id: WorkerID(11)) }
        }
    }

    @Test("the segment is mode 0600 and a reader maps it read-only")
    func modes() throws {
        try withSegment { segment, pool in
            let (owner, mode) = try Posix.sharedMemoryOwnerAndMode(name: segment.name)
            #expect(owner == Posix.userID)
            #expect(mode == 0o600)
            let reader = try PoolStateReader(pool: pool.name)
            #expect(!reader.segment.isWritable)
        }
    }

    @Test("an unknown pool is reported as not found, and a segment of another layout is refused")
    func notFoundAndBadLayout() throws {
        #expect(throws: SharedStateError.self) { try PoolSnapshot.read(pool: "no-such-pool-\(Posix.processID)") }
        let name = "/pooltop-test-garbage-\(Posix.processID)"
        let mapping = try Posix.createSharedMemory(name: name, size: 4096)
        mapping.unmap()
        defer { Posix.unlinkSharedMemory(name: name) }
        #expect(throws: SharedStateError.self) { try SharedSegment.open(name: name, writable: false) }
    }

    @Test("the /proc stat parser reads CPU ticks and resident pages, even with spaces in the command name")
    func procStat() throws {
        let line = Array("1234 (my (odd) worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 500 1000000 321 18446744073709551615\n".utf8)
        let figures = try #require(ProcStat.parse(line[...]))
        #expect(figures.cpuTicks == 12)
        #expect(figures.rssPages == 321)
    }

    @Test("the /proc stat reader gives a zombie's state, parent, threads and wait status (field 52)")
    func procStatFields() throws {
        // A line of Linux 6.18 for a process that exited with code 5 (wait status 0x500).
        let fields = ["Z", "77"] + (5...19).map(String.init) + ["3"] + (21...51).map(String.init) + ["1280"]
        let line = Array("4321 (a (b) c) \(fields.joined(separator: " "))\n".utf8)
        let stat = try #require(ProcStat(line[...]))
        #expect(stat.hasEnded && stat.parent == 77 && stat.threads == 3 && stat.exitCode == 0x500)
        #expect(stat.number(53) == 0)
    }
}

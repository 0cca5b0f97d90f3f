import Glibc
import NIOCore
import Synchronization
import Testing

@testable import PoolEngine

/// Lanes (decision 0031) between a sender and a real demo job worker process: what goes through
/// the shared memory, what goes by the socket, and what closes a connection.
@Suite("Job lanes between processes", .serialized)
struct JobLaneProcessTests {
    /// Connects to `path` and passes a new lane with the first frame, as a spinning sender does;
    /// with `keepingAMapping`, also a mapping of the lane's file of the test's own, to write in it
    /// what no sender would (the caller unmaps it).
    private func connectWithLane(_ path: String, keepingAMapping: Bool = false) throws -> (Int32, JobLane, Posix.Mapping?) {
        let fd = try Posix.connectUnixSocket(path)
        let (lane, shared) = try JobLane.create()
        defer { Posix.close(shared) }
        let raw = keepingAMapping ? try Posix.mapPassedSharedMemory(shared, size: JobLane.size, name: "the test's view of a lane") : nil
        var frame = ByteBuffer()
        JobFrame.lane(bytes: UInt32(JobLane.size)).write(to: &frame)
        #expect(try Posix.send(fd, Array(frame.readableBytesView), passing: [shared]) == frame.readableBytes)
        return (fd, lane, raw)
    }

    /// The answer the worker puts in `lane`, waited for up to 10 s.
    private func laneAnswer(_ lane: JobLane) throws -> JobFrame? {
        let until = Posix.monotonicNanoseconds() + 10_000_000_000
        while Posix.monotonicNanoseconds() < until {
            if let answer = try lane.takeAnswer() { return answer }
            Posix.yieldProcessor()
        }
        return nil
    }

    @Test("a raw sender's lane: answers and, while the worker polls it, requests go through shared memory; what does not fit goes by the socket; a damaged lane or a misplaced lane frame closes only that connection")
    func rawLane() async throws {
        let (fixture, running, path) = try await RawJobSender.oneJobWorker("rawlane")
        let (fd, lane, _) = try connectWithLane(path)
        lane.setClientSpins(true)
        var posted = 0
        for jobID in UInt64(1)...300 {
            lane.expectAnswer(jobID)
            let request = RawJobSender.request(jobID, "echo \(jobID)")
            if lane.post(request) { posted += 1 } else { try Posix.sendAll(fd, Array(request.readableBytesView)) }
            guard case .result(let result)? = try laneAnswer(lane), result.jobID == jobID, result.payload == Array("\(jobID)".utf8) else {
                Issue.record("job \(jobID): no result in the lane")
                break
            }
        }
        // The first request found the lane asleep; after each inline answer the worker polls it.
        #expect(posted > 0, "no request went through the lane in 300 jobs")
        #expect(try !Posix.pollReadable(fd, timeoutMilliseconds: 0), "every answer went through the lane, none by the socket")

        // An answer larger than the lane's area comes by the socket, whole.
        let big = String(repeating: "b", count: JobLane.answerArea.count + 1)
        lane.expectAnswer(1000)
        let bigRequest = RawJobSender.request(1000, "echo \(big)")
        #expect(!lane.post(bigRequest), "the request does not fit either")
        try Posix.sendAll(fd, Array(bigRequest.readableBytesView))
        guard case .result(let result)? = try RawJobSender.readAnswer(fd) else {
            Issue.record("no answer by the socket for a result larger than the lane")
            return
        }
        #expect(result.jobID == 1000 && result.payload == Array(big.utf8))
        #expect(lane.stopWaiting(for: 1000) == .nothing)

        // A lane holding something other than a request: the worker closes that connection.
        var garbage = false
        for jobID in UInt64(2000)..<2300 where !garbage {
            lane.expectAnswer(jobID)
            let request = RawJobSender.request(jobID, "echo x")
            if !lane.post(request) { try Posix.sendAll(fd, Array(request.readableBytesView)) }
            _ = try laneAnswer(lane)
            garbage = lane.post(ByteBuffer(bytes: [0x50, 0x4A, JobFrame.version, 2, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]))
        }
        #expect(garbage, "the lane was never polled after an answer")
        #expect(try RawJobSender.isClosedByWorker(fd), "the connection is closed")
        Posix.close(fd)

        // A sender that leaves the lane half-written (it took the inbox for a post and never
        // finished): the worker does not stay awake for it forever, it closes that connection.
        let (stuckFD, stuckLane, mapping) = try connectWithLane(path, keepingAMapping: true)
        let raw = try #require(mapping)
        defer { raw.unmap() }
        stuckLane.setClientSpins(true)
        var stuck = false
        for jobID in UInt64(1)..<300 where !stuck {
            stuckLane.expectAnswer(jobID)
            try Posix.sendAll(stuckFD, Array(RawJobSender.request(jobID, "echo s").readableBytesView))
            _ = try laneAnswer(stuckLane)
            // The inbox word (offset 64): polling (1) to writing (2), as a post begins.
            stuck = raw.word(64).pointee.compareExchange(expected: 1, desired: 2, ordering: .acquiringAndReleasing).exchanged
        }
        #expect(stuck, "the lane was never polled after an answer")
        #expect(try RawJobSender.isClosedByWorker(stuckFD), "the connection of a lane left half-written is closed")
        Posix.close(stuckFD)

        // A lane frame after a request, or without its file: that connection is closed.
        let late = try Posix.connectUnixSocket(path)
        try Posix.sendAll(late, Array(RawJobSender.request(1, "echo first").readableBytesView))
        guard case .result? = try RawJobSender.readAnswer(late) else {
            Issue.record("no answer to the first request")
            return
        }
        let (_, laneFile) = try JobLane.create()
        var laneFrame = ByteBuffer()
        JobFrame.lane(bytes: UInt32(JobLane.size)).write(to: &laneFrame)
        _ = try Posix.send(late, Array(laneFrame.readableBytesView), passing: [laneFile])
        Posix.close(laneFile)
        #expect(try RawJobSender.isClosedByWorker(late), "a lane frame that is not the first closes the connection")
        Posix.close(late)
        let bare = try Posix.connectUnixSocket(path)
        try Posix.sendAll(bare, Array(laneFrame.readableBytesView) + Array(RawJobSender.request(1, "echo no").readableBytesView))
        #expect(try RawJobSender.isClosedByWorker(bare), "a lane frame without its file closes the connection")
        Posix.close(bare)

        // The worker survived all of it and still answers.
        try await RawJobSender.expectAliveThenStop(fixture, running)
    }

    @Test("a spinning sender's connection posts its jobs in the lane once the worker polls it, and each answer reaches its job")
    func connectionUsesLane() async throws {
        let (fixture, running, path) = try await RawJobSender.oneJobWorker("connlane")
        let io = try JobClientIO(policy: .spin)
        let connection = try JobConnection.connect(path: path, worker: WorkerID(1), io: io)
        let far = PoolInstant(nanoseconds: Posix.monotonicNanoseconds() + 60_000_000_000)
        for jobID in UInt64(1)...500 {
            let request = JobRequestFrame(jobID: jobID, deadline: 0, priority: 0, weight: 1, senderWorker: 0, senderGroup: 0, payload: Array("echo \(jobID)".utf8))
            guard case .result(let result) = await connection.send(request, deadline: far), result.payload == Array("\(jobID)".utf8) else {
                Issue.record("job \(jobID) did not get its own result")
                break
            }
        }
        #expect(connection.lanePosts.load(ordering: .relaxed) > 0, "no job went through the lane in 500")
        // Its sender quiet, the worker stops looking at the lane and sleeps: a worker that kept
        // spinning would burn the whole half second (50 ticks at 100 Hz); a sleeping one a few at most.
        let pid = try #require(fixture.pool.snapshot()?.workers.first?.pid)
        try await Task.sleep(for: .milliseconds(100))
        let before = try #require(ProcStat(process: "\(pid)")?.cpuTicks)
        try await Task.sleep(for: .milliseconds(500))
        let after = try #require(ProcStat(process: "\(pid)")?.cpuTicks)
        #expect(after - before < 25, "the idle worker used \(after - before) ticks of CPU in 500 ms")
        // Slower than the sender's wait and the worker's look at the lane: by the socket, answered all the same.
        let slow = JobRequestFrame(jobID: 501, deadline: 0, priority: 0, weight: 1, senderWorker: 0, senderGroup: 0, payload: Array("sleep 5".utf8))
        guard case .result(let result) = await connection.send(slow, deadline: far) else {
            Issue.record("the slow job did not get its result")
            return
        }
        #expect(String(decoding: result.payload, as: UTF8.self).hasPrefix("slept 5 ms"))
        connection.close()
        io.shutdown()
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}

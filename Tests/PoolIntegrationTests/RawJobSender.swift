import Glibc
import NIOCore
import Testing

@testable import PoolEngine

/// A sender that speaks the job protocol by hand to one demo job worker's socket, as a program
/// in another language would: the frames are built and read here, not by `JobConnection`.
enum RawJobSender {
   /// A started pool of one demo job worker, and the path of its job socket.
    static func oneJobWorker(_ name: String) async throws -> (WorkerPoolTests.Fixture, RunningPool, String) {
        let fixture = WorkerPoolTests.Fixture(name)
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 1, name: "jobs"))
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        return (fixture, running, JobServer.socketPath(runtimeDirectory: RuntimeDirectory.path(pool: fixture.name), worker: WorkerID(1)))
    }

    /// The worker still answers a job through the pool; then the pool stops cleanly and leaves nothing behind.
    static func expectAliveThenStop(_ fixture: WorkerPoolTests.Fixture, _ running: RunningPool) async throws {
        #expect(try await fixture.pool.submitJob(Array("echo alive".utf8), to: "jobs").text == "alive")
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    /// A request's bytes.
    static func request(_ jobID: UInt64, _ text: String, priority: Int32 = 0) -> ByteBuffer {
        var bytes = ByteBuffer()
        JobFrame.request(JobRequestFrame(jobID: jobID, deadline: 0, priority: priority, weight: 1, senderWorker: 0, senderGroup: 0, payload: Array(text.utf8)))
            .write(to: &bytes)
        return bytes
    }

    /// The frames read from `fd` until `enough` says so (it sees them all so far), or nil when
    /// the connection closes first (or nothing comes for 10 s).
    private static func frames(from fd: Int32, until enough: ([JobFrame]) -> Bool) throws -> [JobFrame]? {
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var frames: [JobFrame] = []
        while true {
            guard try Posix.pollReadable(fd, timeoutMilliseconds: 10_000) else { return nil }
            let n = try chunk.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, nonBlocking: false) } ?? 0
            if n == 0 { return nil }
            buffer.writeBytes(chunk[0..<n])
            while let frame = try JobFrame.read(from: &buffer) {
                frames.append(frame)
                if enough(frames) { return frames }
            }
        }
    }

    /// The frames read from `fd` up to and with an answer (result or error), or nil when the
    /// connection closes first (or nothing comes for 10 s).
    static func framesUntilAnswer(_ fd: Int32) throws -> [JobFrame]? {
        try frames(from: fd) { $0.last?.answeredJobID != nil }
    }

    /// The next `count` answers (results and errors) read from `fd`, in the order they came;
    /// nil when the connection closes first or nothing comes for 10 s.
    static func answers(_ count: Int, from fd: Int32) throws -> [JobFrame]? {
        try frames(from: fd) { frames in frames.count { $0.answeredJobID != nil } == count }?.filter { $0.answeredJobID != nil }
    }

    /// The answer read from `fd`, or nil when the connection closes first (or in 10 s).
    static func readAnswer(_ fd: Int32) throws -> JobFrame? { try framesUntilAnswer(fd)?.last }

    /// Whether the worker closes `fd` within 10 s, whatever it sends first.
    static func isClosedByWorker(_ fd: Int32) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while try Posix.pollReadable(fd, timeoutMilliseconds: 10_000) {
            if try chunk.withUnsafeMutableBytes({ try Posix.receive(fd, into: $0, nonBlocking: true) }) == 0 { return true }
        }
        return false
    }
}

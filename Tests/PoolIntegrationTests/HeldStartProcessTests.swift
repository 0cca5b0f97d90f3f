import Glibc
import NIOCore
import Testing

@testable import PoolEngine

/// The requests of one read start together (decision 0033), in a real demo job worker process.
@Suite("Requests read together, between processes")
struct HeldStartProcessTests {
    @Test("requests sent in one write start by priority, and a cancel in the same write stops its job before it runs")
    func oneWrite() async throws {
        let (fixture, running, path) = try await RawJobSender.oneJobWorker("heldstart")
        let fd = try Posix.connectUnixSocket(path)
        defer { Posix.close(fd) }
        // One `send` of five frames: a Unix stream socket gives them to the worker's one read.
        var bytes = ByteBuffer()
        for (jobID, text, priority) in [(UInt64(1), "echo low", Int32(0)), (2, "echo high", 7), (3, "echo doomed", 5), (4, "echo mid", 3)] {
            var request = RawJobSender.request(jobID, text, priority: priority)
            bytes.writeBuffer(&request)
        }
        JobFrame.cancel(jobID: 3).write(to: &bytes)
        try Posix.sendAll(fd, Array(bytes.readableBytesView))
        let answers = try #require(try RawJobSender.answers(4, from: fd), "four answers within 10 s")
        let results = answers.compactMap { answer -> String? in
            guard case .result(let result) = answer else { return nil }
            return String(decoding: result.payload, as: UTF8.self)
        }
        #expect(results == ["high", "mid", "low"], "by priority, not by arrival")
        let cancelled = answers.contains { answer in
            guard case .error(let error) = answer else { return false }
            return error.jobID == 3 && error.code == .cancelled && error.message == "cancelled by its sender before it started"
        }
        #expect(cancelled, "job 3 was cancelled before it ran: \(answers)")
        try await RawJobSender.expectAliveThenStop(fixture, running)
    }
}

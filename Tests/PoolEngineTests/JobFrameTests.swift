import NIOCore
import Testing

@testable import PoolEngine

@Suite("Job frames: round trips, malformed input and a fuzz test")
struct JobFrameTests {
    let frames: [JobFrame] = [
        .request(JobRequestFrame(jobID: 7, deadline: 99, priority: -3, weight: 5, senderWorker: 2, senderGroup: 1, payload: Array("hello".utf8))),
        .cancel(jobID: 8),
        .result(JobResultFrame(jobID: 7, worker: 3, queueWaitNanoseconds: 10, runNanoseconds: 20, payload: [1, 2, 3])),
        .error(JobErrorFrame(jobID: 9, worker: 3, code: .rejected, queueWaitNanoseconds: 0, runNanoseconds: 0, message: "full")),
        .closing,
        .started([7]),
        .started([1, 2, 3, UInt64.max]),
        .lane(bytes: 16384),
    ]

    @Test("every kind of frame survives a round trip, fed whole or byte by byte")
    func roundTrip() throws {
        var whole = ByteBuffer()
        for frame in frames { frame.write(to: &whole) }
        var bytes = whole
        var decoded: [JobFrame] = []
        while let frame = try JobFrame.read(from: &bytes) { decoded.append(frame) }
        #expect(decoded == frames)

        var trickle = ByteBuffer()
        decoded = []
        for byte in whole.readableBytesView {
            trickle.writeInteger(byte)
            while let frame = try JobFrame.read(from: &trickle) { decoded.append(frame) }
        }
        #expect(decoded == frames, "negative priority stays negative (amphp-pool bug 27)")
    }

    @Test("a request and a result are laid out byte for byte as docs/ipc-protocol.md says")
    func layout() {
        var buffer = ByteBuffer()
        JobFrame.request(
            JobRequestFrame(jobID: 1, deadline: 2, priority: -3, weight: 4, senderWorker: 5, senderGroup: 6, senderToken: 7, payload: [0xAA])
        ).write(to: &buffer)
        let le64: (UInt8) -> [UInt8] = { [$0, 0, 0, 0, 0, 0, 0, 0] }
        let le32: (UInt8) -> [UInt8] = { [$0, 0, 0, 0] }
        var expected: [UInt8] = [0x50, 0x4A, 3, 1] + le32(41) + le64(1) + le64(2) + [0xFD, 0xFF, 0xFF, 0xFF]
        expected += le32(4) + le32(5) + le32(6) + le64(7) + [0xAA]
        #expect(Array(buffer.readableBytesView) == expected)
        buffer.clear()
        JobFrame.result(JobResultFrame(jobID: 9, worker: 3, queueWaitNanoseconds: 10, runNanoseconds: 20, payload: [])).write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x50, 0x4A, 3, 3] + le32(28) + le64(9) + le32(3) + le64(10) + le64(20))
        buffer.clear()
        JobFrame.lane(bytes: 16384).write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x50, 0x4A, 3, 7] + le32(4) + [0x00, 0x40, 0, 0])
    }

    @Test("bad magic, version, kind, code, short bodies and oversized lengths are refused")
    func malformed() {
        let v = JobFrame.version
        let cases: [[UInt8]] = [
            Array("GET / HTTP".utf8),
            [0x50, 0x4A, 9, 1, 0, 0, 0, 0],
            [0x50, 0x4A, 1, 1, 0, 0, 0, 0],  // version 1 had no `started`: refused, not misread
            [0x50, 0x4A, 2, 1, 0, 0, 0, 0],  // version 2 had no `lane`: refused, not misread
            [0x50, 0x4A, v, 7, 2, 0, 0, 0, 0, 0x40],  // lane with a short body
            [0x50, 0x4A, v, 77, 0, 0, 0, 0],
            [0x50, 0x4A, v, 1, 4, 0, 0, 0, 1, 2, 3, 4],
            [0x50, 0x4A, v, 4] + [29, 0, 0, 0] + [UInt8](repeating: 0, count: 12) + [99] + [UInt8](repeating: 0, count: 16),
            [0x50, 0x4A, v, 1, 0xFF, 0xFF, 0xFF, 0x7F],
            [0x50, 0x4A, v, 6, 0, 0, 0, 0],  // started with no job id
            [0x50, 0x4A, v, 6, 7, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7],  // started with a partial id
        ]
        for bytes in cases {
            var buffer = ByteBuffer(bytes: bytes)
            #expect(throws: JobFrameError.self, "\(bytes)") { _ = try JobFrame.read(from: &buffer) }
        }
    }

    @Test("random and truncated input never crashes the decoder")
    func fuzz() throws {
        var generator = SystemRandomNumberGenerator()
        var valid = ByteBuffer()
        for frame in frames { frame.write(to: &valid) }
        let validBytes = Array(valid.readableBytesView)
        var outcomes = (frames: 0, errors: 0, incomplete: 0)
        for round in 0..<5_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0: bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1: bytes = Array(validBytes.prefix(Int.random(in: 0...validBytes.count, using: &generator)))
            default:
                bytes = validBytes
                for _ in 0..<3 { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                while let _ = try JobFrame.read(from: &buffer, maximumBody: 1 << 20) { outcomes.frames += 1 }
                outcomes.incomplete += 1
            } catch {
                outcomes.errors += 1
            }
        }
        #expect(outcomes.errors > 0 && outcomes.incomplete > 0 && outcomes.frames > 0)
    }
}

import Testing

@testable import PoolEngine

@Suite("Control frames: a pure decoder fed byte by byte, split, garbage and oversize")
struct FrameDecoderTests {
    func frame(kind: UInt8, _ payload: [UInt8]) -> [UInt8] {
        ControlFrame(kind: kind, payload: payload).encoded
    }

    @Test("the header is magic, version, kind and a little-endian length")
    func headerLayout() {
        let bytes = frame(kind: 7, [0xAA, 0xBB])
        #expect(bytes == [0x50, 0x54, 1, 7, 2, 0, 0, 0, 0xAA, 0xBB])
    }

    @Test("frames fed one byte at a time come out whole, in order")
    func byteByByte() throws {
        var decoder = FrameDecoder()
        let stream = frame(kind: 1, Array("hello".utf8)) + frame(kind: 2, []) + frame(kind: 3, [9])
        var frames: [ControlFrame] = []
        for byte in stream {
            decoder.append([byte])
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(frames.map(\.kind) == [1, 2, 3])
        #expect(frames[0].payload == Array("hello".utf8))
        #expect(frames[1].payload.isEmpty)
        #expect(decoder.bufferedCount == 0)
    }

    @Test("a partial frame waits for the rest")
    func partial() throws {
        var decoder = FrameDecoder()
        let bytes = frame(kind: 1, [1, 2, 3, 4])
        decoder.append(bytes[0..<9])
        #expect(try decoder.next() == nil)
        decoder.append(bytes[9...])
        #expect(try decoder.next()?.payload == [1, 2, 3, 4])
    }

    @Test("garbage is refused by the magic check, naming the bytes")
    func garbage() {
        var decoder = FrameDecoder()
        decoder.append(Array("GET / HTTP/1.1".utf8))
        #expect(throws: FrameError(code: .badMagic(0x47, 0x45))) { try decoder.next() }
    }

    @Test("an unknown protocol version is refused")
    func version() {
        var decoder = FrameDecoder()
        decoder.append([0x50, 0x54, 9, 1, 0, 0, 0, 0])
        #expect(throws: FrameError(code: .unsupportedVersion(9))) { try decoder.next() }
    }

    @Test("a length above the limit is refused before any payload is buffered")
    func oversize() {
        var decoder = FrameDecoder(maximumPayload: 16)
        decoder.append([0x50, 0x54, 1, 1, 17, 0, 0, 0])
        #expect(throws: FrameError(code: .oversized(length: 17, limit: 16))) { try decoder.next() }
        #expect(FrameError(code: .oversized(length: 17, limit: 16)).description.contains("'length'"))
    }

    @Test("messages survive an encode and decode round trip")
    func roundTrip() throws {
        let pool = try PoolValidator.validate(
            name: "p", stopTimeout: .seconds(3),
            groups: [WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 1, maxWorkers: 2, restart: .limited(maxRestarts: 3, window: .seconds(9)))],
            entryPoints: nil)
        let bootstrap = WorkerBootstrap(workerID: WorkerID(2), generation: 5, pool: pool, watcherPID: 42, logLevel: "debug")
        var decoder = FrameDecoder()
        decoder.append(try ControlCodec.encode(WatcherMessage.bootstrap(bootstrap)).encoded)
        decoder.append(try ControlCodec.encode(WatcherMessage.stop(StopRequest(reason: .scaleDown, timeout: .seconds(1)))).encoded)
        #expect(try ControlCodec.decodeWatcherMessage(try #require(try decoder.next())) == .bootstrap(bootstrap))
        #expect(try ControlCodec.decodeWatcherMessage(try #require(try decoder.next())) == .stop(StopRequest(reason: .scaleDown, timeout: .seconds(1))))
        let record = LogRecord(level: "info", message: "hi", metadata: ["k": "v"], timestamp: 1)
        for message in [WorkerMessage.ready, .log(record), .exiting(.fatal("x")), .exiting(.clean)] {
            let frame = try ControlCodec.encode(message)
            #expect(try ControlCodec.decodeWorkerMessage(frame) == message)
        }
    }

    @Test("a well-framed payload that is not a message is refused with its kind")
    func undecodablePayload() {
        let frame = ControlFrame(kind: ControlCodec.Kind.log.rawValue, payload: Array("{not json".utf8))
        #expect(throws: FrameError.self) { try ControlCodec.decodeWorkerMessage(frame) }
        #expect(throws: FrameError(code: .unknownKind(99))) { try ControlCodec.decodeWorkerMessage(ControlFrame(kind: 99, payload: [])) }
    }
}

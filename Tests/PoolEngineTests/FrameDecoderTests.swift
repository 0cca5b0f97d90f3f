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
        #expect(bytes == [0x50, 0x54, ControlFrame.version, 7, 2, 0, 0, 0, 0xAA, 0xBB])
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
        decoder.append([0x50, 0x54, ControlFrame.version, 1, 17, 0, 0, 0])
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
        decoder.append(ControlCodec.encode(WatcherMessage.bootstrap(bootstrap)).encoded)
        decoder.append(ControlCodec.encode(WatcherMessage.stop(StopRequest(reason: .scaleDown, timeout: .seconds(1)))).encoded)
        #expect(try ControlCodec.decodeWatcherMessage(try #require(try decoder.next())) == .bootstrap(bootstrap))
        #expect(try ControlCodec.decodeWatcherMessage(try #require(try decoder.next())) == .stop(StopRequest(reason: .scaleDown, timeout: .seconds(1))))
        let record = LogRecord(level: "info", message: "hi", metadata: ["k": "v"], timestamp: 1)
        let long = LogRecord(level: "error", message: String(repeating: "é", count: 10_000), metadata: [:], timestamp: -0.5)
        let messages: [WorkerMessage] = [
            .ready, .log(record), .log(long), .exiting(.fatal("x")), .exiting(.clean), .exiting(.terminate("t")), .exiting(.crash("c")),
            .scaleRequest(GroupID(7)), .activity,
        ]
        for message in messages {
            #expect(try ControlCodec.decodeWorkerMessage(ControlCodec.encode(message)) == message)
        }
    }

    @Test("a bootstrap with every field of every type set to a value other than its default survives the round trip")
    func kitchenSinkBootstrap() throws {
        let bootstrap = ControlPayloadSamples.kitchenSink
        let frame = ControlCodec.encode(WatcherMessage.bootstrap(bootstrap))
        #expect(try ControlCodec.decodeWatcherMessage(frame) == .bootstrap(bootstrap))
        // Each group differs from the others, so a field read into the wrong group would show.
        #expect(Set(bootstrap.pool.groups).count == bootstrap.pool.groups.count)
    }

    // The codec writes each stored property by hand: a property added to one of these types and
    // not to `ControlPayloads.swift` is lost on the way to the worker. These counts are the
    // properties the codec writes; when one changes, encode the new property, then update it.
    @Test("the payload codec covers every stored property of the types it encodes")
    func storedPropertiesCovered() {
        let bootstrap = ControlPayloadSamples.kitchenSink
        let group = bootstrap.pool.groups[0]
        let program = try! #require(bootstrap.pool.groups[1].program)  // Safe: the sample sets it.
        guard case .probe(let probe) = program.readiness else { Issue.record("the sample's program has a probe"); return }
        let counts: [(String, Any, Int)] = [
            ("WorkerBootstrap", bootstrap, 8), ("PoolDescription", bootstrap.pool, 4), ("PoolReserve", bootstrap.pool.reserve, 3),
            ("GroupDescription", group, 28), ("WorkerRunner", group.runner, 2), ("RestartStrategy", group.restart, 2),
            ("RestartBackoff", group.restart.backoff, 4), ("StrategyDescriptor", group.strategies.values.first!, 2),
            ("JobExecutorConfiguration", group.jobExecutor!, 3), ("ScalingPolicy", group.scaling, 2), ("RecyclePolicy", group.recycle!, 6),
            ("Listener", group.listeners[0], 5), ("ResolvedDependency", group.after[0], 2), ("ExternalProgram", program, 8),
            ("ReadinessProbe", probe, 5), ("StopRequest", StopRequest(reason: .shutdown, timeout: .zero), 2),
            ("LogRecord", LogRecord(level: "", message: "", timestamp: 0), 4),
        ]
        for (name, value, expected) in counts {
            #expect(Mirror(reflecting: value).children.count == expected, "\(name): encode the new property in ControlPayloads.swift")
        }
    }

    @Test("a payload cut short or with bytes after its last field is refused, naming the message and the field")
    func malformedPayloads() throws {
        let frame = ControlCodec.encode(WatcherMessage.bootstrap(ControlPayloadSamples.kitchenSink))
        for length in [0, 1, 5, frame.payload.count / 2, frame.payload.count - 1] {
            let cut = ControlFrame(kind: frame.kind, payload: Array(frame.payload.prefix(length)))
            #expect(throws: FrameError.self) { try ControlCodec.decodeWatcherMessage(cut) }
        }
        let extra = ControlFrame(kind: frame.kind, payload: frame.payload + [0])
        let error = try #require(throws: FrameError.self) { try ControlCodec.decodeWatcherMessage(extra) }
        #expect(error.description.contains("the bootstrap has an invalid end"))
        let truncated = try #require(throws: FrameError.self) {
            try ControlCodec.decodeWorkerMessage(ControlFrame(kind: ControlCodec.Kind.log.rawValue, payload: [5, 0x61]))
        }
        #expect(truncated.description == "control frame: payload of kind 17 cannot be decoded: the log record ends in the middle of log.level")
        let unknown = try #require(throws: FrameError.self) {
            try ControlCodec.decodeWorkerMessage(ControlFrame(kind: ControlCodec.Kind.exiting.rawValue, payload: [9]))
        }
        #expect(unknown.description.contains("the exit report has an invalid exit.kind: kind 9"))
    }

    @Test("a well-framed payload that is not a message is refused with its kind")
    func undecodablePayload() {
        let frame = ControlFrame(kind: ControlCodec.Kind.log.rawValue, payload: Array("{not a log record".utf8))
        #expect(throws: FrameError.self) { try ControlCodec.decodeWorkerMessage(frame) }
        #expect(throws: FrameError(code: .unknownKind(99))) { try ControlCodec.decodeWorkerMessage(ControlFrame(kind: 99, payload: [])) }
    }
}

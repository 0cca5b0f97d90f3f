import Foundation
import NIOCore
import PoolConsole
import PoolDemo
import PoolEngine

/// The six inputs `make fuzz` throws random bytes at (docs/reliability.md, "Fuzzing").
///
/// Each harness feeds bytes to the code that reads them in production and checks what that
/// code promises: never a trap, a hang or a leak, and an error where the input is bad. A broken
/// promise that is not a crash is thrown as a ``FuzzFinding``; the fuzzer binary turns it into a
/// crash (so libFuzzer saves the input), the test suite replays every saved input and fails.
public enum FuzzHarness: String, CaseIterable, Sendable {
    /// A control connection's bytes: split into lines as the server does, each parsed as a request.
    case control
    /// A job connection's bytes: frames read as both ends read them, whole and in two parts.
    case jobFrame = "job-frame"
    /// A configuration file's text: parsed and validated as `pooltop run --config` does.
    case config
    /// A pool's shared-memory segment: read and shown as `pooltop list`, `top --once` and `attach` do.
    case sharedMemory = "shared-memory"
    /// A control channel's bytes: framed, and each payload read as a worker reads the
    /// watcher's messages and as the watcher reads a worker's.
    case controlFrame = "control-frame"
    /// An HTTP connection's bytes: request heads read as the demo reactor reads them, whole and cut in two.
    case httpRequest = "http-request"

    /// Runs one input through the harness.
    public func run(_ bytes: [UInt8]) throws(FuzzFinding) {
        switch self {
        case .control: try Self.control(bytes)
        case .jobFrame: try Self.jobFrames(bytes)
        case .config: try Self.config(bytes)
        case .sharedMemory: try Self.sharedMemory(bytes)
        case .controlFrame: try Self.controlFrames(bytes)
        case .httpRequest: try Self.httpRequests(bytes)
        }
    }

    // MARK: - HTTP requests

    /// The statuses a head may be refused with: each says what the client must change.
    private static let refusals: Set<HTTPStatus> = [.badRequest, .requestHeaderFieldsTooLarge, .contentTooLarge, .notImplemented, .httpVersionNotSupported]

    private static func httpRequests(_ bytes: [UInt8]) throws(FuzzFinding) {
        let whole = readRequests(bytes, cut: nil)
        // The same bytes arriving in two reads (the first byte picks where they are cut) must
        // give the same requests: the reader resumes its search where the first read stopped.
        if let first = bytes.first, bytes.count > 1 {
            let cut = Int(first) % bytes.count
            let split = readRequests(bytes, cut: cut)
            guard split == whole else { throw FuzzFinding("read whole: \(whole); cut at \(cut): \(split)") }
        }
        for head in whole.heads {
            guard !head.target.isEmpty, head.target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw FuzzFinding("a target with invisible characters was accepted: \(head.target.debugDescription)")
            }
            guard head.bodyLength <= HTTPRequestParser.maximumBodyLength, head.minorVersion == 0 || head.minorVersion == 1 else {
                throw FuzzFinding("a head beyond the limits was accepted: \(head)")
            }
        }
        if let error = whole.error {
            guard refusals.contains(error.status), !error.message.isEmpty, !error.message.contains("\n") else {
                throw FuzzFinding("a refusal that does not say what is wrong: \(error)")
            }
        }
    }

    private struct ReadRequests: Equatable {
        var heads: [HTTPRequestHead] = []
        var error: HTTPRequestError?
    }

    /// Reads heads one after another as the reactor does (each body skipped), the bytes given
    /// whole or, with `cut`, first up to it and then all of them, searching on from where the
    /// first search stopped.
    private static func readRequests(_ bytes: [UInt8], cut: Int?) -> ReadRequests {
        var read = ReadRequests()
        var offset = 0
        var resumeAt = 0
        var available = cut ?? bytes.count
        while offset < bytes.count {
            // Everything of the first read is used (or it was empty): the second arrives.
            if offset >= available { available = bytes.count }
            let result = bytes[offset..<available].withUnsafeBytes { part in
                Result { () throws(HTTPRequestError) in
                    (try HTTPRequestParser.firstHead(in: part, searchingFrom: resumeAt), HTTPRequestParser.resumeSearch(after: part))
                }
            }
            switch result {
            case .failure(let error):
                read.error = error
                return read
            case .success((nil, let resume)):
                guard available < bytes.count else { return read }
                resumeAt = resume
                available = bytes.count
            case .success((let (head, length)?, _)):
                read.heads.append(head)
                offset += length + head.bodyLength
                resumeAt = 0
            }
        }
        return read
    }

    // MARK: - Control frames

    private static func controlFrames(_ bytes: [UInt8]) throws(FuzzFinding) {
        // Random bytes almost never hold a frame header, so the first byte below 0x80 picks a
        // message kind and the rest is its payload: the fuzzer then reaches the payload readers.
        // From 0x80 on, the bytes are read raw, as a channel reads them.
        var frames: [ControlFrame] = []
        if let mode = bytes.first, mode < 0x80 {
            let kinds = ControlCodec.Kind.allCases
            frames.append(ControlFrame(kind: kinds[Int(mode) % kinds.count].rawValue, payload: Array(bytes.dropFirst())))
        } else {
            var decoder = FrameDecoder(maximumPayload: 64 * 1024)
            decoder.append(bytes.dropFirst())
            while true {
                do {
                    guard let frame = try decoder.next() else { break }
                    frames.append(frame)
                } catch {
                    guard error.description.hasPrefix("control frame: ") else { throw FuzzFinding("a framing error that says nothing: \(error)") }
                    break
                }
            }
        }
        for frame in frames {
            try readBack(frame, ControlCodec.decodeWatcherMessage, ControlCodec.encode)
            try readBack(frame, ControlCodec.decodeWorkerMessage, ControlCodec.encode)
        }
    }

    /// A payload read is either a clear error or a message that writes and reads back to the
    /// same bytes (compared as bytes: a NaN read in is not equal to itself).
    private static func readBack<Message>(
        _ frame: ControlFrame, _ decode: (ControlFrame) throws(FrameError) -> Message, _ encode: (Message) -> ControlFrame
    ) throws(FuzzFinding) {
        let message: Message
        do {
            message = try decode(frame)
        } catch {
            guard error.description.hasPrefix("control frame: ") else { throw FuzzFinding("a payload error that says nothing: \(error)") }
            return
        }
        let written = encode(message)
        let again: Message
        do {
            again = try decode(written)
        } catch {
            throw FuzzFinding("kind \(frame.kind): a message read, written and read again fails: \(error)")
        }
        guard encode(again) == written else { throw FuzzFinding("kind \(frame.kind): a message reads back different: \(message) then \(again)") }
    }

    // MARK: - Control requests

    private static func control(_ bytes: [UInt8]) throws(FuzzFinding) {
        // The server's line decoder: lines end at "\n"; a longer one closes the connection.
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            guard line.count <= 64 * 1024 else { return }
            do {
                _ = try ControlRequest(parsing: String(decoding: line, as: UTF8.self))
            } catch {
                // The refusal goes back to the client as one line of JSON it can parse.
                let response = JSONValue.object(error.response)
                let text = response.serialized
                guard !text.contains("\n") else { throw FuzzFinding("a refusal spans lines: \(text)") }
                guard let parsed = try? JSONValue.parse(text) else { throw FuzzFinding("a refusal is not valid JSON: \(text)") }
                guard parsed == response else { throw FuzzFinding("a refusal reads back as \(parsed), not \(response)") }
                guard case .string(let code)? = error.response["code"], !code.isEmpty else {
                    throw FuzzFinding("a refusal has no code: \(text)")
                }
            }
        }
    }

    // MARK: - Job frames

    private static func jobFrames(_ bytes: [UInt8]) throws(FuzzFinding) {
        let whole = decodeFrames([bytes])
        // A connection gets its bytes in pieces: the split must not change what is read.
        let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        let split = decodeFrames([Array(bytes[..<cut]), Array(bytes[cut...])])
        guard whole.frames == split.frames, (whole.error == nil) == (split.error == nil) else {
            throw FuzzFinding("bytes read whole gave \(whole), read cut at \(cut) gave \(split)")
        }
        for frame in whole.frames {
            var buffer = ByteBuffer()
            frame.write(to: &buffer)
            let again = try? JobFrame.read(from: &buffer)
            guard again == frame, buffer.readableBytes == 0 else {
                throw FuzzFinding("frame \(frame) written and read back is \(String(describing: again))")
            }
        }
    }

    private static func decodeFrames(_ parts: [[UInt8]]) -> (frames: [JobFrame], error: JobFrameError?) {
        var buffer = ByteBuffer()
        var frames: [JobFrame] = []
        for part in parts {
            buffer.writeBytes(part)
            do {
                while let frame = try JobFrame.read(from: &buffer) { frames.append(frame) }
            } catch {
                return (frames, error)
            }
        }
        return (frames, nil)
    }

    // MARK: - Configuration

    /// The demo's entry points: the seed corpus holds the demo's configuration.
    private static let entryPoints = DemoPool.entryPoints

    private static func config(_ bytes: [UInt8]) throws(FuzzFinding) {
        do {
            let (configuration, description) = try PoolConfiguration.parse(
                yaml: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml", entryPoints: entryPoints)
            guard description.groups.count == configuration.groups.count else {
                throw FuzzFinding("\(configuration.groups.count) groups configured, \(description.groups.count) described")
            }
        } catch let error as ConfigurationError {
            guard !error.message.isEmpty else { throw FuzzFinding("an error with no message: \(error)") }
            if let line = error.line, line < 1 { throw FuzzFinding("an error on line \(line): \(error)") }
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            throw FuzzFinding("parse threw \(type(of: error)), not a ConfigurationError: \(error)")
        }
    }

    // MARK: - Shared memory

    private static func sharedMemory(_ bytes: [UInt8]) throws(FuzzFinding) {
        let pool = "fuzz-\(getpid())"
        let path = "/dev/shm" + PoolStateReader.segmentName(pool: pool)
        // Random words almost never hold the magic, the version and the layout, so the first
        // byte chooses how much of a plausible header to lay over them: the fuzzer then reaches
        // the records, not only the header checks.
        typealias L = SharedLayout
        typealias H = SharedLayout.Header
        var segment = bytes
        let mode = segment.first ?? 0
        segment += [UInt8](repeating: 0, count: (8 - segment.count % 8) % 8)
        if segment.count < L.headerSize { segment += [UInt8](repeating: 0, count: L.headerSize - segment.count) }
        func word(at offset: Int) -> UInt64 {
            offset + 8 <= segment.count ? segment[offset..<offset + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } : 0
        }
        func put(_ value: UInt64, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { segment.replaceSubrange(offset..<offset + 8, with: $0) }
        }
        let groups = Int(min(word(at: H.groupCount), 4096))
        let slots = Int(min(word(at: H.slotCount), 4096))
        let slotOffset = L.headerSize + groups * L.groupRecordSize
        if mode & 1 == 0 {
            put(L.magic, at: H.magic)
            put(L.version, at: H.version)
        }
        if mode & 2 == 0 {
            put(UInt64(L.headerSize), at: H.headerSize)
            put(UInt64(L.headerSize), at: H.groupOffset)
            put(UInt64(L.groupRecordSize), at: H.groupRecordSize)
            put(UInt64(slotOffset), at: H.slotOffset)
            put(UInt64(L.slotRecordSize), at: H.slotRecordSize)
        }
        // Sequence words are made even. A part that stays mid-write costs each read of it 1 ms
        // to 1 s by design (its writer may be merely preempted or stopped; SharedStateTests
        // covers that path), which would slow this harness to a few inputs a second.
        let sequences = (0..<groups).map { L.headerSize + $0 * L.groupRecordSize + L.Group.sequence }
            + (0..<slots).flatMap { slot in
                [L.Lifecycle.sequence, L.Activity.sequence, L.Latency.sequence].map { slotOffset + slot * L.slotRecordSize + $0 }
            }
        for offset in sequences where offset < segment.count { segment[offset] &= ~1 }
        unlink(path)
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { fatalError("cannot create \(path): errno \(errno)") }
        let written = segment.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        defer { unlink(path) }
        guard written == segment.count else { fatalError("wrote \(written) of \(segment.count) bytes to \(path)") }

        let reader: PoolStateReader
        do {
            reader = try PoolStateReader(pool: pool)
        } catch let error as SharedStateError {
            guard !error.message.isEmpty else { throw FuzzFinding("a shared-state error with no message") }
            return
        } catch {
            throw FuzzFinding("opening threw \(type(of: error)), not a SharedStateError: \(error)")
        }
        // `pooltop list` and `top --once`: one snapshot; `attach`: snapshots a second apart, with trends.
        let first = reader.snapshot()
        let second = reader.snapshot()
        for worker in second.workers { _ = try? reader.activity(of: worker.id) }
        // `pooltop status`: the watcher's JSON, decoded by the client.
        guard let line = try? JSONValue.encodeLine(second) else { throw FuzzFinding("a snapshot that cannot be encoded") }
        do {
            _ = try JSONDecoder().decode(PoolSnapshot.self, from: Data(line.utf8))
        } catch {
            throw FuzzFinding("status JSON that does not decode (\(error)): \(line.prefix(300))")
        }
        var trends = ConsoleTrends()
        trends.update(first)
        trends.update(second)
        var state = ConsoleState(readOnly: true)
        state.focus = .workers
        for size in [(120, 40), (20, 5)] {
            _ = ConsoleView.render(
                snapshot: second, events: [], state: state, trends: trends, poolName: pool, isHosting: false,
                width: size.0, height: size.1)
        }
    }
}

/// A promise of the code under fuzzing that an input broke (other than by crashing).
public struct FuzzFinding: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Encodes control messages into frames and back. Payloads are in ``ByteWriter``'s encoding
/// (`ControlPayloads.swift`); the frame kind says which message it is, so a reader rejects
/// what it does not know by number.
package enum ControlCodec {
    package enum Kind: UInt8, CaseIterable {
        case bootstrap = 1
        case stop = 2
        case ready = 16
        case log = 17
        case exiting = 18
        case scaleRequest = 19
        case activity = 20
    }

    package static func encode(_ message: WatcherMessage) -> ControlFrame {
        switch message {
        case .bootstrap(let bootstrap): return frame(.bootstrap) { $0.bootstrap(bootstrap) }
        case .stop(let request): return frame(.stop) { $0.stopRequest(request) }
        }
    }

    package static func encode(_ message: WorkerMessage) -> ControlFrame {
        switch message {
        case .ready: return frame(.ready)
        case .log(let record): return frame(.log) { $0.logRecord(record) }
        case .exiting(let report): return frame(.exiting) { $0.exitReport(report) }
        case .scaleRequest(let group): return frame(.scaleRequest) { $0.unsigned(group.rawValue) }
        case .activity: return frame(.activity)
        }
    }

    private static func frame(_ kind: Kind, _ write: (inout ByteWriter) -> Void = { _ in }) -> ControlFrame {
        var output = ByteWriter()
        write(&output)
        return ControlFrame(kind: kind.rawValue, payload: output.bytes)
    }

    package static func decodeWatcherMessage(_ frame: ControlFrame) throws(FrameError) -> WatcherMessage {
        switch Kind(rawValue: frame.kind) {
        case .bootstrap: return .bootstrap(try payload(of: frame, "the bootstrap") { input throws(ByteReader.Malformed) in try input.bootstrap() })
        case .stop: return .stop(try payload(of: frame, "the stop request") { input throws(ByteReader.Malformed) in try input.stopRequest() })
        default: throw FrameError(code: .unknownKind(frame.kind))
        }
    }

    package static func decodeWorkerMessage(_ frame: ControlFrame) throws(FrameError) -> WorkerMessage {
        switch Kind(rawValue: frame.kind) {
        case .ready: return .ready
        case .log: return .log(try payload(of: frame, "the log record") { input throws(ByteReader.Malformed) in try input.logRecord() })
        case .exiting: return .exiting(try payload(of: frame, "the exit report") { input throws(ByteReader.Malformed) in try input.exitReport() })
        case .scaleRequest:
            return .scaleRequest(try payload(of: frame, "the scale request") { input throws(ByteReader.Malformed) in GroupID(try input.int("group")) })
        case .activity: return .activity
        default: throw FrameError(code: .unknownKind(frame.kind))
        }
    }

    /// Reads the whole payload with `read`: bytes left over mean a writer this build does not know.
    private static func payload<Message>(
        of frame: ControlFrame, _ subject: String, _ read: (inout ByteReader) throws(ByteReader.Malformed) -> Message
    ) throws(FrameError) -> Message {
        var input = ByteReader(frame.payload[...], subject: subject)
        do throws(ByteReader.Malformed) {
            let message = try read(&input)
            guard input.isAtEnd else { throw input.invalid("end", "bytes follow the last field") }
            return message
        } catch {
            throw FrameError(code: .undecodablePayload(kind: frame.kind, detail: error.description))
        }
    }
}

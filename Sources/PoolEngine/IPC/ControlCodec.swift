import FoundationEssentials

/// Encodes control messages into frames and back. Payloads are JSON (the bootstrap carries
/// the whole pool description, whose shape grows with every strategy); the frame kind says
/// which message it is so a reader can reject what it does not know by number.
enum ControlCodec {
    enum Kind: UInt8 {
        case bootstrap = 1
        case stop = 2
        case ready = 16
        case log = 17
        case exiting = 18
        case scaleRequest = 19
        case activity = 20
    }

    static func encode(_ message: WatcherMessage) throws -> ControlFrame {
        switch message {
        case .bootstrap(let bootstrap): return ControlFrame(kind: Kind.bootstrap.rawValue, payload: try json(bootstrap))
        case .stop(let request): return ControlFrame(kind: Kind.stop.rawValue, payload: try json(request))
        }
    }

    static func encode(_ message: WorkerMessage) throws -> ControlFrame {
        switch message {
        case .ready: return ControlFrame(kind: Kind.ready.rawValue, payload: [])
        case .log(let record): return ControlFrame(kind: Kind.log.rawValue, payload: try json(record))
        case .exiting(let report): return ControlFrame(kind: Kind.exiting.rawValue, payload: try json(report))
        case .scaleRequest(let group): return ControlFrame(kind: Kind.scaleRequest.rawValue, payload: try json(group))
        case .activity: return ControlFrame(kind: Kind.activity.rawValue, payload: [])
        }
    }

    static func decodeWatcherMessage(_ frame: ControlFrame) throws(FrameError) -> WatcherMessage {
        switch Kind(rawValue: frame.kind) {
        case .bootstrap: return .bootstrap(try value(WorkerBootstrap.self, frame))
        case .stop: return .stop(try value(StopRequest.self, frame))
        default: throw FrameError(code: .unknownKind(frame.kind))
        }
    }

    static func decodeWorkerMessage(_ frame: ControlFrame) throws(FrameError) -> WorkerMessage {
        switch Kind(rawValue: frame.kind) {
        case .ready: return .ready
        case .log: return .log(try value(LogRecord.self, frame))
        case .exiting: return .exiting(try value(WorkerExitReport.self, frame))
        case .scaleRequest: return .scaleRequest(try value(GroupID.self, frame))
        case .activity: return .activity
        default: throw FrameError(code: .unknownKind(frame.kind))
        }
    }

    private static func json<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try JSONEncoder().encode(value))
    }

    private static func value<T: Decodable>(_ type: T.Type, _ frame: ControlFrame) throws(FrameError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(frame.payload))
        } catch {
            throw FrameError(code: .undecodablePayload(kind: frame.kind, detail: "\(error)"))
        }
    }
}

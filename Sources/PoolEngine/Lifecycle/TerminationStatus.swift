/// How a worker process ended, as the kernel reported it.
public enum TerminationStatus: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The process called `exit` with this code.
    case exited(Int32)
    /// The process was ended by this signal.
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "signal \(signal) (\(signalName(signal)))"
        }
    }
}

func signalName(_ signal: Int32) -> String {
    switch signal {
    case 1: return "SIGHUP"
    case 2: return "SIGINT"
    case 3: return "SIGQUIT"
    case 4: return "SIGILL"
    case 5: return "SIGTRAP"
    case 6: return "SIGABRT"
    case 7: return "SIGBUS"
    case 8: return "SIGFPE"
    case 9: return "SIGKILL"
    case 10: return "SIGUSR1"
    case 11: return "SIGSEGV"
    case 12: return "SIGUSR2"
    case 13: return "SIGPIPE"
    case 14: return "SIGALRM"
    case 15: return "SIGTERM"
    case 28: return "SIGWINCH"
    default: return "SIG\(signal)"
    }
}

/// The number of a signal a program may be stopped with, by name (`TERM` or `SIGTERM`) or number.
func signalNumber(named text: String) -> Int32? {
    if let number = Int32(text) { return (1...64).contains(number) ? number : nil }
    let name = text.hasPrefix("SIG") ? text : "SIG" + text
    return [1, 2, 3, 9, 10, 12, 14, 15, 28].first { signalName($0) == name }
}

extension KeyedEncodingContainer {
    /// An exit as the protocol writes it: `"status":"exited","code":N`, `"status":"signaled",
    /// "signal":N`, or `"status":"not-started"` (events, `pooltop why --json`).
    mutating func encodeExit(_ exit: TerminationStatus?, status: Key, code: Key, signal: Key) throws {
        switch exit {
        case .exited(let value)?:
            try encode("exited", forKey: status)
            try encode(value, forKey: code)
        case .signaled(let value)?:
            try encode("signaled", forKey: status)
            try encode(value, forKey: signal)
        case nil:
            try encode("not-started", forKey: status)
        }
    }
}

extension KeyedDecodingContainer {
    /// Reads back what ``KeyedEncodingContainer/encodeExit(_:status:code:signal:)`` wrote.
    func decodeExit(status: Key, code: Key, signal: Key) throws -> TerminationStatus? {
        switch try decode(String.self, forKey: status) {
        case "exited": return .exited(try decode(Int32.self, forKey: code))
        case "signaled": return .signaled(try decode(Int32.self, forKey: signal))
        default: return nil
        }
    }
}

/// A blocking client of a pool's control socket, for the CLI and scripts in Swift.
public final class ControlClient {
    public let pool: String
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to the running pool `pool` of this user.
    /// - Throws: ``ControlClientError`` `.notRunning` when no such pool runs.
    public init(pool: String) throws {
        self.pool = pool
        let path = RuntimeDirectory.controlSocket(pool: pool)
        do {
            fd = try Posix.connectUnixSocket(path)
        } catch let error as SystemCallError {
            if error.isNotFound || error.isConnectionRefused {
                throw ControlClientError(code: .notRunning, message: "no pool named '\(pool)' is running", pool: pool)
            }
            throw ControlClientError(code: .connection, message: "cannot connect to \(path): \(error)", pool: pool)
        }
    }

    deinit { Posix.close(fd) }

    /// Sends one request and returns its response object.
    ///
    /// - Parameter timeout: How long to wait for the answer; nil waits for as long as it takes
    ///   (a job or a rolling restart). A watcher stopped by SIGSTOP, or wedged, accepts the
    ///   connection (the kernel does) and never answers: with a timeout the caller learns so.
    /// - Throws: ``ControlClientError`` `.timedOut` when no answer came in time.
    public func request(_ request: [String: JSONValue], timeout: Duration? = nil) throws -> JSONValue {
        try JSONValue.parse(requestText(request, timeout: timeout))
    }

    /// Sends a request and returns its answer as the pool sent it, one line of JSON: for an
    /// answer decoded with Foundation (a status, ``PoolSnapshot/fromStatusAnswer(_:)``), whose
    /// 64-bit integers a ``JSONValue`` number, a Double, would round.
    public func requestText(_ request: [String: JSONValue], timeout: Duration? = nil) throws -> String {
        try send(request)
        guard let response = try readLineText(timeout: timeout) else {
            throw ControlClientError(code: .connection, message: "pool '\(pool)' closed the connection without answering", pool: pool)
        }
        return response
    }

    /// Sends one request without waiting for its answer.
    public func send(_ request: [String: JSONValue]) throws {
        let line = JSONValue.object(request).serialized + "\n"
        try Posix.sendAll(fd, Array(line.utf8))
    }

    /// The next line as JSON; nil at the end of the stream.
    /// - Throws: ``ControlClientError`` `.timedOut` when `timeout` passed without a whole line.
    public func readLine(timeout: Duration? = nil) throws -> JSONValue? {
        try readLineText(timeout: timeout).map(JSONValue.parse)
    }

    /// The next line's text; nil at the end of the stream.
    func readLineText(timeout: Duration? = nil) throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = timeout.map { Posix.monotonicNanoseconds() &+ UInt64(max(0, $0.nanoseconds)) }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if let deadline, let timeout {
                let now = Posix.monotonicNanoseconds()
                // An interrupted wait reports readable: the loop looks again and waits for the rest.
                guard now < deadline, try Posix.pollReadable(fd, timeoutNanoseconds: Int64(deadline - now)) else {
                    throw ControlClientError(
                        code: .timedOut,
                        message: "pool '\(pool)' did not answer within \(DurationParser.format(timeout)); its watcher may be stopped (SIGSTOP) or wedged",
                        pool: pool)
                }
            }
            let n = try chunk.withUnsafeMutableBytes { try Posix.receive(fd, into: $0, nonBlocking: false) } ?? 0
            if n == 0 { return nil }
            buffer += chunk[0..<n]
        }
    }
}

/// Why a control request could not be made.
public struct ControlClientError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case notRunning = "not-running"
        case connection
        /// No answer within the request's timeout.
        case timedOut = "timed-out"
    }

    public var code: Code
    public var message: String
    public var pool: String
    public var description: String { message }
}

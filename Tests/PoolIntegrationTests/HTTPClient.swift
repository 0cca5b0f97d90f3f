import Glibc

/// A raw HTTP/1.1 client: enough to read status, the x-worker header and a content-length body.
enum HTTPClient {
    struct Reply: Sendable {
        var status: Int
        var worker: Int
        var body: String
        /// The server said `connection: close`: it closes the connection after this reply.
        var closes = false
    }

    /// One request on a connection of its own, made on a thread of its own (see `TestSupport.blocking`).
    static func fetch(port: Int, _ path: String) async throws -> Reply? {
        try await TestSupport.blocking { get(port: port, path) }
    }

    static func get(port: Int, _ path: String) -> Reply? {
        getKeepAlive(port: port, path, times: 1)?.first
    }

    /// Sends `times` requests one after another on one connection.
    static func getKeepAlive(port: Int, _ path: String, times: Int) -> [Reply]? {
        var failure = ""
        return getKeepAlive(port: port, path, times: times, failure: &failure)
    }

    /// As above; `failure` says which step failed and with what errno.
    static func getKeepAlive(port: Int, _ path: String, times: Int, failure: inout String) -> [Reply]? {
        let connection = KeepAlive(port: port)
        var replies: [Reply] = []
        for index in 0..<times {
            guard let reply = connection.get(path, failure: &failure) else { return nil }
            replies.append(reply)
            if reply.closes && index < times - 1 {
                failure = "the server closed the connection after \(index + 1) of \(times) replies"
                return nil
            }
        }
        return replies
    }

    /// One keep-alive connection used request after request, the way HTTP clients do: a new
    /// connection only after the server said `connection: close`.
    final class KeepAlive {
        let port: Int
        private var fd: Int32 = -1
        private var pending: [UInt8] = []

        init(port: Int) { self.port = port }
        deinit { if fd >= 0 { close(fd) } }

        /// The reply, or nil with `failure` saying which step failed (a reset, an early close).
        func get(_ path: String, failure: inout String) -> Reply? {
            if fd < 0 {
                guard let connected = HTTPClient.connect(port: port) else {
                    failure = "connect: errno \(errno)"
                    return nil
                }
                fd = connected
                pending = []
            }
            let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
            guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
                failure = "send: errno \(errno)"
                drop()
                return nil
            }
            guard let reply = HTTPClient.readReply(fd, &pending) else {
                failure = "receive after \(pending.count) bytes: errno \(errno)"
                drop()
                return nil
            }
            if reply.closes { drop() }
            return reply
        }

        private func drop() {
            close(fd)
            fd = -1
        }
    }

    /// A connection whose reads give up after 10 s (a server that never answers fails the test, not hangs it).
    static func connect(port: Int) -> Int32? {
        guard let fd = SocketClient.connectTCP(port: port) else { return nil }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `request` in one write on a connection of its own and returns every byte the
    /// server sent until it closed the connection (nil: no connection, or no close within 10 s).
    static func exchange(port: Int, _ request: [UInt8]) -> [UInt8]? {
        guard let fd = connect(port: port) else { return nil }
        defer { close(fd) }
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return received }
            // A reset after the answers (the server closed with our unread bytes) still ends the exchange.
            if n < 0 { return errno == ECONNRESET ? received : nil }
            received += buffer[0..<n]
        }
    }

    /// A response read raw: its status, its headers (names lowercased), its body.
    struct RawResponse: Sendable {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// Splits what ``exchange(port:_:)`` returned into responses; `bodyless` are the indexes of
    /// the answers to HEAD requests (a content-length, no body). Nil if the bytes do not split.
    static func responses(_ bytes: [UInt8], bodyless: Set<Int> = []) -> [RawResponse]? {
        var rest = bytes[...]
        var responses: [RawResponse] = []
        while !rest.isEmpty {
            guard let end = rest.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
            let lines = String(decoding: rest[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
            guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "), let status = Int(statusLine.split(separator: " ")[1]) else { return nil }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { return nil }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = bodyless.contains(responses.count) ? 0 : Int(headers["content-length"] ?? "") ?? 0
            guard rest.count >= end.upperBound - rest.startIndex + length else { return nil }
            responses.append(RawResponse(status: status, headers: headers, body: String(decoding: rest[end.upperBound..<end.upperBound + length], as: UTF8.self)))
            rest = rest[(end.upperBound + length)...]
        }
        return responses
    }

    fileprivate static func readReply(_ fd: Int32, _ pending: inout [UInt8]) -> Reply? {
        let separator = Array("\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = pending.firstRange(of: separator) {
                let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self).lowercased()
                let lines = head.split(separator: "\r\n")
                let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
                func header(_ name: String) -> Int {
                    lines.first { $0.hasPrefix("\(name):") }.flatMap { Int($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)) } ?? 0
                }
                let length = header("content-length")
                if pending.count >= end.upperBound + length {
                    let body = String(decoding: pending[end.upperBound..<end.upperBound + length], as: UTF8.self)
                    pending.removeFirst(end.upperBound + length)
                    let closes = lines.contains { $0.hasPrefix("connection:") && $0.contains("close") }
                    return Reply(status: status, worker: header("x-worker"), body: body, closes: closes)
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            pending += buffer[0..<n]
        }
    }
}

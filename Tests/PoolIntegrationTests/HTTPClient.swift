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
                guard let connected = SocketClient.connectTCP(port: port) else {
                    failure = "connect: errno \(errno)"
                    return nil
                }
                fd = connected
                pending = []
                var timeout = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
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

import Glibc
import NIOCore

/// The statuses the demo answers with.
public enum HTTPStatus: Int, Sendable {
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case contentTooLarge = 413
    case unprocessableContent = 422
    case requestHeaderFieldsTooLarge = 431
    case notImplemented = 501
    case serviceUnavailable = 503
    case gatewayTimeout = 504
    case httpVersionNotSupported = 505

    public var reason: String {
        switch self {
        case .ok: "OK"
        case .badRequest: "Bad Request"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .contentTooLarge: "Content Too Large"
        case .unprocessableContent: "Unprocessable Content"
        case .requestHeaderFieldsTooLarge: "Request Header Fields Too Large"
        case .notImplemented: "Not Implemented"
        case .serviceUnavailable: "Service Unavailable"
        case .gatewayTimeout: "Gateway Timeout"
        case .httpVersionNotSupported: "HTTP Version Not Supported"
        }
    }
}

/// A whole response (status line, headers, body) as the bytes to write.
enum HTTPResponse {
    /// What the `connection` header says: nothing for HTTP/1.1 keep-alive (its default),
    /// `keep-alive` for an HTTP/1.0 client that asked for it, `close` when this answer is the last.
    enum Connection: Sendable {
        case `default`, keepAlive, close
    }

    /// The response to `status` with a plain-text `body` (left out for HEAD, its length kept).
    static func bytes(
        _ status: HTTPStatus, body: String, worker: Int, date: String, connection: Connection,
        includeBody: Bool = true, extraHeader: String? = nil
    ) -> ByteBuffer {
        var head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\n"
        head += "content-type: text/plain; charset=utf-8\r\ncontent-length: \(body.utf8.count)\r\n"
        head += "x-worker: \(worker)\r\ndate: \(date)\r\n"
        switch connection {
        case .default: break
        case .keepAlive: head += "connection: keep-alive\r\n"
        case .close: head += "connection: close\r\n"
        }
        if let extraHeader { head += extraHeader + "\r\n" }
        head += "\r\n"
        var buffer = ByteBuffer()
        buffer.reserveCapacity(head.utf8.count + (includeBody ? body.utf8.count : 0))
        buffer.writeString(head)
        if includeBody { buffer.writeString(body) }
        return buffer
    }
}

/// The `date` header an origin server must send (RFC 9110 6.6.1), formatted once per second.
enum HTTPDate {
    /// The current second, from the coarse clock (a few nanoseconds, no system call).
    static func currentSecond() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &now)
        return now.tv_sec
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate) for `second` since the epoch.
    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}

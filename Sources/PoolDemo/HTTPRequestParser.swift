/// What a request's head says: as much as the demo needs to answer it and to find where the
/// next request on the connection begins.
///
/// The demo reads HTTP/1.1 itself instead of through NIO's codec: its routes take no body and
/// look at three headers, and building NIO's `HTTPRequestHead` (a `String` per header name and
/// value, an array of them) was most of the reactor's time per request (decision 0017).
public struct HTTPRequestHead: Equatable, Sendable {
    public var method: String
    /// The request target as sent, e.g. `/job?cmd=echo+hi`.
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Whether the connection stays open after the answer: HTTP/1.1 unless `connection: close`,
    /// HTTP/1.0 only with `connection: keep-alive`.
    public var keepAlive: Bool
    /// The body's length (`content-length`); the demo skips it.
    public var bodyLength: Int

    public init(method: String, target: String, minorVersion: Int, keepAlive: Bool, bodyLength: Int) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.keepAlive = keepAlive
        self.bodyLength = bodyLength
    }
}

/// A request the server cannot read, with the status that says so; the connection is closed
/// after the answer, since where the next request would begin is unknown.
public struct HTTPRequestError: Error, Equatable, Sendable {
    public var status: HTTPStatus
    /// What was wrong and where, for the body of the answer.
    public var message: String

    public init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// Reads request heads from a connection's bytes (RFC 9112), strictly: what it does not
/// understand is refused, never guessed at, since a guess about where a request ends is how
/// requests get smuggled past a proxy.
public enum HTTPRequestParser {
    /// The longest head accepted (nginx's default `large_client_header_buffers` is 8 KiB too).
    public static let maximumHeadLength = 8192
    public static let maximumHeaderCount = 100
    /// The demo's routes take no body; one up to this size is read and dropped, a longer one refused.
    public static let maximumBodyLength = 64 * 1024

    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let colon = UInt8(ascii: ":")

    /// The first request head in `bytes` and how many bytes it took, nil while its end has not
    /// arrived (search again from ``resumeSearch(after:)`` once more bytes have).
    public static func firstHead(in bytes: UnsafeRawBufferPointer, searchingFrom start: Int = 0) throws(HTTPRequestError) -> (head: HTTPRequestHead, length: Int)? {
        guard let length = try headLength(bytes, searchingFrom: start) else { return nil }
        return (try parse(UnsafeRawBufferPointer(rebasing: bytes[..<length])), length)
    }

    /// Where the head that starts at `bytes[0]` ends (the index after its blank line), looking
    /// from `start` on (a caller that already searched part of the bytes passes where it
    /// stopped); nil while the blank line has not arrived. Throws 431 once the first
    /// ``maximumHeadLength`` bytes hold no end.
    static func headLength(_ bytes: UnsafeRawBufferPointer, searchingFrom start: Int = 0) throws(HTTPRequestError) -> Int? {
        var index = max(start, 0)
        let limit = min(bytes.count, maximumHeadLength)
        // Empty lines before the request line are skipped (RFC 9112 2.2), so a head's end is a
        // line feed followed by an empty line, after at least one line with something in it.
        var lineHasContent = false
        var back = min(index, bytes.count)
        while back > 0, bytes[back - 1] != lineFeed {
            if bytes[back - 1] != carriageReturn {
                lineHasContent = true
                break
            }
            back -= 1
        }
        while index < limit {
            let byte = bytes[index]
            if byte == lineFeed {
                if lineHasContent {
                    // The next line empty ("\n\n" or "\n\r\n") ends the head, if within the limit:
                    // then whether a head is too long never depends on how its bytes arrived.
                    if index + 2 <= maximumHeadLength, index + 1 < bytes.count, bytes[index + 1] == lineFeed { return index + 2 }
                    if index + 3 <= maximumHeadLength, index + 2 < bytes.count, bytes[index + 1] == carriageReturn, bytes[index + 2] == lineFeed {
                        return index + 3
                    }
                }
                lineHasContent = false
            } else if byte != carriageReturn {
                lineHasContent = true
            }
            index += 1
        }
        if bytes.count >= maximumHeadLength {
            throw HTTPRequestError(.requestHeaderFieldsTooLarge, "the request head is longer than \(maximumHeadLength) bytes")
        }
        return nil
    }

    /// Where a caller that found no end in `bytes` may start looking once more bytes arrive:
    /// the last three bytes may begin the blank line.
    public static func resumeSearch(after bytes: UnsafeRawBufferPointer) -> Int { max(bytes.count - 3, 0) }

    /// Reads one whole head (`headLength` bytes found by ``headLength(_:searchingFrom:)``).
    static func parse(_ head: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead {
        var lines = LineReader(head)
        var requestLine = lines.next()
        while let line = requestLine, line.isEmpty { requestLine = lines.next() }
        guard let requestLine else { throw HTTPRequestError(.badRequest, "the request has no request line") }
        var request = try parseRequestLine(requestLine)
        var contentLength: Int?
        var connectionClose = false
        var connectionKeepAlive = false
        var hasHost = false
        var count = 0
        while let line = lines.next(), !line.isEmpty {
            count += 1
            if count > maximumHeaderCount {
                throw HTTPRequestError(.requestHeaderFieldsTooLarge, "the request has more than \(maximumHeaderCount) header fields")
            }
            let (name, value) = try splitField(line, number: count)
            if equalsIgnoringCase(name, "content-length") {
                let length = try parseContentLength(value)
                if let contentLength, contentLength != length {
                    throw HTTPRequestError(.badRequest, "header field \(count) (content-length) disagrees with an earlier content-length")
                }
                contentLength = length
            } else if equalsIgnoringCase(name, "transfer-encoding") {
                // Reading a chunked body is more than a demo without request bodies needs; its
                // framing must not be guessed at either, so the connection ends here.
                throw HTTPRequestError(.notImplemented, "header field \(count) (transfer-encoding): request bodies with a transfer coding are not supported; send content-length")
            } else if equalsIgnoringCase(name, "connection") {
                forEachToken(value) { token in
                    if equalsIgnoringCase(token, "close") { connectionClose = true }
                    if equalsIgnoringCase(token, "keep-alive") { connectionKeepAlive = true }
                }
            } else if equalsIgnoringCase(name, "host") {
                if hasHost { throw HTTPRequestError(.badRequest, "header field \(count): a second host field") }
                hasHost = true
            }
        }
        // RFC 9112 3.2: an HTTP/1.1 request without exactly one host is answered 400.
        if request.minorVersion == 1 && !hasHost {
            throw HTTPRequestError(.badRequest, "an HTTP/1.1 request needs a host header field")
        }
        let length = contentLength ?? 0
        if length > maximumBodyLength {
            throw HTTPRequestError(.contentTooLarge, "content-length \(length) is more than the \(maximumBodyLength) bytes this server reads")
        }
        request.bodyLength = length
        request.keepAlive = !connectionClose && (request.minorVersion == 1 || connectionKeepAlive)
        return request
    }

    /// `GET /path HTTP/1.1`: single spaces, a token method, a target of visible characters.
    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead {
        guard let firstSpace = line.firstIndex(of: space) else {
            throw HTTPRequestError(.badRequest, "the request line has no spaces; expected METHOD TARGET HTTP/1.1")
        }
        let afterTarget = line[(firstSpace + 1)...]
        guard let secondSpace = afterTarget.firstIndex(of: space) else {
            throw HTTPRequestError(.badRequest, "the request line has one space; expected METHOD TARGET HTTP/1.1")
        }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<secondSpace])
        let version = UnsafeRawBufferPointer(rebasing: line[(secondSpace + 1)...])
        guard !method.isEmpty, method.allSatisfy(isTokenCharacter) else {
            throw HTTPRequestError(.badRequest, "the request line's method is not a token")
        }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPRequestError(.badRequest, "the request line's target is empty or holds a character that is not visible ASCII")
        }
        let minor: Int
        if version.elementsEqual("HTTP/1.1".utf8) {
            minor = 1
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            minor = 0
        } else if version.count == 8, version.starts(with: "HTTP/".utf8), isDigit(version[5]), version[6] == UInt8(ascii: "."), isDigit(version[7]) {
            throw HTTPRequestError(.httpVersionNotSupported, "HTTP/\(Character(UnicodeScalar(version[5]))).\(Character(UnicodeScalar(version[7]))) is not served here; use HTTP/1.1")
        } else {
            throw HTTPRequestError(.badRequest, "the request line's version is not HTTP/1.1 or HTTP/1.0")
        }
        return HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            minorVersion: minor, keepAlive: true, bodyLength: 0)
    }

    /// `name: value`, the value without the spaces and tabs around it.
    private static func splitField(_ line: UnsafeRawBufferPointer, number: Int) throws(HTTPRequestError) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        // A line that starts with white space continues the last one (obs-fold): refused, as RFC 9112 5.2 allows.
        if line[0] == space || line[0] == tab {
            throw HTTPRequestError(.badRequest, "header field \(number) starts with white space (a folded line)")
        }
        guard let colon = line.firstIndex(of: colon) else {
            throw HTTPRequestError(.badRequest, "header field \(number) has no colon")
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard !name.isEmpty, name.allSatisfy(isTokenCharacter) else {
            throw HTTPRequestError(.badRequest, "header field \(number)'s name is empty or not a token (no white space before the colon)")
        }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == space || line[start] == tab { start += 1 }
        while end > start, line[end - 1] == space || line[end - 1] == tab { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        // Control characters (a lone CR, NUL) in a value are how responses get split.
        guard value.allSatisfy({ $0 == tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw HTTPRequestError(.badRequest, "header field \(number)'s value holds a control character")
        }
        return (name, value)
    }

    private static func parseContentLength(_ value: UnsafeRawBufferPointer) throws(HTTPRequestError) -> Int {
        guard !value.isEmpty, value.count <= 18, value.allSatisfy(isDigit) else {
            throw HTTPRequestError(.badRequest, "content-length is not a number of at most 18 digits")
        }
        return value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// Calls `body` with each comma-separated token of a list value, trimmed.
    private static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last, value[first] == space || value[first] == tab { first += 1 }
            while last > first, value[last - 1] == space || value[last - 1] == tab { last -= 1 }
            body(UnsafeRawBufferPointer(rebasing: value[first..<last]))
            start = end + 1
        }
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for index in 0..<bytes.count {
            var byte = bytes[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[index] { return false }
        }
        return true
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// RFC 9110 5.6.2's tchar.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// The lines of a head, each without its line feed and the carriage return before it.
    private struct LineReader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func next() -> UnsafeRawBufferPointer? {
            guard position < bytes.count else { return nil }
            var end = position
            while end < bytes.count, bytes[end] != lineFeed { end += 1 }
            var lineEnd = end
            if lineEnd > position, bytes[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[position..<lineEnd])
            position = end + 1
            return line
        }
    }
}

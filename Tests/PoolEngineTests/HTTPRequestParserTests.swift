import PoolDemo
import Testing

/// The demo reactor's own HTTP/1.1 reader: what it accepts, where a request ends, and what it
/// refuses with which status.
@Suite("HTTP request heads (the demo reactor's reader)")
struct HTTPRequestParserTests {
    /// The first head in `text` and its length, or the error.
    func first(_ text: String, from start: Int = 0) -> Result<(head: HTTPRequestHead, length: Int)?, HTTPRequestError> {
        Array(text.utf8).withUnsafeBytes { bytes in
            do throws(HTTPRequestError) {
                return .success(try HTTPRequestParser.firstHead(in: bytes, searchingFrom: start))
            } catch {
                return .failure(error)
            }
        }
    }

    func head(_ text: String) throws -> HTTPRequestHead {
        let result = try #require(try first(text).get())
        return result.head
    }

    func error(_ text: String) -> HTTPRequestError? {
        if case .failure(let error) = first(text) { return error }
        return nil
    }

    @Test("a GET with a host: method, target, version, keep-alive by default, and the head's exact length")
    func simpleGet() throws {
        let text = "GET /job?cmd=echo+hi HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"
        let result = try #require(try first(text + "GET / HTTP/1.1\r\n").get())
        #expect(result.head == HTTPRequestHead(method: "GET", target: "/job?cmd=echo+hi", minorVersion: 1, keepAlive: true, bodyLength: 0))
        #expect(result.length == text.utf8.count, "the next pipelined request starts right after the blank line")
    }

    @Test("keep-alive: HTTP/1.1 unless connection: close (any case, in a list), HTTP/1.0 only with keep-alive")
    func keepAlive() throws {
        #expect(try head("GET / HTTP/1.1\r\nhost: x\r\nConnection: upgrade, CLOSE\r\n\r\n").keepAlive == false)
        #expect(try head("GET / HTTP/1.0\r\n\r\n").keepAlive == false)
        #expect(try head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive == true)
        #expect(try head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").minorVersion == 0)
        #expect(try head("GET / HTTP/1.1\r\nHOST: x\r\nconnection: keep-alive\r\n\r\n").keepAlive == true)
    }

    @Test("bare line feeds end lines too, and empty lines before the request line are skipped")
    func lenientLines() throws {
        #expect(try head("GET /pid HTTP/1.1\nHost: x\n\n").target == "/pid")
        let text = "\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
        let result = try #require(try first(text).get())
        #expect(result.head.target == "/pid")
        #expect(result.length == text.utf8.count)
    }

    @Test("a head that arrives in two parts is found the same wherever it is cut, searching on from where the first search stopped")
    func splitAnywhere() throws {
        let text = "\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        let bytes = Array(text.utf8)
        let whole = try #require(try first(text).get())
        for cut in 0..<bytes.count {
            let start: Int? = bytes[..<cut].withUnsafeBytes { part in
                guard case .success(nil) = Result(catching: { () throws(HTTPRequestError) in try HTTPRequestParser.firstHead(in: part) }) else { return nil }
                return HTTPRequestParser.resumeSearch(after: part)
            }
            guard let start else {
                // The head is whole within the first part: it must be the same head.
                let part = try #require(try first(String(decoding: bytes[..<cut], as: UTF8.self)).get())
                #expect(part.head == whole.head && part.length == whole.length, "cut at \(cut)")
                continue
            }
            let again = try #require(try first(text, from: start).get(), "cut at \(cut)")
            #expect(again.head == whole.head && again.length == whole.length, "cut at \(cut)")
        }
    }

    @Test("content-length gives the body to skip; repeated equal values are one, different ones, non-digits and too long a body are refused")
    func contentLength() throws {
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").bodyLength == 12)
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n").bodyLength == 5)
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n")?.status == .badRequest)
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n")?.status == .badRequest)
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")?.status == .badRequest)
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")?.status == .badRequest)
        let tooLong = error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \(HTTPRequestParser.maximumBodyLength + 1)\r\n\r\n")
        #expect(tooLong?.status == .contentTooLarge)
        #expect(tooLong?.message.contains("content-length \(HTTPRequestParser.maximumBodyLength + 1)") == true, "\(String(describing: tooLong))")
    }

    @Test("a transfer coding is refused with 501: its body's end is not guessed at")
    func transferEncoding() {
        let refused = error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(refused?.status == .notImplemented)
        #expect(refused?.message.contains("header field 2 (transfer-encoding)") == true, "\(String(describing: refused))")
    }

    @Test("HTTP/1.1 needs exactly one host; other versions get 505, garbage 400")
    func versionsAndHost() {
        #expect(error("GET / HTTP/1.1\r\n\r\n")?.message.contains("host") == true)
        #expect(error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")?.message.contains("header field 2: a second host") == true)
        #expect(error("GET / HTTP/2.0\r\nHost: x\r\n\r\n")?.status == .httpVersionNotSupported)
        #expect(error("GET / HTTP/2.0\r\nHost: x\r\n\r\n")?.message.contains("HTTP/2.0") == true)
        #expect(error("GET / HTTQ/1.1\r\nHost: x\r\n\r\n")?.status == .badRequest)
        #expect(error("GET / HTTP/1.1 \r\nHost: x\r\n\r\n")?.status == .badRequest, "a trailing space")
    }

    @Test("request lines and fields that could be read two ways are refused, naming the field")
    func malformed() {
        let cases: [(String, String)] = [
            ("GET\r\nHost: x\r\n\r\n", "no spaces"),
            ("GET /\r\nHost: x\r\n\r\n", "one space"),
            ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "target is empty"),
            ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "method is not a token"),
            ("GET /a\u{7F}b HTTP/1.1\r\nHost: x\r\n\r\n", "not visible ASCII"),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "header field 2 starts with white space"),
            ("GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", "header field 2 has no colon"),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "header field 1's name"),
            ("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "header field 2's value holds a control character"),
            ("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n", "control character"),
        ]
        for (text, expected) in cases {
            let refused = error(text)
            #expect(refused?.status == .badRequest, "\(text.debugDescription)")
            #expect(refused?.message.contains(expected) == true, "\(text.debugDescription): \(String(describing: refused))")
        }
    }

    @Test("a head without an end past 8 KiB, or with more than 100 fields, gets 431; one short of the limit is still waited for")
    func limits() {
        let long = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: HTTPRequestParser.maximumHeadLength)
        #expect(error(long)?.status == .requestHeaderFieldsTooLarge)
        let short = String(decoding: long.utf8.prefix(HTTPRequestParser.maximumHeadLength - 1), as: UTF8.self)
        if case .success(let found) = first(short) {
            #expect(found == nil, "an unfinished head under the limit is waited for")
        } else {
            Issue.record("an unfinished head under the limit was refused: \(String(describing: error(short)))")
        }
        let fields = (0...HTTPRequestParser.maximumHeaderCount).map { "X-\($0): 1\r\n" }.joined()
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n")?.status == .requestHeaderFieldsTooLarge)
    }
}

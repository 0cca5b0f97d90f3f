import NIOCore
import PoolEngine

/// One HTTP/1.1 connection of the demo reactor: it reads requests from the bytes itself
/// (``HTTPRequestParser``), routes them, writes whole prebuilt responses, and keeps the
/// connection's counters and the worker's drain in step.
///
/// Keep-alive and pipelining: every whole request in a read is answered in order, all
/// answers of that read flushed in one write. A `/job` answer comes later, so the requests
/// behind it wait, and the handler stops reading until it is written (answers must go in the
/// order the requests came).
final class HelloHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let site: HelloSite
    /// Bytes read and not yet served: part of a head, or the requests behind a job.
    private var received: ByteBuffer?
    /// Where the search for the end of the head in `received` goes on from.
    private var searched = 0
    /// Bytes of the last request's body still to drop.
    private var bodyLeft = 0
    /// The request being served (its answer not yet written), and the connection's fate after it.
    private var current: HTTPRequestHead?
    private var keepAlive = true
    /// A job runs for `current`: nothing else is served or read until its answer is written.
    private var awaitingJob = false
    /// NIO asked for a read while a job ran; it is passed on once the job is answered.
    private var readHeld = false
    /// The last answer is written and the connection is closing: further bytes are dropped.
    private var closing = false
    private var closedByError = false
    private var unflushed = false
    /// The two answers nearly every request asks for, rebuilt once a second for their date.
    private var greeting: FixedResponse
    private var pid: FixedResponse

    init(site: HelloSite) {
        self.site = site
        greeting = FixedResponse(body: site.greetingText, worker: site.worker.id.rawValue)
        pid = FixedResponse(body: site.pidText, worker: site.worker.id.rawValue)
    }

    func channelActive(context: ChannelHandlerContext) {
        site.connections.opened(context.channel)
        site.worker.recordActivity { activity in
            activity.connectionsAccepted += 1
            activity.connectionsActive += 1
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Nothing more is served on it: a request still waiting behind a job would otherwise be
        // counted as open again, and a draining worker would wait for it until killed.
        closing = true
        received = nil
        site.connections.closed(context.channel)
        if current != nil {
            current = nil
            site.worker.requestFinished()
        }
        let failed = closedByError
        site.worker.recordActivity { activity in
            activity.connectionsActive -= 1
            if failed { activity.connectionsErrors += 1 } else { activity.connectionsProcessed += 1 }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closedByError = true
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var bytes = unwrapInboundIn(data)
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        serveReceived(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if awaitingJob {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// Serves every whole request in `received`, in order, until one waits for a job.
    private func serveReceived(_ context: ChannelHandlerContext) {
        while !awaitingJob, !closing, var buffer = received {
            // Taken out while it changes, so the change does not copy it.
            received = nil
            if bodyLeft > 0 {
                let dropped = min(bodyLeft, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: dropped)
                bodyLeft -= dropped
            }
            // Nothing left: `received` stays nil, so NIO can read into the same buffer again.
            guard buffer.readableBytes > 0 else { return }
            let parsed = buffer.withUnsafeReadableBytes { bytes -> Result<(HTTPRequestHead, Int)?, HTTPRequestError> in
                do throws(HTTPRequestError) {
                    guard let (head, length) = try HTTPRequestParser.firstHead(in: bytes, searchingFrom: searched) else {
                        searched = HTTPRequestParser.resumeSearch(after: bytes)
                        return .success(nil)
                    }
                    return .success((head, length))
                } catch {
                    return .failure(error)
                }
            }
            switch parsed {
            case .success(nil):
                // Part of a head: kept until the rest arrives.
                received = buffer
                return
            case .success(let (request, length)?):
                buffer.moveReaderIndex(forwardBy: length)
                searched = 0
                bodyLeft = request.bodyLength
                received = buffer.readableBytes > 0 ? buffer : nil
                serve(context, request)
            case .failure(let error):
                // Where the next request would begin is unknown: answer, then close. No request
                // started, so none ends (`current` stays nil) and another connection's stays named.
                keepAlive = false
                respond(context, error.status, "bad request: \(error.message)\n")
            }
        }
    }

    private func serve(_ context: ChannelHandlerContext, _ request: HTTPRequestHead) {
        // A draining worker answers what it was asked, then closes the connection.
        keepAlive = site.connections.requestStarted(context.channel) && request.keepAlive
        current = request
        // Named for a post-mortem (`pooltop why`) should this worker die serving it.
        site.worker.requestStarted(request.target)
        guard request.method == "GET" || request.method == "HEAD" else {
            respond(context, .methodNotAllowed, "\(request.method) is not served here; use GET or HEAD\n", extraHeader: "allow: GET, HEAD")
            return
        }
        let path = request.target.prefix { $0 != "?" }
        switch path {
        case "/": respond(context, &greeting)
        case "/pid": respond(context, &pid)
        case "/job": submitJob(context, query: request.target.dropFirst(path.count + 1))
        default: respond(context, .notFound, "no page \(path); try /, /pid or /job?cmd=echo+hi\n")
        }
    }

    private func submitJob(_ context: ChannelHandlerContext, query: Substring) {
        guard let command = Self.queryParameter("cmd", in: query), !command.isEmpty else {
            respond(context, .badRequest, "give the job as /job?cmd=COMMAND (for example cmd=echo+hi)\n")
            return
        }
        guard let jobGroup = site.jobGroup else {
            respond(context, .serviceUnavailable, "this reactor's group lists no jobGroups to send jobs to\n")
            return
        }
        awaitingJob = true
        let jobs = site.worker.jobs
        let answer = context.eventLoop.makePromise(of: (HTTPStatus, String).self)
        answer.completeWithTask {
            do throws(JobError) {
                let result = try await jobs.submit(command, to: .name(jobGroup))
                return (.ok, result.text + "\n")
            } catch {
                return (Self.status(of: error), "job failed (\(error.code.rawValue)): \(error.message)\n")
            }
        }
        // Back on this connection's loop, where the handler and its context live.
        answer.futureResult.assumeIsolated().whenSuccess { status, body in
            self.awaitingJob = false
            self.respond(context, status, body)
            self.flushIfNeeded(context)
            // The requests that came behind it, then the reads held meanwhile.
            self.serveReceived(context)
            self.flushIfNeeded(context)
            if self.readHeld && !self.awaitingJob {
                self.readHeld = false
                context.read()
            }
        }
    }

    static func status(of error: JobError) -> HTTPStatus {
        switch error.code {
        case .badRequest, .tooLarge, .notAllowed: .badRequest
        case .handlerFailed: .unprocessableContent
        case .timedOut: .gatewayTimeout
        case .rejected, .noWorkerAvailable, .workerLost, .cancelled: .serviceUnavailable
        }
    }

    /// Ends the current request (if one started): what the answer's `connection` header says,
    /// and whether it carries its body (not for HEAD).
    private func finishRequest(_ context: ChannelHandlerContext) -> (HTTPResponse.Connection, includeBody: Bool) {
        // A worker that began draining while this request ran answers it, then closes.
        if !site.connections.requestFinished(context.channel) { keepAlive = false }
        let request = current
        if request != nil {
            current = nil
            site.worker.requestFinished()
        }
        let includeBody = request?.method != "HEAD"
        if !keepAlive { return (.close, includeBody) }
        return (request?.minorVersion == 0 ? .keepAlive : .default, includeBody)
    }

    private func respond(_ context: ChannelHandlerContext, _ fixed: inout FixedResponse) {
        let (connection, includeBody) = finishRequest(context)
        let now = HTTPDate.currentSecond()
        // The prebuilt bytes are the common answer's; any other variant is built for the one request.
        let response = connection == .default && includeBody
            ? fixed.bytes(at: now) : fixed.build(second: now, connection: connection, includeBody: includeBody)
        write(context, response, connection: connection)
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPStatus, _ body: String, extraHeader: String? = nil) {
        let (connection, includeBody) = finishRequest(context)
        let response = HTTPResponse.bytes(
            status, body: body, worker: site.worker.id.rawValue, date: HTTPDate.format(HTTPDate.currentSecond()),
            connection: connection, includeBody: includeBody, extraHeader: extraHeader)
        write(context, response, connection: connection)
    }

    private func write(_ context: ChannelHandlerContext, _ response: ByteBuffer, connection: HTTPResponse.Connection) {
        guard connection == .close else {
            context.write(wrapOutboundOut(response), promise: nil)
            unflushed = true
            return
        }
        closing = true
        received = nil
        unflushed = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    /// The decoded value of `name` in a query (`cmd=echo+hi&x=1`), nil when absent.
    static func queryParameter(_ name: String, in query: Substring) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if decode(parts[0]) == name { return parts.count > 1 ? decode(parts[1]) : "" }
        }
        return nil
    }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next(), let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                    bytes.append(value)
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A 200 answer whose body never changes: its bytes are built once a second (for the date)
/// and written as they are, without a copy, to every request that asks in that second.
struct FixedResponse {
    let body: String
    let worker: Int
    private var second = -1
    private var cached = ByteBuffer()

    init(body: String, worker: Int) {
        self.body = body
        self.worker = worker
    }

    /// The HTTP/1.1 keep-alive answer, as of `now`.
    mutating func bytes(at now: Int) -> ByteBuffer {
        if now != second {
            cached = build(second: now, connection: .default, includeBody: true)
            second = now
        }
        return cached
    }

    func build(second: Int, connection: HTTPResponse.Connection, includeBody: Bool) -> ByteBuffer {
        HTTPResponse.bytes(.ok, body: body, worker: worker, date: HTTPDate.format(second), connection: connection, includeBody: includeBody)
    }
}

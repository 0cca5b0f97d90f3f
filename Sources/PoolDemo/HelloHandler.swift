import NIOCore
import NIOHTTP1
import PoolEngine

/// One HTTP connection of the demo reactor: routes, jobs, counters and drain-aware keep-alive.
final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let site: HelloSite
    private var keepAlive = true
    private var closedByError = false
    /// A request is being served: named for the post-mortem until its response is written.
    private var serving = false

    init(site: HelloSite) { self.site = site }

    func channelActive(context: ChannelHandlerContext) {
        site.connections.opened(context.channel)
        site.worker.recordActivity { activity in
            activity.connectionsAccepted += 1
            activity.connectionsActive += 1
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        site.connections.closed(context.channel)
        if serving {
            serving = false
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
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        // A draining worker answers what it was asked, then closes the connection.
        keepAlive = site.connections.requestStarted(context.channel) && head.isKeepAlive
        // Named for a post-mortem (`pooltop why`) should this worker die serving it.
        serving = true
        site.worker.requestStarted(head.uri)
        let (path, query) = split(head.uri)
        switch path {
        case "/": respond(context, .ok, site.greeting)
        case "/pid": respond(context, .ok, site.pid)
        case "/job": submitJob(context, query: query)
        default: respond(context, .notFound, "no page \(path); try /, /pid or /job?cmd=echo+hi\n")
        }
    }

    private func submitJob(_ context: ChannelHandlerContext, query: [String: String]) {
        guard let command = query["cmd"], !command.isEmpty else {
            respond(context, .badRequest, "give the job as /job?cmd=COMMAND (for example cmd=echo+hi)\n")
            return
        }
        guard let jobGroup = site.jobGroup else {
            respond(context, .serviceUnavailable, "this reactor's group lists no jobGroups to send jobs to\n")
            return
        }
        let jobs = site.worker.jobs
        let answer = context.eventLoop.makePromise(of: (HTTPResponseStatus, String).self)
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
            self.respond(context, status, body)
        }
    }

    static func status(of error: JobError) -> HTTPResponseStatus {
        switch error.code {
        case .badRequest, .tooLarge, .notAllowed: .badRequest
        case .handlerFailed: .unprocessableEntity
        case .timedOut: .gatewayTimeout
        case .rejected, .noWorkerAvailable, .workerLost, .cancelled: .serviceUnavailable
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String) {
        respond(context, status, HelloResponse(body, worker: site.worker.id))
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ response: HelloResponse) {
        // A worker that began draining while this request ran answers it, then closes.
        if !site.connections.requestFinished(context.channel) { keepAlive = false }
        if serving {
            serving = false
            site.worker.requestFinished()
        }
        var headers = response.headers
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Splits "/job?cmd=echo+hi" into its path and its decoded query parameters.
    private func split(_ uri: String) -> (String, [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = Self.decode(parts[0])
            query[key] = parts.count > 1 ? Self.decode(parts[1]) : ""
        }
        return (String(uri[..<mark]), query)
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

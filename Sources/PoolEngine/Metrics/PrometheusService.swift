import NIOCore
import NIOHTTP1
import NIOPosix

/// The metrics group's worker: HTTP/1.1 on the group's listener, `GET /metrics` rendered from
/// a fresh shared-memory snapshot per scrape; any other path is 404, any other method 405.
struct PrometheusService: WorkerEntryPoint {
    private var worker: Worker?
    private var reader: PoolStateReader?

    mutating func initialize(worker: Worker) async throws {
        guard !worker.listeners.isEmpty else {
            throw WorkerExit.fatal("the prometheus service serves a listener; its group has none (the default is \(PrometheusGroup.defaultAddress))")
        }
        do {
            reader = try worker.poolState()
        } catch {
            throw WorkerExit.fatal("the prometheus service cannot read the pool's shared memory: \(error)")
        }
        self.worker = worker
    }

    func run() async throws {
        guard let worker, let reader, let listener = worker.listeners.first else { return }
        let site = MetricsSite(worker: worker, reader: reader)
        let server = try await listener.serveHTTP(on: worker.eventLoopGroup) { MetricsHandler(site: site) }
        worker.logger.info("serving metrics on http://\(listener.listener?.description ?? listener.name)/metrics")
        await worker.awaitTermination()
        // A scrape is one short request: take what is queued, stop accepting, close what is open.
        await listener.awaitQueueDrained()
        await server.close()
    }
}

final class MetricsSite: Sendable {
    let worker: Worker
    let reader: PoolStateReader

    init(worker: Worker, reader: PoolStateReader) {
        self.worker = worker
        self.reader = reader
    }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let site: MetricsSite
    private var failed = false

    init(site: MetricsSite) { self.site = site }

    func channelActive(context: ChannelHandlerContext) {
        site.worker.recordActivity { activity in
            activity.connectionsAccepted += 1
            activity.connectionsActive += 1
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let failed = self.failed
        site.worker.recordActivity { activity in
            activity.connectionsActive = activity.connectionsActive > 0 ? activity.connectionsActive - 1 : 0
            if failed { activity.connectionsErrors += 1 } else { activity.connectionsProcessed += 1 }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            respond(context, head, .methodNotAllowed, Array("only GET and HEAD are served\n".utf8), extra: [("Allow", "GET, HEAD")])
            return
        }
        guard path == "/metrics" else {
            respond(context, head, .notFound, Array("no page \(path); the metrics are at /metrics\n".utf8))
            return
        }
        let body = PrometheusExposition.render(site.reader.snapshot()) + PublishedMetrics.collected(pool: site.worker.pool.name)
        respond(context, head, .ok, body, contentType: PrometheusExposition.contentType)
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: [UInt8],
        contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.count))] + extra)
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}

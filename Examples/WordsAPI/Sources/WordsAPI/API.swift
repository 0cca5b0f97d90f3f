import NIOCore
import NIOHTTP1
import PoolEngine

/// The HTTP workers. Each serves the socket the watcher opened for the group (it inherits it,
/// as systemd's socket activation passes sockets), on the worker's one NIO event loop group:
/// - `GET /health`: 200 while the worker serves;
/// - `POST /words` with a text: its words counted, by a worker of the `words` job group.
struct API: WorkerEntryPoint {
    var worker: Worker?

    mutating func initialize(worker: Worker) async throws { self.worker = worker }

    func run() async throws {
        guard let worker, let listener = worker.listeners.first else {
            throw WorkerExit.fatal("the api group needs a listener, e.g. listen: [\"127.0.0.1:8095\"]")
        }
        let jobs = worker.jobs
        let server = try await listener.serveHTTP(on: worker.eventLoopGroup) { APIHandler(jobs: jobs) }
        worker.logger.info("serving http://\(listener.listener?.description ?? listener.name)")
        await worker.awaitTermination()
        // The watcher already sends new connections to the other workers: take what is queued
        // here, then stop accepting (open requests finish within the group's stop timeout).
        await listener.awaitQueueDrained()
        await server.close()
    }
}

/// One HTTP/1.1 connection.
final class APIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let jobs: JobClient
    private var request: HTTPRequestHead?
    private var body = ByteBuffer()

    init(jobs: JobClient) { self.jobs = jobs }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head = request else { return }
            route(context, head)
        }
    }

    private func route(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        switch (head.method, head.uri) {
        case (.GET, "/health"):
            respond(context, .ok, "ok\n", keepAlive: head.isKeepAlive)
        case (.POST, "/words"):
            let text = String(buffer: body)
            let jobs = self.jobs
            // The job runs in another process; this connection's loop is free meanwhile.
            let answer = context.eventLoop.makePromise(of: (HTTPResponseStatus, String).self)
            answer.completeWithTask {
                do throws(JobError) {
                    return (.ok, try await jobs.submit(text, to: "words", timeout: .seconds(5)).text)
                } catch {
                    return (.serviceUnavailable, "job failed (\(error.code.rawValue)): \(error.message)\n")
                }
            }
            answer.futureResult.assumeIsolated().whenSuccess { status, text in
                self.respond(context, status, text, keepAlive: head.isKeepAlive)
            }
        default:
            respond(context, .notFound, "try GET /health or POST /words\n", keepAlive: head.isKeepAlive)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ text: String, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: "\(text.utf8.count)")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import PoolDemo
import PoolEngine

/// A user's own SwiftNIO HTTP/1.1 server, written the way NIO's own examples write one (NIO's
/// HTTP server pipeline, a handler that answers each request), to measure what serving it as
/// pooltop reactors costs against running the same code alone (docs/reactors.md). The two
/// differ only in who opened the listening socket.
enum UserNIOServer {
    static let body = "Hello, World! From worker id 1 and group id 1\n"

    /// The user's bootstrap, as they would write it; alone it binds, under pooltop it takes
    /// the watcher's socket (`listener.serve(_:)`, NIO's `withBoundSocket`).
    static func bootstrap(group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 511)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Hello())
                }
            }
    }

    /// `PoolBench nio-alone PORT THREADS`: the server alone, on its own event loop group of
    /// THREADS threads; writes a byte on fd 3 once it listens, then serves until killed.
    static func runAlone(port: Int, threads: Int) -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            let channel = try bootstrap(group: group).bind(host: "127.0.0.1", port: port).wait()
            var byte: UInt8 = 1
            _ = write(3, &byte, 1)
            try channel.closeFuture.wait()
        } catch {
            let message = Array("nio-alone: \(error)\n".utf8)
            _ = write(2, message, message.count)
        }
        exit(1)
    }

    final class Hello: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var keepAlive = true

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): keepAlive = head.isKeepAlive
            case .body: break
            case .end:
                let body = ByteBuffer(string: UserNIOServer.body)
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/plain; charset=utf-8")
                headers.add(name: "content-length", value: "\(body.readableBytes)")
                if !keepAlive { headers.add(name: "connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if !keepAlive {
                    let channel = context.channel
                    done.whenComplete { _ in channel.close(promise: nil) }
                }
            }
        }
    }
}

/// The same server as pooltop reactors: one per worker process, on the worker's one event
/// loop, with the socket the watcher opened for the slot.
struct UserNIOReactor: WorkerEntryPoint {
    private var worker: Worker?

    init() {}

    mutating func initialize(worker: Worker) async throws { self.worker = worker }

    func run() async throws {
        guard let worker, let listener = worker.listeners.first else { throw WorkerExit.fatal("user-nio-hello needs a listener") }
        let server = try await listener.serve(UserNIOServer.bootstrap(group: worker.eventLoopGroup))
        await worker.awaitTermination()
        await listener.awaitQueueDrained()
        try? await server.close()
    }
}

/// The entry points the bench's workers may run: the demo's and the user's NIO server.
let benchEntryPoints: EntryPoints = {
    var entryPoints = DemoPool.entryPoints
    entryPoints.register("user-nio-hello") { UserNIOReactor() }
    return entryPoints
}()

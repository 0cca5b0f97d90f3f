import Glibc
import NIOCore
import NIOPosix
import PoolEngine

/// A reactor on SwiftNIO: answers each connection with one line naming the worker and closes it.
struct LineReactor: WorkerEntryPoint {
    var worker: Worker?
    /// When set, every process after a slot's first dies before it is ready (a bad deploy).
    var failAfterFirst = false
    /// When set, a process dies before it is ready while the test directory has a `bad-deploy` file.
    var failWhenMarked = false

    mutating func initialize(worker: Worker) async throws {
        self.worker = worker
        if failAfterFirst && worker.generation > 1 { exit(4) }
        if failWhenMarked && access("\(testDirectory())/bad-deploy", F_OK) == 0 { exit(4) }
    }

    func run() async throws {
        guard let worker else { return }
        guard let listener = worker.listeners.first else {
            throw WorkerExit.fatal("no listener was inherited")
        }
        appendLine("listeners", "\(worker.id) \(getpid()) \(worker.listeners.map { "\($0.name)=\($0.descriptor.rawValue)" }.joined(separator: ",")) LISTEN_PID=\(String(cString: getenv("LISTEN_PID")))")
        let line = "worker \(worker.id) pid \(getpid())\n"
        // Serves a TCP listener (a socket of the slot's own) and a Unix one (shared by the group) alike.
        let server = try await listener.serve(on: worker.eventLoopGroup) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(OneResponseHandler(response: line)) }
        }
        await worker.awaitTermination()
        await server.close()
    }
}

/// amphp-pool's SocketStrategyTest reactor: answers one HTTP request with its entry point's
/// name, records that it did, and ends its `run()` half a second later (its group restarts
/// never, so the pool then ends by itself).
struct SocketStrategyReactor: WorkerEntryPoint {
    static let name = "socket-strategy-reactor"
    var worker: Worker?

    mutating func initialize(worker: Worker) async throws { self.worker = worker }

    func run() async throws {
        guard let worker, let listener = worker.listeners.first else { throw WorkerExit.fatal("no listener was inherited") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (served, servedContinuation) = AsyncStream.makeStream(of: Void.self)
        let body = Self.name
        let response = "HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let bootstrap = ServerBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    OneResponseHandler(response: response) {
                        appendLine("served", "\(worker.id) \(getpid())")
                        servedContinuation.yield()
                    })
            }
        }
        let channel = try await listener.serve(bootstrap)
        for await _ in served { break }
        try await Task.sleep(for: .milliseconds(500))
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers whatever the client sends with one fixed response, then closes.
final class OneResponseHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let response: String
    let onServed: @Sendable () -> Void

    init(response: String, onServed: @escaping @Sendable () -> Void = {}) {
        self.response = response
        self.onServed = onServed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = context.channel
        let onServed = self.onServed
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(string: response))).whenComplete { _ in
            channel.close(promise: nil)
            onServed()
        }
    }
}

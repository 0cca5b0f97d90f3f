import Glibc
import NIOCore
import NIOPosix
import PoolEngine

/// A reactor on SwiftNIO: answers each connection with one line naming the worker and closes it.
struct LineReactor: WorkerEntryPoint {
    var worker: Worker?
    /// When set, every process after a slot's first dies before it is ready (a bad deploy).
    var failAfterFirst = false

    mutating func initialize(worker: Worker) async throws {
        self.worker = worker
        if failAfterFirst && worker.generation > 1 { exit(4) }
    }

    func run() async throws {
        guard let worker else { return }
        guard let listener = worker.listeners.first else {
            throw WorkerExit.fatal("no listener was inherited")
        }
        appendLine("listeners", "\(worker.id) \(getpid()) \(worker.listeners.map { "\($0.name)=\($0.descriptor)" }.joined(separator: ",")) LISTEN_PID=\(String(cString: getenv("LISTEN_PID")))")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let line = "worker \(worker.id) pid \(getpid())\n"
        let bootstrap = ServerBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(LineHandler(line: line)) }
        }
        let channel = try await listener.serve(bootstrap)
        await worker.awaitTermination()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Writes the line once the client has sent something, then closes.
final class LineHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let line: String

    init(line: String) { self.line = line }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = context.channel.allocator.buffer(string: line)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A job worker's listening socket, `<runtime dir>/worker-<id>.sock`: requests in, results out.
final class JobServer: Sendable {
    let path: String
    let scheduler: JobScheduler
    private let channel: any Channel

    private init(path: String, scheduler: JobScheduler, channel: any Channel) {
        self.path = path
        self.scheduler = scheduler
        self.channel = channel
    }

    static func socketPath(runtimeDirectory: String, worker: WorkerID) -> String {
        "\(runtimeDirectory)/worker-\(worker).sock"
    }

    static func start(
        path: String, scheduler: JobScheduler, group: any EventLoopGroup, logger: Logger
    ) async throws -> JobServer {
        let connections = Atomic<UInt64>(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                let connection = connections.add(1, ordering: .relaxed).newValue
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(JobFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        JobServerHandler(scheduler: scheduler, connection: connection, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        try Posix.setMode(path, 0o600)
        return JobServer(path: path, scheduler: scheduler, channel: channel)
    }

    /// Stops accepting connections and removes the socket file (open connections finish their jobs).
    func close() async {
        try? await channel.close()
        Posix.removeFile(path)
    }
}

/// One sender's connection: each request goes to the scheduler; its reply returns here.
final class JobServerHandler: ChannelInboundHandler {
    typealias InboundIn = JobFrame

    private let scheduler: JobScheduler
    private let connection: UInt64
    private let logger: Logger
    private var writer: CoalescingWriter?

    init(scheduler: JobScheduler, connection: UInt64, logger: Logger) {
        self.scheduler = scheduler
        self.connection = connection
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let writer = self.writer ?? CoalescingWriter(channel: context.channel)
        self.writer = writer
        switch unwrapInboundIn(data) {
        case .request(let request):
            scheduler.submit(request, connection: connection) { frame in writer.write(frame) }
        case .cancel(let jobID):
            scheduler.cancel(connection: connection, jobID: jobID)
        case .result, .error:
            logger.error("job connection \(connection): a sender sent a result frame; closing the connection")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        scheduler.cancelAll(connection: connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Malformed input closes this connection only; the worker and other senders go on.
        logger.error("job connection \(connection): \(error); closing it")
        context.close(promise: nil)
    }
}

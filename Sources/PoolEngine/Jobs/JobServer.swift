import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A job worker's listening socket, `<runtime dir>/worker-<id>.sock`: requests in, results out.
final class JobServer: Sendable {
    let path: String
    let scheduler: JobScheduler
    private let channel: any Channel
    private let connections: OpenJobConnections

    /// How long a stopping worker waits for its senders to close their connections after it
    /// said it is closing.
    static let closingGrace: Duration = .milliseconds(500)

    private init(path: String, scheduler: JobScheduler, channel: any Channel, connections: OpenJobConnections) {
        self.path = path
        self.scheduler = scheduler
        self.channel = channel
        self.connections = connections
    }

    static func socketPath(runtimeDirectory: String, worker: WorkerID) -> String {
        "\(runtimeDirectory)/worker-\(worker).sock"
    }

    static func start(
        path: String, scheduler: JobScheduler, group: any EventLoopGroup, logger: Logger
    ) async throws -> JobServer {
        let counter = Atomic<UInt64>(0)
        let open = OpenJobConnections()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                let connection = counter.add(1, ordering: .relaxed).newValue
                open.add(channel)
                channel.closeFuture.whenComplete { _ in open.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(JobFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        JobServerHandler(scheduler: scheduler, connection: connection, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        try Posix.setMode(path, 0o600)
        return JobServer(path: path, scheduler: scheduler, channel: channel, connections: open)
    }

    /// Stops accepting connections and removes the socket file, then tells every sender still
    /// connected that this worker is closing, shuts its side of each connection for writing,
    /// and waits (at most ``closingGrace``) for the senders to close theirs. Call it once the
    /// scheduler has drained: every job taken has been answered, so a request that crosses the
    /// `closing` frame was not run, and its sender, seeing the end after `closing`, sends it to
    /// another worker instead of failing it as `workerLost`. The shut write side is what an
    /// idle sender notices at once (EPOLLRDHUP), even though it is not reading its socket.
    func close() async {
        try? await channel.close()
        Posix.removeFile(path)
        for connection in connections.all {
            var buffer = connection.allocator.buffer(capacity: JobFrame.headerSize)
            JobFrame.closing.write(to: &buffer)
            connection.writeAndFlush(buffer, promise: nil)
            // After the frame: NIO shuts the socket once the writes queued before are done.
            connection.close(mode: .output, promise: nil)
        }
        let deadline = ContinuousClock.now + Self.closingGrace
        while !connections.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}

/// The senders' connections a job server has open, so that stopping can say goodbye to each.
final class OpenJobConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    var all: [any Channel] { channels.withLock { Array($0.values) } }
    var isEmpty: Bool { channels.withLock { $0.isEmpty } }
}

/// One sender's connection: each request goes to the scheduler; its reply returns here.
final class JobServerHandler: ChannelInboundHandler {
    typealias InboundIn = JobFrame

    private let scheduler: JobScheduler
    private let connection: UInt64
    private let logger: Logger
    private var writer: CoalescingWriter?
    private var announcer: StartAnnouncer?

    init(scheduler: JobScheduler, connection: UInt64, logger: Logger) {
        self.scheduler = scheduler
        self.connection = connection
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let scheduler = self.scheduler
        let connection = self.connection
        let writer =
            self.writer
            ?? CoalescingWriter(channel: context.channel) { jobIDs in
                scheduler.answersWritten(connection: connection, jobIDs: jobIDs)
            }
        self.writer = writer
        let announcer = self.announcer ?? StartAnnouncer(channel: context.channel)
        self.announcer = announcer
        switch unwrapInboundIn(data) {
        case .request(let request):
            scheduler.submit(request, connection: connection, gate: announcer.announce) { frame in writer.write(frame) }
        case .cancel(let jobID):
            scheduler.cancel(connection: connection, jobID: jobID)
        case .result, .error, .closing, .started:
            logger.error("job connection \(connection): a sender sent a worker's frame; closing the connection")
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

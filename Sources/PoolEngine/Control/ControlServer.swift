import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The watcher's control socket: newline-delimited JSON requests and responses
/// (`docs/control-protocol.md`), for the CLI, the console when attached, and `socat`.
///
/// Only processes of the pool owner's uid may talk to it: the directory is 0700, the socket
/// 0600, and every connection's peer uid is checked with SO_PEERCRED.
///
/// Structured concurrency throughout: the server is an `NIOAsyncChannel` whose connections are
/// served in a discarding task group, each connection's requests in a task group of its own,
/// so shutdown cancels one task and waits for it, and nothing is left running.
final class ControlServer: Sendable {
    /// The longest request line accepted; a longer one gets an error and the connection closes.
    static let maximumLineLength = 64 * 1024

    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    private let eventLoopGroup: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let serving: Task<Void, Never>
    let path: String

    private init(eventLoopGroup: MultiThreadedEventLoopGroup, serverChannel: any Channel, serving: Task<Void, Never>, path: String) {
        self.eventLoopGroup = eventLoopGroup
        self.serverChannel = serverChannel
        self.serving = serving
        self.path = path
    }

    static func start(
        path: String, pool: WorkerPool, logger: Logger, connections: ControlConnections = ControlConnections()
    ) async throws -> ControlServer {
        // The watcher process's one event loop group: the control socket is its only NIO user.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                // `echo '{"command":"status"}' | socat - UNIX-CONNECT:…` half-closes after its request:
                // answer it before closing.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineDecoder(maximumLength: maximumLineLength)))
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
            // Only our uid may connect; the 0700 directory already keeps others out.
            try Posix.setMode(path, 0o600)
            let serverChannel = server.channel
            let serving = Task {
                await serve(server, pool: pool, logger: logger, connections: connections)
            }
            return ControlServer(eventLoopGroup: group, serverChannel: serverChannel, serving: serving, path: path)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops accepting, ends every connection (requests under way are cancelled and answer
    /// first), then stops the loop.
    func shutdown() async {
        try? await serverChannel.close()
        serving.cancel()
        await serving.value
        try? await eventLoopGroup.shutdownGracefully()
    }

    /// Accepts connections until the server channel closes or the task is cancelled.
    private static func serve(
        _ server: NIOAsyncChannel<Connection, Never>, pool: WorkerPool, logger: Logger, connections: ControlConnections
    ) async {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        let channel = connection.channel
                        switch connections.admit(channel) {
                        case .admitted:
                            break
                        case .admittedEvicting(let idle):
                            logger.notice("control socket: \(connections.limit) connections open; closed the oldest idle one for a new one")
                            idle.close(promise: nil)
                        case .refused:
                            logger.warning("control socket: \(connections.limit) connections open, all busy; refused a new one")
                            group.addTask { await refuseBusy(connection, limit: connections.limit) }
                            continue
                        }
                        group.addTask {
                            await ControlSession(connection: connection, pool: pool, logger: logger, connections: connections).run()
                            connections.remove(channel)
                        }
                    }
                }
            }
        } catch {
            // The server channel failed or the task was cancelled: every connection has ended.
            if !(error is CancellationError) { logger.debug("control socket stopped accepting: \(error)") }
        }
    }

    /// Answers a connection the control socket has no room for with `busy`, and closes it.
    private static func refuseBusy(_ connection: Connection, limit: Int) async {
        let refusal = JSONValue.object(
            ControlErrorCode.busy.response(
                "the control socket has \(limit) connections open, each answering a request or streaming events; try again")
        ).serialized
        try? await connection.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(string: refusal + "\n"))
        }
    }
}

/// Splits the inbound byte stream into lines (without the newline); refuses over-long ones.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maximumLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            guard length <= maximumLength else { throw ControlRequestError.oversized(length) }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            context.fireChannelRead(Self.wrapInboundOut(line))
            return .continue
        }
        if buffer.readableBytes > maximumLength { throw ControlRequestError.oversized(buffer.readableBytes) }
        return .needMoreData
    }
}


enum ControlRequestError: Error {
    case oversized(Int)
    /// The channel is not a socket whose peer credentials can be read (never seen on a Unix socket).
    case noPeerCredentials
}

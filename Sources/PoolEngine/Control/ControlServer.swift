import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The watcher's control socket: newline-delimited JSON requests and responses
/// (`docs/control-protocol.md`), for the CLI, the console when attached, and `socat`.
///
/// Only processes of the pool owner's uid may talk to it: the directory is 0700, the socket
/// 0600, and every connection's peer uid is checked with SO_PEERCRED.
final class ControlServer: Sendable {
    /// The longest request line accepted; a longer one gets an error and the connection closes.
    static let maximumLineLength = 64 * 1024

    private let eventLoopGroup: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let tasks: ControlTasks
    let path: String

    private init(eventLoopGroup: MultiThreadedEventLoopGroup, channel: any Channel, tasks: ControlTasks, path: String) {
        self.eventLoopGroup = eventLoopGroup
        self.channel = channel
        self.tasks = tasks
        self.path = path
    }

    static func start(
        path: String, pool: WorkerPool, logger: Logger, connections: ControlConnections = ControlConnections()
    ) async throws -> ControlServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tasks = ControlTasks()
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                // `echo '{"command":"status"}' | socat - UNIX-CONNECT:…` half-closes after its request:
                // answer it before closing.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    switch connections.admit(channel) {
                    case .admitted:
                        break
                    case .admittedEvicting(let idle):
                        logger.notice(
                            "control socket: \(connections.limit) connections open; closed the oldest idle one for a new one")
                        idle.close(promise: nil)
                    case .refused:
                        logger.warning("control socket: \(connections.limit) connections open, all busy; refused a new one")
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(BusyRefusal(limit: connections.limit))
                        }
                    }
                    channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineDecoder(maximumLength: maximumLineLength)))
                        try channel.pipeline.syncOperations.addHandler(
                            ControlConnectionHandler(pool: pool, logger: logger, tasks: tasks, connections: connections))
                    }
                }
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
                .get()
            // Only our uid may connect; the 0700 directory already keeps others out.
            try Posix.setMode(path, 0o600)
            return ControlServer(eventLoopGroup: group, channel: channel, tasks: tasks, path: path)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops accepting, ends every request still running (they answer before the loop stops), then stops the loop.
    func shutdown() async {
        try? await channel.close()
        await tasks.cancelAndWait()
        try? await eventLoopGroup.shutdownGracefully()
    }
}

/// Answers a connection the control socket has no room for with `busy`, once it is active, and closes it.
final class BusyRefusal: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func channelActive(context: ChannelHandlerContext) {
        let refusal = JSONValue.object(
            ControlErrorCode.busy.response(
                "the control socket has \(limit) connections open, each answering a request or streaming events; try again")
        ).serialized
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer(string: refusal + "\n"))).whenComplete { _ in channel.close(promise: nil) }
        context.fireChannelActive()
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

/// Every request task of every connection, so shutdown can end them before the event loop stops.
final class ControlTasks: Sendable {
    private struct State: ~Copyable {
        var running: [Int: Task<Void, Never>] = [:]
        /// Tasks that finished before they were registered.
        var finishedEarly: Set<Int> = []
    }
    private let state = Mutex(State())
    private let next = Atomic<Int>(0)

    /// Starts a task through `start`, which must call the given closure when the task is done.
    @discardableResult
    func track(_ start: (@escaping @Sendable () -> Void) -> Task<Void, Never>) -> Task<Void, Never> {
        let id = next.add(1, ordering: .relaxed).newValue
        let task = start { [self] in
            state.withLock { state in
                if state.running.removeValue(forKey: id) == nil { state.finishedEarly.insert(id) }
            }
        }
        state.withLock { state in
            if state.finishedEarly.remove(id) == nil { state.running[id] = task }
        }
        return task
    }

    func cancelAndWait() async {
        let all = state.withLock { state -> [Task<Void, Never>] in
            defer { state.running = [:] }
            return Array(state.running.values)
        }
        for task in all { task.cancel() }
        for task in all { await task.value }
    }
}

/// One control connection: checks the peer, parses each line, answers on the same connection.
final class ControlConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pool: WorkerPool
    private let logger: Logger
    private var isAuthorized = false
    private var pending: [ByteBuffer] = []
    private var tasks: [Task<Void, Never>] = []
    /// Requests still being answered (not counting event streams).
    private var unanswered = 0
    private var inputClosed = false

    private let serverTasks: ControlTasks
    private let connections: ControlConnections

    init(pool: WorkerPool, logger: Logger, tasks: ControlTasks, connections: ControlConnections) {
        self.pool = pool
        self.logger = logger
        self.serverTasks = tasks
        self.connections = connections
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let credentials: EventLoopFuture<PeerCredentials>
        if let provider = channel as? any SocketOptionProvider {
            credentials = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(Posix.socketLevel), name: SocketOptionName(Posix.peerCredentialsOption))
        } else {
            credentials = channel.eventLoop.makeFailedFuture(ControlRequestError.noPeerCredentials)
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let logger = self.logger
        credentials.whenComplete { result in
            let handler = loopBound.value
            switch result {
            case .success(let peer) where peer.uid == Posix.userID:
                handler.isAuthorized = true
                let queued = handler.pending
                handler.pending = []
                for line in queued { handler.handle(line, channel: channel) }
            case .success(let peer):
                logger.warning(
                    "control socket: refused a connection from uid \(peer.uid) (pid \(peer.pid)); only uid \(Posix.userID) may connect")
                handler.respond(
                    ControlErrorCode.permissionDenied.response(
                        "uid \(peer.uid) may not control this pool; only its owner (uid \(Posix.userID)) may"),
                    channel: channel, close: true)
            case .failure(let error):
                logger.error("control socket: cannot read the peer's credentials: \(error)")
                channel.close(promise: nil)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for task in tasks { task.cancel() }
        tasks = []
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            closeIfDone(context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// After the client half-closed, close once every request has its answer (streams excepted).
    private func closeIfDone(_ channel: any Channel) {
        if inputClosed && unanswered == 0 && pending.isEmpty && !isStreaming {
            channel.close(promise: nil)
        }
    }

    private var isStreaming = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if isAuthorized {
            handle(line, channel: context.channel)
        } else {
            pending.append(line)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case ControlRequestError.oversized(let length) = error {
            respond(
                ControlErrorCode.oversized.response(
                    "request line of \(length)+ bytes is longer than the limit of \(ControlServer.maximumLineLength)"),
                channel: context.channel, close: true)
        } else {
            context.close(promise: nil)
        }
    }

    private func handle(_ line: ByteBuffer, channel: any Channel) {
        let text = String(buffer: line)
        if text.allSatisfy({ $0 == " " || $0 == "\r" || $0 == "\t" }) { return }
        switch Self.parse(text) {
        case .failure(let failure):
            respond(failure.response, channel: channel)
        case .success(let request):
            tasks.removeAll { $0.isCancelled }
            if case .events = request.command {
                isStreaming = true
            } else {
                unanswered += 1
            }
            connections.setBusy(channel, true)
            let requestStreams = { if case .events = request.command { return true } else { return false } }()
            let loopBound = NIOLoopBound(self, eventLoop: channel.eventLoop)
            let pool = self.pool
            let isStream = requestStreams
            let task = serverTasks.track { done in
                Self.start(request, pool: pool, channel: channel) {
                    if !isStream {
                        channel.eventLoop.execute {
                            let handler = loopBound.value
                            handler.unanswered -= 1
                            if handler.unanswered == 0 && !handler.isStreaming { handler.connections.setBusy(channel, false) }
                            handler.closeIfDone(channel)
                        }
                    }
                    done()
                }
            }
            tasks.append(task)
        }
    }

    private static func parse(_ text: String) -> Result<ControlRequest, ControlRequest.Failure> {
        do {
            return .success(try ControlRequest(parsing: text))
        } catch {
            return .failure(error)
        }
    }

    /// Runs one request in a task of its own; its response goes back on the channel.
    private static func start(
        _ request: ControlRequest, pool: WorkerPool, channel: any Channel, answered: @escaping @Sendable () -> Void
    ) -> Task<Void, Never> {
        let id = request.id
        if case .events(let replay) = request.command {
            let (records, replayed) = pool.eventRecordsCountingReplay(replay: replay)
            // Someone follows the pool live: its figures are sampled at full rate meanwhile.
            pool.viewerStreamStarted()
            return Task {
                await stream(records, replayed: replayed, id: id, channel: channel)
                pool.viewerStreamEnded()
                answered()
            }
        }
        let command = request.command
        return Task {
            write(line: await ControlCommands.perform(command, on: pool, id: id), channel: channel, close: false)
            answered()
        }
    }

    private func respond(_ response: [String: JSONValue], channel: any Channel, close: Bool = false) {
        Self.write(response, channel: channel, close: close)
    }

    private static func write(_ response: [String: JSONValue], channel: any Channel, close: Bool) {
        write(line: JSONValue.object(response).serialized, channel: channel, close: close)
    }

    private static func write(line: String, channel: any Channel, close: Bool) {
        let future = channel.writeAndFlush(ByteBuffer(string: line + "\n"))
        if close { future.whenComplete { _ in channel.close(promise: nil) } }
    }

    /// Streams events as lines; a client too slow to read loses events, and is told how many.
    private static func stream(
        _ records: AsyncStream<PoolEventRecord>, replayed: Int, id: JSONValue?, channel: any Channel
    ) async {
        var acknowledgement: [String: JSONValue] = [
            "ok": .bool(true), "streaming": .bool(true), "replaying": .number(Double(replayed)),
        ]
        if let id { acknowledgement["id"] = id }
        write(acknowledgement, channel: channel, close: false)
        var dropped = 0
        var remaining = replayed
        if remaining == 0 { write(["type": .string("live")], channel: channel, close: false) }
        for await record in records {
            defer {
                remaining -= 1
                // After the replayed history, a marker: `logs` without -f stops here.
                if remaining == 0 { write(["type": .string("live")], channel: channel, close: false) }
            }
            guard channel.isActive else { return }
            guard channel.isWritable else {
                dropped += 1
                continue
            }
            if dropped > 0 {
                write(["type": .string("dropped"), "count": .number(Double(dropped))], channel: channel, close: false)
                dropped = 0
            }
            guard let line = try? JSONValue.encodeLine(record) else { continue }
            channel.writeAndFlush(ByteBuffer(string: line + "\n"), promise: nil)
        }
        // The pool stopped: say so, then close.
        write(["type": .string("end"), "why": .string("the pool has stopped")], channel: channel, close: true)
    }
}

import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import PoolEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension InheritedListener {
    /// Serves a Hummingbird responder (`router.buildResponder()`) on this inherited socket until
    /// the worker is asked to stop, then drains and returns.
    ///
    /// Hummingbird 2's own server always binds the address it is configured with
    /// (`Server.makeServer`), so it cannot serve the socket the watcher opened for the slot. This
    /// does what its `Application` does per connection and per request, through its public API:
    /// `HTTP1Channel` sets up the same NIO pipeline and runs the same request loop, and each
    /// request gets the same context and the same error handling; only the socket comes from
    /// pooltop (``serve(on:childChannelInitializer:)``, which also accepts exclusively on a socket
    /// the group's workers share).
    ///
    /// Stopping: the watcher has already steered new connections elsewhere, so this takes what is
    /// queued on the socket and stops accepting. Each open connection then finishes as the demo
    /// reactor's do (docs/reactors.md): one with a request in flight answers it with
    /// `connection: close`; one between requests gets `grace` to send its next request, which
    /// is answered the same way, and is closed if it sends none. Closing it at once, as
    /// Hummingbird's own shutdown does, races the client's next request, which then meets a
    /// reset. It returns once every connection has closed; the group's `stopTimeout` bounds that.
    public func serveHummingbird<Responder: HTTPResponder>(
        _ responder: Responder, worker: Worker, configuration: HTTP1Channel.Configuration = .init(), serverName: String? = nil,
        grace: TimeAmount = .milliseconds(250)
    ) async throws where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let logger = worker.logger
        var configuration = configuration
        let handlers = configuration.additionalChannelHandlers
        // Last, so it sits just before Hummingbird's connection state handler, which closes.
        configuration.additionalChannelHandlers = { handlers() + [StopBetweenRequests(grace: grace)] }
        let dates = HTTPDateCache()
        let http = HTTP1Channel(
            responder: { request, writer, channel in
                let context = Responder.Context(source: ApplicationRequestContextSource(channel: channel, logger: logger))
                var response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPParserError {
                    // The request could not be read: the connection's loop answers 400 and closes.
                    throw error
                } catch {
                    // As Hummingbird's Application: an error no middleware turned into a response.
                    logger.debug("unrecognised error", metadata: ["error.type": "\(error)"])
                    response = Response(status: .internalServerError)
                }
                response.headers[.date] = dates.current()
                if let serverName { response.headers[.server] = serverName }
                try await writer.write(response: response.head, body: response.body)
            }, configuration: configuration)

        let (accepted, acceptor) = AsyncStream<HTTP1Channel.Value>.makeStream()
        let open = OpenConnections()
        let server = try await serve(on: worker.eventLoopGroup) { channel in
            http.setup(channel: channel, logger: logger).map { connection in
                // Accepted after the stream ended (the server was closing): nobody would read it.
                if case .terminated = acceptor.yield(connection) { connection.channel.close(promise: nil) }
            }
        }
        // Not a child of run(): a worker's run() is cancelled when it is asked to stop, and
        // Hummingbird closes a connection whose task is cancelled, request in flight or not.
        // The drain below ends the connections instead, within the group's stopTimeout.
        let serving = Task {
            await withDiscardingTaskGroup { connections in
                connections.addTask {
                    await worker.awaitTermination()
                    await self.awaitQueueDrained()
                    await server.close()
                    acceptor.finish()
                    open.quiesce()
                }
                for await connection in accepted {
                    connections.addTask {
                        let id = open.insert(connection.channel)
                        await http.handle(value: connection, logger: logger)
                        open.remove(id)
                    }
                }
            }
        }
        await serving.value
    }
}

/// The connections a worker has open, so that a stopping worker can tell each to finish.
private final class OpenConnections: Sendable {
    private struct State {
        var channels: [Int: any Channel] = [:]
        var next = 0
        var quiescing = false
    }

    private let state = Mutex(State())

    /// Adds a connection; one that arrives once the worker is stopping is told to finish at once.
    func insert(_ channel: any Channel) -> Int {
        let (id, quiescing) = state.withLock { state in
            state.next += 1
            state.channels[state.next] = channel
            return (state.next, state.quiescing)
        }
        if quiescing { channel.pipeline.fireUserInboundEventTriggered(StopBetweenRequests.Stop()) }
        return id
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }

    /// Tells every open connection to finish (``StopBetweenRequests``).
    func quiesce() {
        let channels = state.withLock { state in
            state.quiescing = true
            return Array(state.channels.values)
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(StopBetweenRequests.Stop()) }
    }
}

/// Ends a connection of a stopping worker without racing its client. Hummingbird's connection
/// state handler, on NIO's quiesce event, closes an idle connection at once and a busy one after
/// its response, without saying so in that response: a keep-alive client may already be sending
/// its next request, which then meets a reset. So once stopping, this marks the next response
/// head `connection: close` and only then passes the event on; a connection between requests
/// gets `grace` to send one, and is closed (the event passed on while idle) if it sends none.
private final class StopBetweenRequests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The worker is stopping.
    struct Stop: Sendable {}

    private let grace: TimeAmount
    /// Request heads read whose response has not been written to its end (pipelining: several).
    private var requestsInFlight = 0
    private var stopping = false
    private var passedOn = false
    private var graceTimer: Scheduled<Void>?

    init(grace: TimeAmount) { self.grace = grace }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            requestsInFlight += 1
            graceTimer?.cancel()
            graceTimer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where stopping && !passedOn:
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
            // The request is in flight, so the state handler closes after this response.
            passOn(context)
        case .end:
            requestsInFlight -= 1
            context.write(data, promise: promise)
            if stopping, requestsInFlight == 0 { startGrace(context) }
        default:
            context.write(data, promise: promise)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Stop else { return context.fireUserInboundEventTriggered(event) }
        guard !stopping else { return }
        stopping = true
        // A request in flight is marked when its head is written; else wait for the next one.
        if requestsInFlight == 0 { startGrace(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        graceTimer?.cancel()
    }

    private func startGrace(_ context: ChannelHandlerContext) {
        guard !passedOn, graceTimer == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        graceTimer = context.eventLoop.scheduleTask(in: grace) {
            let (handler, context) = loopBound.value
            handler.graceTimer = nil
            // Idle all along: the state handler closes the connection at once.
            handler.passOn(context)
        }
    }

    private func passOn(_ context: ChannelHandlerContext) {
        guard !passedOn else { return }
        passedOn = true
        graceTimer?.cancel()
        graceTimer = nil
        context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}

/// The `date` header's value, formatted once a second (RFC 9110 IMF-fixdate), as Hummingbird's
/// own server keeps it; its cache is internal to Hummingbird.
private final class HTTPDateCache: Sendable {
    private let cached = Mutex<(second: Int, text: String)>((-1, ""))

    func current() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = now.tv_sec
        return cached.withLock { cached in
            if cached.second != second { cached = (second, Self.format(second)) }
            return cached.text
        }
    }

    private static func format(_ second: Int) -> String {
        var time = time_t(second)
        var fields = tm()
        gmtime_r(&time, &fields)
        var buffer = [CChar](repeating: 0, count: 40)
        // The C locale's day and month names, which are the ones HTTP requires.
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &fields)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

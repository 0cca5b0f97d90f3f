import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import PoolEngine
import Synchronization

/// The seed's HttpReactor and HttpServerWithJobs examples as one SwiftNIO HTTP/1.1 reactor.
///
/// - `GET /`: "Hello, World! From worker id N and group id G".
/// - `GET /pid`: the worker's pid.
/// - `GET /job?cmd=…`: submits the command to the group's first job group (the demo's `jobs`)
///   and answers with the job's result (200), or its error with a status saying whose fault
///   it is: 400 bad request, 422 the handler failed, 503 no worker could take it, 504 timed out.
///
/// Keep-alive and pipelining come from NIO's HTTP server pipeline. Connection counters go to
/// shared memory (accepted, active, processed = closed cleanly, errors).
public struct HTTPHello: WorkerEntryPoint {
    private var worker: Worker?

    public init() {}

    public mutating func initialize(worker: Worker) async throws { self.worker = worker }

    public func run() async throws {
        guard let worker else { return }
        guard let listener = worker.listeners.first else {
            throw WorkerExit.fatal("http-hello serves a listener; give its group one, e.g. listen: [\"127.0.0.1:8080\"]")
        }
        let jobGroup = worker.group.jobGroups.first.flatMap { worker.pool.group($0)?.name }
        let site = HelloSite(worker: worker, jobGroup: jobGroup)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HelloHandler(site: site))
                }
            }
        let server = try await listener.serve(bootstrap)
        await worker.awaitTermination()
        // Stop accepting at once (the socket stays open in the watcher, so connections queued
        // on it wait for this slot's next worker), then let each open connection finish the
        // request it is on: idle ones close now, busy ones after their response. The
        // watcher's stop timeout bounds how long this may take.
        try? await server.close()
        // Connections accepted in the server's last read are still being registered on the
        // loop; two turns of it let them show up as open before the drain looks.
        for _ in 0..<2 { try? await server.eventLoop.submit {}.get() }
        await site.connections.drain()
        try? await group.shutdownGracefully()
    }
}

/// What every connection's handler shares: the worker and the precomputed greeting.
final class HelloSite: Sendable {
    let worker: Worker
    let connections = OpenConnections()
    let jobGroup: String?
    let greeting: String
    let pid: String

    init(worker: Worker, jobGroup: String?) {
        self.worker = worker
        self.jobGroup = jobGroup
        greeting = "Hello, World! From worker id \(worker.id) and group id \(worker.group.id)\n"
        pid = "\(getpid())\n"
    }
}

final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let site: HelloSite
    private var keepAlive = true
    private var closedByError = false

    init(site: HelloSite) { self.site = site }

    func channelActive(context: ChannelHandlerContext) {
        site.connections.opened(context.channel)
        site.worker.recordActivity { activity in
            activity.connectionsAccepted += 1
            activity.connectionsActive += 1
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        site.connections.closed(context.channel)
        let failed = closedByError
        site.worker.recordActivity { activity in
            activity.connectionsActive -= 1
            if failed { activity.connectionsErrors += 1 } else { activity.connectionsProcessed += 1 }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closedByError = true
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        // A draining worker answers what it was asked, then closes the connection.
        keepAlive = site.connections.requestStarted(context.channel) && head.isKeepAlive
        let (path, query) = split(head.uri)
        switch path {
        case "/": respond(context, .ok, site.greeting)
        case "/pid": respond(context, .ok, site.pid)
        case "/job": submitJob(context, query: query)
        default: respond(context, .notFound, "no page \(path); try /, /pid or /job?cmd=echo+hi\n")
        }
    }

    private func submitJob(_ context: ChannelHandlerContext, query: [String: String]) {
        guard let command = query["cmd"], !command.isEmpty else {
            respond(context, .badRequest, "give the job as /job?cmd=COMMAND (for example cmd=echo+hi)\n")
            return
        }
        guard let jobGroup = site.jobGroup else {
            respond(context, .serviceUnavailable, "this reactor's group lists no jobGroups to send jobs to\n")
            return
        }
        let jobs = site.worker.jobs
        let answer = context.eventLoop.makePromise(of: (HTTPResponseStatus, String).self)
        answer.completeWithTask {
            do throws(JobError) {
                let result = try await jobs.submit(command, to: .name(jobGroup))
                return (.ok, result.text + "\n")
            } catch {
                return (Self.status(of: error), "job failed (\(error.code.rawValue)): \(error.message)\n")
            }
        }
        // Back on this connection's loop, where the handler and its context live.
        answer.futureResult.assumeIsolated().whenSuccess { status, body in
            self.respond(context, status, body)
        }
    }

    static func status(of error: JobError) -> HTTPResponseStatus {
        switch error.code {
        case .badRequest, .tooLarge, .notAllowed: .badRequest
        case .handlerFailed: .unprocessableEntity
        case .timedOut: .gatewayTimeout
        case .rejected, .noWorkerAvailable, .workerLost, .cancelled: .serviceUnavailable
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String) {
        if site.connections.isDraining { keepAlive = false }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: "\(body.utf8.count)")
        headers.add(name: "x-worker", value: "\(site.worker.id)")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !site.connections.requestFinished(context.channel) { keepAlive = false }
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Splits "/job?cmd=echo+hi" into its path and its decoded query parameters.
    private func split(_ uri: String) -> (String, [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = Self.decode(parts[0])
            query[key] = parts.count > 1 ? Self.decode(parts[1]) : ""
        }
        return (String(uri[..<mark]), query)
    }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next(), let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                    bytes.append(value)
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The worker's open connections, so that stopping can wait for the requests in flight.
final class OpenConnections: Sendable {
    private struct State {
        /// Accepted, no request read yet: its first request is most likely on the wire.
        var fresh: [ObjectIdentifier: any Channel] = [:]
        var busy: [ObjectIdentifier: any Channel] = [:]
        /// Kept alive between requests.
        var idle: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    /// How long a draining worker waits for the first request of a connection it just accepted.
    static let freshGrace: Duration = .milliseconds(250)
    private let state = Mutex(State())

    var isDraining: Bool { state.withLock { $0.draining } }

    func opened(_ channel: any Channel) {
        state.withLock { $0.fresh[ObjectIdentifier(channel)] = channel }
    }

    func closed(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { state in
            state.fresh[key] = nil
            state.idle[key] = nil
            state.busy[key] = nil
        }
    }

    /// Marks the connection busy; returns false when draining (answer, then close).
    func requestStarted(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        return state.withLock { state in
            state.fresh[key] = nil
            state.idle[key] = nil
            state.busy[key] = channel
            return !state.draining
        }
    }

    /// Marks the connection idle again; returns false when draining (close it after this response).
    func requestFinished(_ channel: any Channel) -> Bool {
        state.withLock { state in
            state.busy[ObjectIdentifier(channel)] = nil
            if state.draining { return false }
            state.idle[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    /// Closes idle connections now, gives fresh ones a moment to send their request, and
    /// waits until every busy one has answered and closed.
    func drain() async {
        let idle = state.withLock { state -> [any Channel] in
            state.draining = true
            return Array(state.idle.values)
        }
        closeIfNotBusy(idle)
        let started = ContinuousClock.now
        var freshClosed = false
        while true {
            let (busy, fresh) = state.withLock { ($0.busy.count, Array($0.fresh.values)) }
            if busy == 0 && fresh.isEmpty { return }
            if !freshClosed && ContinuousClock.now - started >= Self.freshGrace {
                closeIfNotBusy(fresh)
                freshClosed = true
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func closeIfNotBusy(_ channels: [any Channel]) {
        for channel in channels {
            // Checked again on the connection's own loop: a request that arrived meanwhile is answered first.
            channel.eventLoop.execute {
                if self.state.withLock({ $0.busy[ObjectIdentifier(channel)] == nil }) { channel.close(promise: nil) }
            }
        }
    }
}

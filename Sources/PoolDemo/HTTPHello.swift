import Glibc
import NIOCore
import NIOPosix
import PoolEngine

/// The seed's HttpReactor and HttpServerWithJobs examples as one SwiftNIO HTTP/1.1 reactor.
///
/// - `GET /`: "Hello, World! From worker id N and group id G".
/// - `GET /pid`: the worker's pid.
/// - `GET /job?cmd=…`: submits the command to the group's first job group (the demo's `jobs`)
///   and answers with the job's result (200), or its error with a status saying whose fault
///   it is: 400 bad request, 422 the handler failed, 503 no worker could take it, 504 timed out.
///
/// It serves every listener of its group over HTTP/1.1 with keep-alive and pipelining, reading
/// the requests itself (``HelloHandler``, ``HTTPRequestParser``) rather than through NIO's HTTP
/// codec, which cost most of its time per request (decision 0017). Connection counters go to
/// shared memory (accepted, active, processed = closed cleanly, errors).
public struct HTTPHello: WorkerEntryPoint {
    private var worker: Worker?

    public init() {}

    public mutating func initialize(worker: Worker) async throws { self.worker = worker }

    public func run() async throws {
        guard let worker else { return }
        guard !worker.listeners.isEmpty else {
            throw WorkerExit.fatal("http-hello serves a listener; give its group one, e.g. listen: [\"127.0.0.1:8080\"]")
        }
        let jobGroup = worker.group.jobGroups.first.flatMap { worker.pool.group($0)?.name }
        let site = HelloSite(worker: worker, jobGroup: jobGroup)
        // Every listener of the group gets the same site (a second port, a Unix socket).
        var servers: [ListenerServer] = []
        for listener in worker.listeners {
            servers.append(
                try await listener.serve(on: worker.eventLoopGroup) { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HelloHandler(site: site)) }
                })
        }
        await worker.awaitTermination()
        // The watcher already sends new connections elsewhere: take the ones queued on these
        // sockets (closing them for good would reset them), then stop accepting, then let each
        // open connection finish the request it is on: idle ones close now, busy ones after
        // their response. The watcher's stop timeout bounds how long this may take.
        for listener in worker.listeners { await listener.awaitQueueDrained() }
        for server in servers {
            await server.close()
            // Connections accepted in the server's last read are still being registered on the
            // loop; two turns of it let them show up as open before the drain looks.
            for _ in 0..<2 { try? await server.eventLoop.submit {}.get() }
        }
        await site.connections.drain()
    }
}

/// What every connection's handler shares: the worker and the bodies that never change.
final class HelloSite: Sendable {
    let worker: Worker
    let connections = OpenConnections()
    let jobGroup: String?
    let greetingText: String
    let pidText: String

    init(worker: Worker, jobGroup: String?) {
        self.worker = worker
        self.jobGroup = jobGroup
        greetingText = "Hello, World! From worker id \(worker.id) and group id \(worker.group.id)\n"
        pidText = "\(getpid())\n"
    }
}

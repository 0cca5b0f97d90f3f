import Glibc
import NIOCore
import NIOHTTP1
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
/// It serves every listener of its group. Keep-alive and pipelining come from NIO's HTTP server pipeline. Connection counters go to
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
            servers.append(try await listener.serveHTTP(on: worker.eventLoopGroup) { HelloHandler(site: site) })
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

/// What every connection's handler shares: the worker and the responses that never change,
/// built once (the greeting is what nearly every request asks for).
final class HelloSite: Sendable {
    let worker: Worker
    let connections = OpenConnections()
    let jobGroup: String?
    let greeting: HelloResponse
    let pid: HelloResponse

    init(worker: Worker, jobGroup: String?) {
        self.worker = worker
        self.jobGroup = jobGroup
        greeting = HelloResponse("Hello, World! From worker id \(worker.id) and group id \(worker.group.id)\n", worker: worker.id)
        pid = HelloResponse("\(getpid())\n", worker: worker.id)
    }
}

/// A response's headers and body, ready to write.
struct HelloResponse: Sendable {
    let headers: HTTPHeaders
    let body: ByteBuffer

    init(_ text: String, worker: WorkerID) {
        body = ByteBuffer(string: text)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        headers.add(name: "x-worker", value: "\(worker)")
        self.headers = headers
    }
}

import Glibc
import Hummingbird
import HummingbirdReactor
import PoolEngine

/// The app's routes, the same whoever serves them (a pooltop reactor, or Hummingbird alone).
func makeRouter(worker: String) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/") { _, _ in "Hello, World! From worker id 1 and group id 1\n" }
    router.get("/health") { _, _ in "ok\n" }
    // Which process answered: each connection is one worker's alone.
    router.get("/worker") { _, _ in "\(worker)\n" }
    router.post("/echo") { request, _ in
        Response(status: .ok, body: ResponseBody(asyncSequence: request.body))
    }
    return router
}

/// The reactor workers: each serves the router on the socket the watcher opened for its slot.
struct Web: WorkerEntryPoint {
    var worker: Worker?

    mutating func initialize(worker: Worker) async throws { self.worker = worker }

    func run() async throws {
        guard let worker, let listener = worker.listeners.first else {
            throw WorkerExit.fatal("the web group needs a listener, e.g. listen: [\"127.0.0.1:8096\"]")
        }
        let router = makeRouter(worker: "worker \(worker.id.rawValue) pid \(getpid())")
        worker.logger.info("serving http://\(listener.listener?.description ?? listener.name)")
        try await listener.serveHummingbird(router.buildResponder(), worker: worker)
    }
}

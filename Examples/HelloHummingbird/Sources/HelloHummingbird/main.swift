import Glibc
import Hummingbird
import Logging
import NIOPosix
import PoolEngine
import PoolTopCLI

// `HelloHummingbird alone PORT THREADS`: the same router under Hummingbird's own server, which
// binds 127.0.0.1:PORT itself, with THREADS event loop threads; a byte on fd 3 (when open)
// says it listens. pooltop's bench runs the two side by side (docs/reactors.md).
let arguments = CommandLine.arguments
if arguments.count == 4, arguments[1] == "alone", let port = Int(arguments[2]), let threads = Int(arguments[3]) {
    var logger = Logger(label: "hello-hummingbird")
    logger.logLevel = .warning
    let app = Application(
        router: makeRouter(worker: "alone pid \(getpid())"),
        configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)),
        onServerRunning: { _ in
            var byte: UInt8 = 1
            _ = write(3, &byte, 1)
        },
        eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: threads)), logger: logger)
    do {
        try await app.runService()
        exit(0)
    } catch {
        let message = Array("alone: \(error)\n".utf8)
        _ = write(2, message, message.count)
        exit(1)
    }
}

// First, before anything awaits: the watcher's tasks run on threads of its own (it does nothing
// in a worker; pooltop's decision 0015).
TaskThreads.install()

// One binary is the watcher, the console and every worker: `HelloHummingbird` opens the console
// on pool.yaml, `HelloHummingbird run` runs it headless, and every other pooltop command is here.
var entryPoints = EntryPoints()
entryPoints.register("web") { Web() }
await PoolTopCLI.main(entryPoints: entryPoints, defaultConfiguration: .file("pool.yaml"), commandName: "hello-hummingbird")

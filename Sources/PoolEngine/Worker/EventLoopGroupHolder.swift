import NIOPosix
import Synchronization

/// A worker process's one NIO event loop group (one thread: a worker is a process, and the
/// pool scales by processes), started on first use: its job server, its HTTP server and the
/// user's own NIO code all run on it, so a process never has two.
final class EventLoopGroupHolder: Sendable {
    private let storage = Mutex<MultiThreadedEventLoopGroup?>(nil)

    var group: MultiThreadedEventLoopGroup {
        storage.withLock { stored in
            if let stored { return stored }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            stored = group
            return group
        }
    }

    func shutdown() async {
        let group = storage.withLock { stored -> MultiThreadedEventLoopGroup? in
            defer { stored = nil }
            return stored
        }
        try? await group?.shutdownGracefully()
    }
}

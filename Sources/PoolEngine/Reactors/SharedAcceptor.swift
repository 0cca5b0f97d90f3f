import NIOCore
import NIOPosix
import CPoolShims

#if canImport(Glibc)
import Glibc
#endif

/// Accepts on a listening socket the group's workers share (a Unix-domain listener, a socket
/// systemd passed) and hands each connection to NIO.
///
/// A NIO server channel on a shared socket wakes in every worker for each connection; all but
/// one find nothing to accept, which SwiftNIO's debug builds treat as a broken invariant
/// (`BaseSocketChannel`: `assert(readResult == .some)`) and trap on. Here a thread of the
/// worker's own waits with `EPOLLEXCLUSIVE`, so one worker wakes per connection, accepts without
/// blocking (a lost race is just `EAGAIN`), and gives the socket to NIO as a connected channel.
final class SharedAcceptor: Sendable {
    private let listenFD: Int32
    private let epoll: Epoll
    private let wakeUp: WakeUpEvent
    private let thread: Mutex<PosixThread?> = Mutex(nil)

    init(
        listenFD: Int32, group: any EventLoopGroup,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) throws {
        self.listenFD = listenFD
        epoll = try Epoll(context: "shared listener")
        wakeUp = try WakeUpEvent(context: "shared listener")
        try epoll.add(wakeUp.fd, .readable, token: 0)
        try epoll.add(listenFD, [.readable, .exclusive], token: 1)
        let started = try PosixThread(name: "accept") { [epoll, listenFD] in
            // Made on this thread: a bootstrap is not Sendable.
            let bootstrap = ClientBootstrap(group: group).channelInitializer(initializer)
            var events: [Epoll.Event] = []
            while true {
                guard (try? epoll.wait(into: &events, timeoutMilliseconds: -1)) != nil else { return }
                if events.contains(where: { $0.token == 0 }) { return }
                // Take what is queued; another worker may have taken it first (EAGAIN).
                while true {
                    let connection = pt_accept_nonblocking(listenFD)
                    if connection < 0 { break }
                    // A failure (a closed group) closes the socket with the channel NIO made.
                    _ = bootstrap.withConnectedSocket(connection)
                }
            }
        }
        thread.withLock { $0 = started }
    }

    /// Stops accepting (the socket stays open: it is the group's) and waits for the thread.
    func close() async {
        wakeUp.signal()
        let thread = self.thread.withLock { value -> PosixThread? in
            defer { value = nil }
            return value
        }
        guard let thread else { return }
        // Joined from a thread of its own: the accept thread may be handing out a last connection.
        try? await DedicatedThread.run(name: "accept-join") { thread.join() }
        epoll.close()
        wakeUp.close()
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix

/// A server a worker runs on an inherited listener (``InheritedListener/serve(on:childChannelInitializer:)``,
/// ``InheritedListener/serveHTTP(on:_:)``).
public final class ListenerServer: Sendable {
    private enum Backing: Sendable {
        /// A NIO server channel on the slot's own socket.
        case channel(any Channel)
        /// Exclusive accepts on a socket the group shares.
        case shared(SharedAcceptor)
    }

    private let backing: Backing
    /// The loop its connections run on (the worker's one group).
    public let eventLoop: any EventLoop

    fileprivate init(channel: any Channel) {
        backing = .channel(channel)
        eventLoop = channel.eventLoop
    }

    fileprivate init(acceptor: SharedAcceptor, eventLoop: any EventLoop) {
        backing = .shared(acceptor)
        self.eventLoop = eventLoop
    }

    /// Stops accepting; connections already open go on until their handlers close them.
    public func close() async {
        switch backing {
        case .channel(let channel): try? await channel.close()
        case .shared(let acceptor): await acceptor.close()
        }
    }
}

extension InheritedListener {
    /// An HTTP/1.1 server on this socket, as a worker runs one: on `group` (the worker's
    /// ``Worker/eventLoopGroup``), NIO's HTTP server pipeline (keep-alive, pipelining), then the
    /// handler `makeHandler` gives each connection. Close the returned server when done; the
    /// group is the worker's and outlives it.
    ///
    /// On a socket the slot has to itself this is a NIO server channel (`TCP_NODELAY` on each
    /// connection). On one the group's workers share (``isShared``) a thread of the worker
    /// accepts exclusively (``SharedAcceptor``), so one worker, not every one, wakes per connection.
    public func serveHTTP(
        on group: any EventLoopGroup, _ makeHandler: @escaping @Sendable () -> any ChannelHandler
    ) async throws -> ListenerServer {
        try await serve(on: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(makeHandler())
            }
        }
    }

    /// Accepts on this socket, setting each connection up with `childChannelInitializer`, on
    /// `group`: a NIO server channel on a socket the slot has to itself, exclusive accepts on
    /// one the group shares (``isShared``). Prefer it to ``serve(_:)`` unless you need a
    /// `ServerBootstrap` of your own, which must not serve a shared socket in a debug build.
    public func serve(
        on group: any EventLoopGroup,
        childChannelInitializer initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) async throws -> ListenerServer {
        if isShared {
            let acceptor = try SharedAcceptor(listenFD: descriptor.rawValue, group: group, initializer: initialize)
            return ListenerServer(acceptor: acceptor, eventLoop: group.next())
        }
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer(initialize)
        return ListenerServer(channel: try await serve(bootstrap))
    }
}

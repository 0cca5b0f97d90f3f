import NIOCore
import NIOHTTP1
import NIOPosix

extension InheritedListener {
    /// An HTTP/1.1 server on this socket, as a worker runs one: a loop group of one thread (a
    /// worker is a process; the pool scales by processes), `TCP_NODELAY`, NIO's HTTP server
    /// pipeline (keep-alive, pipelining), then the handler `makeHandler` gives each connection.
    ///
    /// Shut the returned group down once the server is closed.
    public func serveHTTP(
        _ makeHandler: @escaping @Sendable () -> any ChannelHandler
    ) async throws -> (server: any Channel, group: MultiThreadedEventLoopGroup) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
        do {
            return (try await serve(bootstrap), group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix

extension InheritedListener {
    /// An HTTP/1.1 server on this socket, as a worker runs one: on `group` (the worker's
    /// ``Worker/eventLoopGroup``), `TCP_NODELAY`, NIO's HTTP server pipeline (keep-alive,
    /// pipelining), then the handler `makeHandler` gives each connection. Close the returned
    /// server channel when done; the group is the worker's and outlives it.
    public func serveHTTP(
        on group: any EventLoopGroup, _ makeHandler: @escaping @Sendable () -> any ChannelHandler
    ) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
        return try await serve(bootstrap)
    }
}

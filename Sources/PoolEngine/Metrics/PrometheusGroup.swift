/// The metrics group: one service worker serving `/metrics` for Prometheus, added with one line.
///
/// ```swift
/// try pool.describeGroup(PrometheusGroup())                                  // 127.0.0.1:9091
/// try pool.describeGroup(PrometheusGroup(listener: { var l = try Listener("0.0.0.0:9091"); l.exposed = true; return l }()))
/// ```
/// In pool.yaml: `{name: metrics, kind: service, entryPoint: prometheus}` (optionally with `listen`).
/// Its worker reads shared memory only, never the watcher, so a busy or stuck watcher does not
/// stall scrapes. The entry point is built into every ``EntryPoints``.
public struct PrometheusGroup: Sendable {
    public static let entryPoint = "prometheus"
    /// The address served when none is given: loopback, as figures about the host are nobody else's business.
    public static let defaultAddress = "127.0.0.1:9091"
    // Safe: a constant, valid address.
    static let defaultListener = try! Listener(defaultAddress, name: "metrics")

    public var workerGroup: WorkerGroup

    /// - Parameters:
    ///   - listener: where to serve; a non-loopback address must have ``Listener/exposed`` set.
    ///   - name: the group's name.
    public init(listener: Listener? = nil, name: String = "prometheus") {
        workerGroup = WorkerGroup(
            entryPoint: Self.entryPoint, kind: .service, minWorkers: 1, maxWorkers: 1, name: name,
            listeners: listener.map { [$0] } ?? [])
    }

    /// Serves `address` (`host:port`, `[ipv6]:port` or `unix:/path`).
    public init(address: String, exposed: Bool = false, name: String = "prometheus") throws(ListenerError) {
        var listener = try Listener(address, name: "metrics")
        listener.exposed = exposed
        self.init(listener: listener, name: name)
    }
}

extension WorkerPool {
    /// Adds the metrics group (see ``PrometheusGroup``).
    public func describeGroup(_ group: PrometheusGroup) throws(CommandError) {
        try describeGroup(group.workerGroup)
    }
}

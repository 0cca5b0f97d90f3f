import PoolConsole
import PoolEngine

#if PostgresQueue
import PoolQueue

/// The console's queue view on a pool's PostgreSQL queues: the queue groups the pool
/// published (``QueueEndpoint``), each read over a connection kept open while the console
/// runs, and opened again after a failure.
actor PostgresQueueBrowser: QueueBrowser {
    let pool: String
    /// Open connections by database and schema (groups on one database share one).
    private var clients: [String: PostgresQueueClient] = [:]
    /// How many dead jobs a group's list holds.
    static let deadListLimit = 200

    init(pool: String) {
        self.pool = pool
    }

    func read() async -> QueueReport {
        var groups: [QueueReport.Group] = []
        for endpoint in QueueEndpoint.published(pool: pool).sorted(by: { $0.group < $1.group }) {
            var group = QueueReport.Group(
                name: endpoint.group, place: "\(endpoint.address) schema \(endpoint.schema)", isConnected: endpoint.connected,
                state: endpoint.state)
            do {
                let client = try await client(for: endpoint)
                group.queues = try await client.figures(queues: endpoint.queues)
                group.deadJobs = try await client.deadJobs(queues: endpoint.queues, limit: Self.deadListLimit)
            } catch {
                group.problem = "\(error)"
                await drop(endpoint)
            }
            groups.append(group)
        }
        return QueueReport(groups: groups, readAt: PoolHost.wallClock)
    }

    func perform(_ action: QueueAction) async -> String {
        let (groupName, id, retrying) =
            switch action {
            case .retry(let group, let id): (group, id, true)
            case .discard(let group, let id): (group, id, false)
            }
        guard let endpoint = QueueEndpoint.published(pool: pool).first(where: { $0.group == groupName }) else {
            return "queue group '\(groupName)' of pool '\(pool)' is no longer running: nothing changed"
        }
        do {
            let client = try await client(for: endpoint)
            let changed = retrying ? try await client.retryDead(id: id) : try await client.discardDead(id: id)
            guard changed else { return "job \(id) is no longer dead (retried or discarded elsewhere): nothing changed" }
            return retrying ? "dead job \(id) is pending again, with fresh attempts" : "dead job \(id) discarded"
        } catch {
            await drop(endpoint)
            return "\(retrying ? "retry" : "discard") of job \(id) failed: \(error)"
        }
    }

    func close() async {
        let open = clients.values
        clients = [:]
        for client in open { await client.close() }
    }

    private static func key(_ endpoint: QueueEndpoint) -> String { "\(endpoint.address) \(endpoint.schema)" }

    private func client(for endpoint: QueueEndpoint) async throws -> PostgresQueueClient {
        if let client = clients[Self.key(endpoint)] { return client }
        let client = try await PostgresQueueClient.connect(address: endpoint.address, schema: endpoint.schema)
        // Another call may have connected while this one waited: keep one.
        if let other = clients[Self.key(endpoint)] {
            await client.close()
            return other
        }
        clients[Self.key(endpoint)] = client
        return client
    }

    /// Forgets a connection that failed; the next read connects again.
    private func drop(_ endpoint: QueueEndpoint) async {
        await clients.removeValue(forKey: Self.key(endpoint))?.close()
    }
}
#endif

/// The queue view's browser for `pool`; nil when this binary was built without the queue.
func queueBrowser(pool: String) -> (any QueueBrowser)? {
    #if PostgresQueue
    PostgresQueueBrowser(pool: pool)
    #else
    nil
    #endif
}

#if PostgresQueue
import Foundation
import PoolEngine

/// Where a running pool's queue group works: its database, schema and queues, written to the
/// pool's runtime directory (`queue-GROUP.json`, mode 0600 in a 0700 directory, like the
/// pool's other private files) while the group runs, so `pooltop queue NAME` and the console
/// find the queue from the pool's name alone.
///
/// It holds the password when the URL or `PGPASSWORD` has one: it is readable only by the
/// pool's user, who can read the pool's configuration and its workers' environment anyway.
public struct QueueEndpoint: Codable, Sendable, Hashable {
    public var group: String
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String?
    public var tls: String
    public var schema: String
    public var queues: [String]
    /// Whether the group is connected to its database now.
    public var connected = false
    /// Since when (seconds since the epoch) and why it is not, when it lost the database.
    public var outageSince: Double?
    public var outageReason: String?
    /// Jobs it has claimed and not yet written back.
    public var running = 0
    /// When the group last wrote this file, in seconds since the epoch.
    public var updatedAt = 0.0

    init(group: String, address: DatabaseAddress, configuration: PostgresQueueConfiguration) {
        self.group = group
        host = address.host
        port = address.port
        user = address.user
        password = address.password
        database = address.database
        tls = address.tls.rawValue
        schema = configuration.schema
        queues = configuration.queues.map(\.name)
    }

    /// The address to connect to.
    public var address: DatabaseAddress {
        DatabaseAddress(
            host: host, port: port, user: user, password: password, database: database, tls: DatabaseAddress.TLSMode(rawValue: tls) ?? .prefer)
    }

    static func name(group: String) -> String { "queue-\(group).json" }

    /// The one-line state `pooltop status` prints.
    public var summary: String { "queue group '\(group)': \(state)" }

    /// The group's connection in a sentence: connected (and jobs claimed), connecting, or
    /// unreachable since when and why.
    public var state: String {
        let place = "\(address) schema \(schema), queues \(queues.joined(separator: ", "))"
        if connected { return "connected to \(place); \(running) job(s) claimed" }
        guard let since = outageSince else { return "connecting to \(place)" }
        let seconds = max(0, PoolHost.wallClock - since)
        return "DATABASE UNREACHABLE for \(Int(seconds)) s (\(outageReason ?? "unknown")): \(place); \(running) job(s) keep running, their outcomes wait"
    }

    func publish(pool: String) throws {
        var stamped = self
        stamped.updatedAt = PoolHost.wallClock
        let data = try JSONEncoder().encode(stamped)
        try PoolFiles.writePrivate(Array(data), pool: pool, name: Self.name(group: group))
    }

    static func withdraw(pool: String, group: String) {
        PoolFiles.remove(pool: pool, name: name(group: group))
    }

    /// The queue groups of a running pool, as they published themselves.
    public static func published(pool: String) -> [QueueEndpoint] {
        PoolFiles.read(pool: pool, prefix: "queue-", suffix: ".json").compactMap { file in
            // A file that cannot be read or decoded is one being replaced: read next time.
            file.content.flatMap { try? JSONDecoder().decode(QueueEndpoint.self, from: Data($0)) }
        }
    }
}
#endif

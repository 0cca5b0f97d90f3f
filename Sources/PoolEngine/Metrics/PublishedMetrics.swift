/// Metric families a worker publishes for its pool's exposition, beyond what shared memory
/// holds (the PostgreSQL queue's depth and claim latency): text files in the Prometheus format
/// in the pool's runtime directory, which the metrics group and `pooltop metrics` append to
/// what they render. node_exporter's textfile collector works the same way.
///
/// Each file is replaced whole (written aside, then renamed), so a scrape never reads half
/// of one; the runtime directory is private to the pool's user and goes with the pool.
public enum PublishedMetrics {
    /// The largest file read; a larger one is left out and said so in a comment line.
    public static let maximumBytes = 256 * 1024

    /// The runtime directory's folder for them.
    static let folder = "metrics"

    /// Replaces the families `name` publishes (`name` is a plain word, such as the group's name).
    public static func publish(_ text: String, pool: String, name: String) throws {
        try PoolFiles.writePrivate(Array(text.utf8), pool: pool, folder: folder, name: "\(name).prom")
    }

    /// Removes what `name` published.
    public static func withdraw(pool: String, name: String) {
        PoolFiles.remove(pool: pool, folder: folder, name: "\(name).prom")
    }

    /// Every published file, in name order, for the end of an exposition.
    public static func collected(pool: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, content) in PoolFiles.read(pool: pool, folder: folder, suffix: ".prom", limit: maximumBytes) {
            guard let content else {
                bytes += Array("# \(name) left out: unreadable or over \(maximumBytes) bytes\n".utf8)
                continue
            }
            bytes += content
            if content.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        }
        return bytes
    }
}

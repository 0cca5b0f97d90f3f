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

    static func directory(pool: String) -> String { "\(RuntimeDirectory.path(pool: pool))/metrics" }

    /// Replaces the families `name` publishes (`name` is a plain word, such as the group's name).
    public static func publish(_ text: String, pool: String, name: String) throws {
        let folder = directory(pool: pool)
        if !Posix.isDirectory(path: folder) { try Posix.makeDirectory(folder, mode: 0o700) }
        try Posix.writeFileAtomically("\(folder)/\(name).prom", Array(text.utf8), mode: 0o600)
    }

    /// Removes what `name` published.
    public static func withdraw(pool: String, name: String) {
        Posix.removeFile("\(directory(pool: pool))/\(name).prom")
    }

    /// Every published file, in name order, for the end of an exposition.
    public static func collected(pool: String) -> [UInt8] {
        let folder = directory(pool: pool)
        guard let names = try? Posix.listDirectory(folder) else { return [] }  // None published.
        var bytes: [UInt8] = []
        for name in names.sorted() where name.hasSuffix(".prom") {
            let path = "\(folder)/\(name)"
            guard let read = try? Posix.readRegularFile(path, limit: maximumBytes, timeoutNanoseconds: 100_000_000),
                case .bytes(let content) = read
            else {
                bytes += Array("# \(name) left out: unreadable or over \(maximumBytes) bytes\n".utf8)
                continue
            }
            bytes += content
            if content.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        }
        return bytes
    }
}

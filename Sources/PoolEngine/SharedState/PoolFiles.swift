/// Small private files in a pool's runtime directory that its workers publish for operators'
/// tools on the same host (the PostgreSQL queue's endpoint). Each is replaced whole, mode 0600,
/// and goes with the runtime directory when the pool stops.
public enum PoolFiles {
    /// The largest file read back.
    public static let maximumBytes = 64 * 1024

    /// The runtime directory, or its `folder`.
    static func directory(pool: String, folder: String?) -> String {
        folder.map { "\(RuntimeDirectory.path(pool: pool))/\($0)" } ?? RuntimeDirectory.path(pool: pool)
    }

    /// Writes (replacing) `name` in the pool's runtime directory, or in its `folder` (made, 0700,
    /// when missing).
    public static func writePrivate(_ bytes: [UInt8], pool: String, folder: String? = nil, name: String) throws {
        let directory = directory(pool: pool, folder: folder)
        if folder != nil, !Posix.isDirectory(path: directory) { try Posix.makeDirectory(directory, mode: 0o700) }
        try Posix.writeFileAtomically("\(directory)/\(name)", bytes, mode: 0o600)
    }

    public static func remove(pool: String, folder: String? = nil, name: String) {
        Posix.removeFile("\(directory(pool: pool, folder: folder))/\(name)")
    }

    /// The files named `prefix…suffix` in the runtime directory (or its `folder`), in name
    /// order; `content` is nil for one that is not a regular file of at most `limit` bytes.
    public static func read(
        pool: String, folder: String? = nil, prefix: String = "", suffix: String, limit: Int = maximumBytes
    ) -> [(name: String, content: [UInt8]?)] {
        let directory = directory(pool: pool, folder: folder)
        guard let names = try? Posix.listDirectory(directory) else { return [] }  // Not running: nothing published.
        return names.sorted().filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }.map { name in
            let read = try? Posix.readRegularFile("\(directory)/\(name)", limit: limit, timeoutNanoseconds: 100_000_000)
            if case .bytes(let bytes) = read { return (name, bytes) }
            return (name, nil)
        }
    }
}

/// Small private files in a pool's runtime directory that its workers publish for operators'
/// tools on the same host (the PostgreSQL queue's endpoint). Each is replaced whole, mode 0600,
/// and goes with the runtime directory when the pool stops.
public enum PoolFiles {
    /// The largest file read back.
    public static let maximumBytes = 64 * 1024

    /// Writes (replacing) `name` in the pool's runtime directory.
    public static func writePrivate(_ bytes: [UInt8], pool: String, name: String) throws {
        try Posix.writeFileAtomically("\(RuntimeDirectory.path(pool: pool))/\(name)", bytes, mode: 0o600)
    }

    public static func remove(pool: String, name: String) {
        Posix.removeFile("\(RuntimeDirectory.path(pool: pool))/\(name)")
    }

    /// The contents of the files named `prefix…suffix`, in name order.
    public static func read(pool: String, prefix: String, suffix: String) -> [[UInt8]] {
        let folder = RuntimeDirectory.path(pool: pool)
        guard let names = try? Posix.listDirectory(folder) else { return [] }  // Not running: nothing published.
        return names.sorted().filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }.compactMap { name in
            guard let read = try? Posix.readRegularFile("\(folder)/\(name)", limit: maximumBytes, timeoutNanoseconds: 100_000_000),
                case .bytes(let bytes) = read
            else { return nil }
            return bytes
        }
    }
}

/// Where a pool's runtime files live: `$XDG_RUNTIME_DIR/pooltop/<pool>/`, or
/// `/tmp/pooltop-<uid>/<pool>/` without it. The directory is 0700 and must belong to us.
public enum RuntimeDirectory {
    /// The directory holding every pool's runtime directory for this user.
    public static var base: String {
        if let xdg = Posix.getenv("XDG_RUNTIME_DIR"), !xdg.isEmpty { return "\(xdg)/pooltop" }
        return "/tmp/pooltop-\(Posix.userID)"
    }

    /// The runtime directory of pool `pool`.
    public static func path(pool: String) -> String { "\(base)/\(pool)" }

    /// The control socket of pool `pool`.
    public static func controlSocket(pool: String) -> String { "\(path(pool: pool))/control.sock" }

    /// Names of the pools whose runtime directories exist for this user (running or stale).
    public static func poolNames() -> [String] {
        (try? Posix.listDirectory(base))?.filter { !$0.hasPrefix(".") }.sorted() ?? []
    }

    /// Whether a watcher holds pool `pool`'s lock right now.
    public static func isRunning(pool: String) -> Bool {
        // Never create the lock file here: looking must not leave files in another pool's directory.
        guard let fd = Posix.openReadOnly("\(path(pool: pool))/watcher.lock") else { return false }
        defer { Posix.close(fd) }
        // A shared lock succeeds only when no watcher holds the exclusive one.
        return !Posix.tryLockShared(fd)
    }

    /// Creates (or checks) the directory and takes the pool's lock: only one watcher per name.
    static func claim(pool: String) throws -> RuntimeClaim {
        let base = self.base
        if base.hasSuffix("/pooltop"), let xdg = Posix.getenv("XDG_RUNTIME_DIR") {
            try checkOwned(xdg, creating: false)
        }
        try checkOwned(base, creating: true)
        let directory = path(pool: pool)
        try checkOwned(directory, creating: true)
        let lockPath = "\(directory)/watcher.lock"
        guard let fd = try Posix.lockFile(lockPath) else {
            let holder = (try? Posix.readFile(lockPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let pid = holder.split(separator: "\n").first.map(String.init) ?? "?"
            throw PoolStartError(
                code: .alreadyRunning, message: "pool '\(pool)' is already running (watcher pid \(pid), \(directory))")
        }
        try Posix.rewrite(fd, "\(Posix.processID)\n")
        let claim = RuntimeClaim(directory: directory, lockFD: fd)
        claim.removeWorkerFiles()
        return claim
    }

    /// Refuses a directory that another user owns or others may write; creates it 0700 if asked.
    static func checkOwned(_ path: String, creating: Bool, what: String = "runtime directory") throws {
        if creating { try Posix.makeDirectory(path, mode: 0o700) }
        guard Posix.isDirectory(path: path) else {
            throw PoolStartError(code: .runtimeDirectory, message: "\(path) is not a directory")
        }
        let (owner, mode) = try Posix.ownerAndMode(path: path)
        if owner != Posix.userID {
            throw PoolStartError(
                code: .runtimeDirectory,
                message: "refusing \(what) \(path): it belongs to uid \(owner), not to us (uid \(Posix.userID))")
        }
        if mode & 0o022 != 0 {
            throw PoolStartError(
                code: .runtimeDirectory,
                message: "refusing \(what) \(path): others may write to it (mode \(String(mode, radix: 8)))")
        }
        if creating && mode != 0o700 { try Posix.setMode(path, 0o700) }
    }
}

/// A held pool name: its runtime directory and lock, released when the watcher ends.
final class RuntimeClaim: Sendable {
    let directory: String
    private let lockFD: Int32

    init(directory: String, lockFD: Int32) {
        self.directory = directory
        self.lockFD = lockFD
    }

    var controlSocketPath: String { "\(directory)/control.sock" }

    /// Removes the runtime files, then drops the lock.
    func release() {
        Posix.removeFile(controlSocketPath)
        removeWorkerFiles()
        Posix.removeFile("\(directory)/workers.log")
        Posix.removeFile("\(directory)/watcher.lock")
        Posix.close(lockFD)
        Posix.removeDirectory(directory)
    }

    /// Removes what workers wrote. They remove what they publish when they stop (job sockets, a
    /// queue group's `queue-*.json`, `metrics/*.prom`); one that was killed leaves it behind, and
    /// so does a file being replaced whole (`*.tmp`) by a process killed mid-write. At a claim,
    /// this is what the previous watcher of the name left, which would otherwise be shown as
    /// the new pool's.
    func removeWorkerFiles() {
        for name in (try? Posix.listDirectory(directory)) ?? [] where Self.isWorkerFile(name) {
            Posix.removeFile("\(directory)/\(name)")
        }
        // The metrics folder holds only what workers published; it goes with the pool, or the
        // directory it is in could not be removed.
        let metrics = "\(directory)/\(PublishedMetrics.folder)"
        for name in (try? Posix.listDirectory(metrics)) ?? [] where name.hasSuffix(".prom") || name.hasSuffix(".tmp") {
            Posix.removeFile("\(metrics)/\(name)")
        }
        Posix.removeDirectory(metrics)
    }

    /// A file of the runtime directory that a pool's workers publish, never a user's.
    /// (`workers.log`, the console's capture of their output, is the watcher's: a new watcher
    /// appends to what a killed one left.)
    static func isWorkerFile(_ name: String) -> Bool {
        (name.hasPrefix("worker-") && name.hasSuffix(".sock"))
            || (name.hasPrefix("queue-") && (name.hasSuffix(".json") || name.hasSuffix(".tmp")))
    }
}

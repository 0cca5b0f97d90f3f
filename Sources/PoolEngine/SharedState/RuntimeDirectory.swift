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
        // What a killed watcher of the name left (job sockets, a queue group's endpoint,
        // published metrics) would otherwise be shown as this pool's. `workers.log` stays: a
        // new console appends to it.
        removeContents(of: directory, keeping: ["watcher.lock", "workers.log"])
        return RuntimeClaim(directory: directory, lockFD: fd)
    }

    /// Removes what a SIGKILLed watcher of `pool` left, its runtime directory and shared-memory
    /// segment, as its next start would; nothing while a watcher holds the name.
    public static func removeStale(pool: String) {
        guard !isRunning(pool: pool) else { return }
        Posix.unlinkSharedMemory(name: SharedLayout.segmentName(pool: pool, uid: Posix.userID))
        let directory = path(pool: pool)
        removeContents(of: directory, keeping: [])
        Posix.removeDirectory(directory)
    }

    /// Removes every file of a pool's runtime directory but `keeping`, and the folders workers
    /// publish into (`PoolFiles`' `folder`, one level deep) with theirs. The directory is the
    /// pool's alone (0700, checked), so nothing in it is anyone else's.
    static func removeContents(of directory: String, keeping: Set<String>) {
        for name in (try? Posix.listDirectory(directory)) ?? [] where !keeping.contains(name) {
            let path = "\(directory)/\(name)"
            if Posix.isDirectory(path: path) {
                for inner in (try? Posix.listDirectory(path)) ?? [] { Posix.removeFile("\(path)/\(inner)") }
                Posix.removeDirectory(path)
            } else {
                Posix.removeFile(path)
            }
        }
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

    /// Removes the runtime files (what workers published with them), then drops the lock.
    func release() {
        RuntimeDirectory.removeContents(of: directory, keeping: ["watcher.lock"])
        Posix.removeFile("\(directory)/watcher.lock")
        Posix.close(lockFD)
        Posix.removeDirectory(directory)
    }
}

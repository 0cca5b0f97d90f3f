#if canImport(Glibc)
import Glibc
#endif

/// A PID file held with an exclusive `flock` for as long as the pool runs; the lock, not the
/// file's existence, says whether a pool is running, so a stale file after a crash is harmless.
final class PIDFile: Sendable {
    let path: String
    private let fd: Int32

    init(path: String, poolName: String) throws {
        self.path = path
        // O_NOFOLLOW: a symlink planted at the path must not redirect our write.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        if fd < 0 {
            throw PoolStartError(
                code: .pidFile, message: "cannot open the PID file \(path)",
                underlying: SystemCallError(call: "open", errno: errno, context: path))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            var bytes = [UInt8](repeating: 0, count: 32)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
            Posix.close(fd)
            let holder = n > 0 ? String(decoding: bytes[0..<n], as: UTF8.self).trimmingTrailingNewlines : "?"
            if error == EWOULDBLOCK {
                throw PoolStartError(
                    code: .alreadyRunning,
                    message: "pool '\(poolName)' is already running: PID file \(path) is locked by pid \(holder)")
            }
            throw PoolStartError(
                code: .pidFile, message: "cannot lock the PID file \(path)",
                underlying: SystemCallError(call: "flock", errno: error, context: path))
        }
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) != 0 || text.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) != text.count {
            let error = errno
            Posix.close(fd)
            throw PoolStartError(
                code: .pidFile, message: "cannot write the PID file \(path)",
                underlying: SystemCallError(call: "pwrite", errno: error, context: path))
        }
        self.fd = fd
    }

    /// Removes the file, then drops the lock.
    func release() {
        unlink(path)
        Posix.close(fd)
    }
}

extension String {
    fileprivate var trimmingTrailingNewlines: String {
        var result = self
        while result.last?.isNewline == true { result.removeLast() }
        return result
    }
}

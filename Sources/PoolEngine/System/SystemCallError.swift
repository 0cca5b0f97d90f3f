#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A failed system call: which call, on what, and the `errno` it left.
public struct SystemCallError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The libc function that failed, for example `posix_spawn`.
    public var call: String
    /// The `errno` value read right after the call (swift-system's `Errno`: compare it with
    /// `.noSuchFileOrDirectory`, `.connectionRefused`, …).
    public var errno: Errno
    /// What the call was about (a path, a pid, a descriptor), when known.
    public var context: String?

    public init(call: String, errno: Errno, context: String? = nil) {
        self.call = call
        self.errno = errno
        self.context = context
    }

    /// From the raw value libc left in `errno`.
    init(call: String, errno: Int32, context: String? = nil) {
        self.init(call: call, errno: Errno(rawValue: errno), context: context)
    }

    /// The path or socket named does not exist (ENOENT).
    public var isNotFound: Bool { errno == .noSuchFileOrDirectory }
    /// Nobody listens on the socket (ECONNREFUSED): its owner has gone.
    public var isConnectionRefused: Bool { errno == .connectionRefused }

    public var description: String {
        let reason = String(cString: strerror(errno.rawValue))
        if let context { return "\(call)(\(context)) failed: \(reason) (errno \(errno.rawValue))" }
        return "\(call) failed: \(reason) (errno \(errno.rawValue))"
    }
}

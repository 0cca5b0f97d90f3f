#if canImport(Glibc)
import Glibc
#endif
import CPoolShims

/// What running a program as a worker needs from the OS: its output pipes, its sd_notify
/// socket, users and groups, its process group, and finding the program before spawning it.
extension Posix {
    /// Who a program runs as: the ids, and the user name for its supplementary groups.
    struct Credentials: Hashable, Sendable {
        var uid: UInt32?
        var gid: UInt32?
        var userName: String?
    }

    /// Looks up `user` and `group` (names or numbers); a user's own group when `group` is nil.
    static func credentials(user: String?, group: String?) throws -> Credentials {
        var result = Credentials()
        if let user {
            guard let entry = getpwnam(user) ?? UInt32(user).flatMap({ getpwuid($0) }) else {
                throw SystemCallError(call: "getpwnam", errno: ENOENT, context: "no user '\(user)' on this machine")
            }
            result.uid = entry.pointee.pw_uid
            result.gid = entry.pointee.pw_gid
            result.userName = String(cString: entry.pointee.pw_name)
        }
        if let group {
            guard let entry = getgrnam(group) ?? UInt32(group).flatMap({ getgrgid($0) }) else {
                throw SystemCallError(call: "getgrnam", errno: ENOENT, context: "no group '\(group)' on this machine")
            }
            result.gid = entry.pointee.gr_gid
        }
        return result
    }

    static var effectiveUserID: UInt32 { geteuid() }

    /// A pipe for a child's output: the child's end blocking (programs do not expect EAGAIN on
    /// stdout), ours non-blocking for the monitor; both close-on-exec (the spawn's dup2 clears
    /// it on the child's copy).
    static func outputPipe() throws -> (read: FD, write: FD) {
        var fds: [Int32] = [-1, -1]
        try check("pipe2") { pt_pipe_cloexec(&fds) }
        let flags = fcntl(fds[0], F_GETFL)
        if flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0 {
            let error = errno
            close(fds[0])
            close(fds[1])
            throw SystemCallError(call: "fcntl(O_NONBLOCK)", errno: error)
        }
        return (fds[0], fds[1])
    }

    /// A bound datagram socket for sd_notify messages at `path` (an existing file is replaced).
    static func bindNotifySocket(path: String) throws -> FD {
        var address = try unixSocketAddress(path, call: "bind")
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = try check("socket(AF_UNIX, SOCK_DGRAM)") { socket(AF_UNIX, type, 0) }
        _ = unlink(path)
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if result != 0 {
            let error = errno
            close(fd)
            throw SystemCallError(call: "bind", errno: error, context: path)
        }
        return fd
    }

    /// Signals every process of a process group (`kill(-pgid)`); a group already empty is not an error.
    static func signalProcessGroup(_ pgid: pid_t, _ signal: Int32) {
        guard pgid > 1 else { return }
        _ = Glibc.kill(-pgid, signal)
    }

    /// Whether `path` is a directory this process may enter (following symlinks).
    static func isEnterableDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR && access(path, X_OK) == 0
    }

    /// Finds `name` as execvp(3) would: a name with a `/` as it is (relative to `directory`),
    /// else the first executable in `searchPath`. Nil with the reason when none is found.
    static func findExecutable(_ name: String, searchPath: String, directory: String?) -> Result<String, SystemCallError> {
        func executable(_ path: String) -> Int32? {
            var info = stat()
            guard stat(path, &info) == 0 else { return errno }
            if (info.st_mode & S_IFMT) == S_IFDIR { return EISDIR }
            return access(path, X_OK) == 0 ? nil : errno
        }
        if name.contains("/") {
            let path = name.hasPrefix("/") || directory == nil ? name : "\(directory!)/\(name)"
            if let error = executable(path) { return .failure(SystemCallError(call: "execve", errno: error, context: name)) }
            return .success(path)
        }
        var firstError: Int32 = ENOENT
        for entry in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let folder = entry.isEmpty ? "." : String(entry)
            let candidate = "\(folder)/\(name)"
            guard let error = executable(candidate) else { return .success(candidate) }
            // A file that exists but cannot be run says more than one that does not exist.
            if error != ENOENT && error != ENOTDIR && firstError == ENOENT { firstError = error }
        }
        return .failure(SystemCallError(call: "execvp", errno: firstError, context: "'\(name)' in PATH=\(searchPath)"))
    }

    /// Connects to a TCP address within `timeoutMilliseconds` (for probes); the socket returned
    /// is blocking, with send and receive timeouts of the same length.
    static func connectTCP(host: String, port: Int, timeoutMilliseconds: Int32) throws -> FD {
        try withTCPAddress(host: host, port: port, passive: false) { first in
            try connectTCP(first, host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    private static func connectTCP(_ first: addrinfo, host: String, port: Int, timeoutMilliseconds: Int32) throws -> FD {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = try check("socket") { socket(first.ai_family, type, 0) }
        do {
            if Glibc.connect(fd, first.ai_addr, first.ai_addrlen) != 0 {
                guard errno == EINPROGRESS else { throw SystemCallError(call: "connect", errno: errno, context: "\(host):\(port)") }
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let n = try check("poll") { Glibc.poll(&entry, 1, timeoutMilliseconds) }
                if n == 0 { throw SystemCallError(call: "connect", errno: ETIMEDOUT, context: "\(host):\(port)") }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                try check("getsockopt(SO_ERROR)") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
                if error != 0 { throw SystemCallError(call: "connect", errno: error, context: "\(host):\(port)") }
            }
            try setBlocking(fd)
            var timeout = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
            let size = socklen_t(MemoryLayout<timeval>.size)
            try check("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, size) }
            try check("setsockopt(SO_SNDTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, size) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// `/dev/null` for writing: where a probe command's output goes.
    static func openNullDevice() throws -> FD {
        try check("open", context: "/dev/null") { Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC) }
    }

    /// Runs a program to its end, or kills its process group at `timeout`: nil then. For the
    /// watcher's short-lived helpers (exec probes, backtrace tools), on threads of their own.
    static func runBounded(
        path: String, arguments: [String], environment: [String], output: FD, timeout: Duration
    ) throws -> TerminationStatus? {
        let pid = try spawn(path: path, arguments: arguments, environment: environment, inherited: [], standardOutput: output, standardError: output)
        let pidfd = try pidfdOpen(pid)
        defer { close(pidfd) }
        guard try pollReadable(pidfd, timeoutNanoseconds: timeout.nanoseconds), let status = try reap(pidfd: pidfd) else {
            // Its own process group (spawn makes one): whatever it started goes with it.
            signalProcessGroup(pid, PosixSignal.kill)
            _ = try? reap(pidfd: pidfd, waiting: true)  // try?: a killed helper has nothing more to say
            return nil
        }
        return status
    }
}

import CPoolShims
#if canImport(Glibc)
import Glibc
#endif

extension Posix {
    /// Sends the new connections of `fd`'s SO_REUSEPORT group to the sockets at these positions
    /// of the kernel's group (see `pt_reuseport_steer`).
    static func steerReusePort(_ fd: FD, to indices: [UInt32]) throws {
        let result = indices.withUnsafeBufferPointer { pt_reuseport_steer(fd, $0.baseAddress, Int32($0.count)) }
        if result != 0 { throw SystemCallError(call: "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", errno: errno) }
    }

    /// Binds and listens on a TCP address; `reusePort` lets several sockets share the address,
    /// the kernel spreading new connections over them by hash.
    static func listenTCP(host: String, port: Int, backlog: Int, reusePort: Bool) throws -> FD {
        try withTCPAddress(host: host, port: port, passive: true) { first in try listenTCP(first, host: host, port: port, backlog: backlog, reusePort: reusePort) }
    }

    /// Resolves a TCP address (`passive`: for binding) and hands its first result to `body`.
    static func withTCPAddress<T>(host: String, port: Int, passive: Bool, _ body: (addrinfo) throws -> T) throws -> T {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host, String(port), &hints, &results)
        guard lookup == 0, let first = results else {
            throw SystemCallError(call: "getaddrinfo", errno: lookup == EAI_SYSTEM ? errno : EINVAL, context: "\(host): \(String(cString: gai_strerror(lookup)))")
        }
        defer { freeaddrinfo(results) }
        return try body(first.pointee)
    }

    private static func listenTCP(_ first: addrinfo, host: String, port: Int, backlog: Int, reusePort: Bool) throws -> FD {
        let fd = try check("socket") { socket(first.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            var on: Int32 = 1
            let size = socklen_t(MemoryLayout<Int32>.size)
            try check("setsockopt(SO_REUSEADDR)") { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, size) }
            if reusePort {
                try check("setsockopt(SO_REUSEPORT)") { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, size) }
            }
            if first.ai_family == AF_INET6 {
                // "[::1]:8080" means IPv6 only; an IPv4 listener on the same port is a separate entry.
                try check("setsockopt(IPV6_V6ONLY)") { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, size) }
            }
            try check("bind", context: "\(host):\(port)") { bind(fd, first.ai_addr, first.ai_addrlen) }
            try check("listen", context: "\(host):\(port)") { Glibc.listen(fd, Int32(backlog)) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Binds and listens on a Unix-domain stream socket, replacing a stale socket file
    /// (never a regular file: that is somebody's data).
    static func listenUnix(path: String, backlog: Int) throws -> FD {
        var address = try unixSocketAddress(path, call: "bind")
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw SystemCallError(call: "bind", errno: EEXIST, context: "\(path) exists and is not a socket")
            }
            // A live server on it would answer a connect; only then is it in use.
            if let probe = try? connectUnixSocket(path) {
                close(probe)
                throw SystemCallError(call: "bind", errno: EADDRINUSE, context: "\(path) is served by another process")
            }
            unlink(path)
        }
        let fd = try check("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            let length = socklen_t(MemoryLayout<sockaddr_un>.size)
            try check("bind", context: path) {
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
                }
            }
            try check("listen", context: path) { Glibc.listen(fd, Int32(backlog)) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }
}

import Glibc
import Synchronization

@testable import PoolEngine

/// A blocking client: one connection per request, a line back, with a timeout so that a
/// connection nobody accepts is a counted failure, never a hung test.
enum SocketClient {
    struct Answers: CustomStringConvertible, Sendable {
        var workers: [Int: Int] = [:]
        var failures = 0
        var description: String { "workers \(workers.sorted { $0.key < $1.key }), failures \(failures)" }
    }

    static func ask(port: Int, times: Int) -> Answers {
        collect(times) { connectTCP(port: port) }
    }

    /// `times` HTTP GETs of `/`, counted by the `x-worker` header.
    static func askHTTP(port: Int, times: Int) -> (workers: [Int: Int], failed: Int) {
        var workers: [Int: Int] = [:]
        var failed = 0
        for _ in 0..<times {
            if let reply = HTTPClient.get(port: port, "/"), reply.status == 200 { workers[reply.worker, default: 0] += 1 } else { failed += 1 }
        }
        return (workers, failed)
    }

    static func ask(unixPath: String, times: Int) -> Answers {
        collect(times) { try? Posix.connectUnixSocket(unixPath) }
    }

    private static func collect(_ times: Int, connect: () -> Int32?) -> Answers {
        var answers = Answers()
        // Three failures prove the point; waiting out the rest would only slow a failing run.
        for _ in 0..<times where answers.failures < 3 {
            guard let fd = connect() else {
                answers.failures += 1
                continue
            }
            defer { close(fd) }
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = send(fd, "?\n", 2, Int32(MSG_NOSIGNAL))
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                bytes += buffer[0..<n]
            }
            // "worker <id> pid <pid>"
            let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
            if fields.count == 4, fields[0] == "worker", let id = Int(fields[1]) {
                answers.workers[id, default: 0] += 1
            } else {
                answers.failures += 1
            }
        }
        return answers
    }

    /// A blocking connection to 127.0.0.1:`port`, or nil with `errno` saying why.
    static func connectTCP(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let error = errno
            close(fd)
            errno = error
            return nil
        }
        return fd
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    /// A port that is listening (without SO_REUSEPORT) in this process, so the pool cannot bind it.
    static func occupiedPort() throws -> (Int, Int32) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 8) == 0 else {
            throw SystemCallError(call: "bind(127.0.0.1:0)", errno: errno)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (Int(UInt16(bigEndian: actual.sin_port)), fd)
    }

    /// The next port `freePort` tries: below the kernel's ephemeral range (32768 and up), from a
    /// random start so that two test processes rarely try the same ones.
    private static let nextPort = Synchronization.Mutex(Int.random(in: 20_000..<31_000))

    /// Sockets bound to the ports `freePort` handed out, held for the life of the test process.
    private static let reservations = Synchronization.Mutex<[Int32]>([])

    /// A port nothing listens on, held for the caller to bind.
    ///
    /// Not the kernel's pick (`bind` to port 0): that comes from the ephemeral range, the one
    /// every outgoing connection of the tests running in parallel takes its local port from, so
    /// between the release and the pool's bind a client could take it (EADDRINUSE). Nor is the
    /// port released: a bind that failed with EADDRINUSE on a port just found free was seen three
    /// times in CI (a pool's listener, Prometheus's), from something on the host that took it
    /// between the check and the bind. So it stays bound here with SO_REUSEADDR and never
    /// listens: the kernel gives it to no outgoing connection and lets no one bind it without
    /// SO_REUSEADDR, while a pool's listeners (SO_REUSEADDR, with or without SO_REUSEPORT),
    /// gunicorn, Prometheus, systemd-socket-activate and Python's servers, which all set
    /// SO_REUSEADDR, bind and listen on it as if it were free, and connections reach only them.
    static func freePort() throws -> Int {
        for _ in 0..<1_000 {
            let port = nextPort.withLock { port -> Int in
                defer { port = port >= 32_000 ? 20_000 : port + 1 }
                return port
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemCallError(call: "socket", errno: errno) }
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            var address = loopback(port: port)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                continue
            }
            reservations.withLock { $0.append(fd) }
            return port
        }
        throw SystemCallError(call: "bind(127.0.0.1:20000...32000)", errno: EADDRINUSE)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The sd_notify protocol (sd_notify(3)), for a watcher that systemd runs as `Type=notify`:
/// `READY=1`, `STATUS=…`, `RELOADING=1`, `STOPPING=1` and `WATCHDOG=1` datagrams to the socket
/// `NOTIFY_SOCKET` names. Sends never block: a full or missing socket only loses that message.
final class SystemdNotifier {
    private let fd: Int32
    private var address: sockaddr_un
    private let length: socklen_t
    /// Half of `WATCHDOG_USEC`: how often the watcher loop must say it is alive; nil without a watchdog.
    let watchdogInterval: Duration?

    /// The variables systemd sets for the watcher; workers must not inherit them, or a worker
    /// could speak for the pool.
    static let variables = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]

    /// A notifier when `NOTIFY_SOCKET` is set (a path, or `@name` in the abstract namespace).
    init?(environment: (String) -> String? = Posix.getenv) {
        guard let path = environment("NOTIFY_SOCKET"), !path.isEmpty else { return nil }
        guard var address = try? Posix.unixSocketAddress(path, call: "sd_notify") else { return nil }
        // An abstract socket's name starts with a NUL byte where systemd writes '@'.
        if path.hasPrefix("@") { withUnsafeMutableBytes(of: &address.sun_path) { $0[0] = 0 } }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.address = address
        // Exact, not the whole structure: an abstract name is every byte up to the length.
        self.length = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count)
        // The watchdog is ours only when WATCHDOG_PID is unset or names this process.
        let pidMatches = environment("WATCHDOG_PID").map { Int32($0) == Posix.processID } ?? true
        if pidMatches, let text = environment("WATCHDOG_USEC"), let microseconds = Int64(text), microseconds > 0 {
            watchdogInterval = .microseconds(microseconds / 2)
        } else {
            watchdogInterval = nil
        }
    }

    deinit { Posix.close(fd) }

    /// Sends one message (newline-separated assignments).
    func send(_ message: String) {
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { raw in
                    sendto(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
    }
}

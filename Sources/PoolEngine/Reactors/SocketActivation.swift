#if canImport(Glibc)
import Glibc
#endif

/// Listening sockets systemd (or `systemd-socket-activate`) passed to the watcher
/// (sd_listen_fds(3): `LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID`). The watcher serves them
/// instead of binding its own, so a restart of the whole pool by systemd refuses no connection:
/// systemd keeps the socket, and connections wait in its queue for the next watcher.
struct SocketActivation {
    struct Passed {
        var fd: Int32
        var name: String
        /// What `getsockname` says, written as a ``Listener``'s description (`host:port`, `unix:/path`).
        var address: String?
    }

    var sockets: [Passed]

    /// The sockets passed to this process, if any; the variables are removed, so that nothing
    /// this process starts takes them for its own.
    static func fromEnvironment() -> SocketActivation {
        defer { for name in [InheritedListener.countVariable, InheritedListener.namesVariable, InheritedListener.pidVariable] { Posix.unsetenv(name) } }
        guard let pid = Posix.getenv(InheritedListener.pidVariable).flatMap({ Int32($0) }), pid == Posix.processID,
            let count = Posix.getenv(InheritedListener.countVariable).flatMap({ Int($0) }), count > 0
        else { return SocketActivation(sockets: []) }
        let names = (Posix.getenv(InheritedListener.namesVariable) ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let sockets = (0..<count).map { index -> Passed in
            let fd = Int32(3 + index)
            // Ours now: not inherited by anything but the workers they are handed to.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return Passed(fd: fd, name: index < names.count ? names[index] : "", address: Self.address(of: fd))
        }
        return SocketActivation(sockets: sockets)
    }

    /// The passed socket for a listener: by its name, else by its address.
    func socket(for listener: Listener) -> Passed? {
        sockets.first { $0.name == listener.name } ?? sockets.first { $0.address == listener.description }
    }

    /// An IPv4 or IPv6 address in its numeric text form (`inet_ntop`).
    private static func numeric<Address>(_ family: Int32, _ address: inout Address, length: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(length))
        withUnsafeBytes(of: &address) { raw in _ = inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What `getsockname` says the socket is bound to.
    static func address(of fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var ip = address.pointee.sin_addr
                    return "\(numeric(AF_INET, &ip, length: INET_ADDRSTRLEN)):\(UInt16(bigEndian: address.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var ip = address.pointee.sin6_addr
                    return "[\(numeric(AF_INET6, &ip, length: INET6_ADDRSTRLEN))]:\(UInt16(bigEndian: address.pointee.sin6_port))"
                }
            }
        case AF_UNIX:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { address in
                    withUnsafeBytes(of: address.pointee.sun_path) { raw in
                        "unix:" + String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
        default:
            return nil
        }
    }
}

/// A listening socket a reactor (or service) group serves, bound by the watcher before any worker starts.
///
/// ```swift
/// WorkerGroup(entryPoint: "http", kind: .reactor, minWorkers: 2, listeners: [try Listener("127.0.0.1:8080")])
/// ```
/// Each worker slot gets a socket of its own bound with `SO_REUSEPORT`, owned by the watcher
/// (see `docs/decisions/0006-reactor-listeners.md` for why not one shared socket).
public struct Listener: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Address: Hashable, Sendable, Codable {
        /// A TCP address: an IPv4 literal, an IPv6 literal (written in brackets in the text form) or `localhost`.
        case tcp(host: String, port: Int)
        /// A Unix-domain stream socket; the watcher replaces a stale socket file and removes it at the end.
        case unix(path: String)
    }

    public var address: Address
    /// The name a worker finds the socket by (`LISTEN_FDNAMES`); defaults to `listen<index>`.
    public var name: String
    /// The kernel's accept-queue length for each socket.
    public var backlog: Int
    /// Says that a non-loopback address is meant: the metrics service (``PrometheusGroup``)
    /// refuses to serve other interfaces without it, since its figures describe the host.
    public var exposed = false
    /// One TCP socket the group's workers all accept on, as under gunicorn's own arbiter,
    /// instead of one socket per worker (``ListenerSockets``). For workers that serve one
    /// connection at a time (gunicorn's or uWSGI's sync workers): a connection then waits for
    /// whichever worker is free first, not for the one the kernel hashed it to. Unix-domain
    /// listeners are always shared.
    public var shared = false

    public init(address: Address, name: String = "", backlog: Int = 1024) {
        self.address = address
        self.name = name
        self.backlog = backlog
    }

    /// Parses `host:port`, `[ipv6]:port` or `unix:/path`.
    public init(_ text: String, name: String = "", backlog: Int = 1024) throws(ListenerError) {
        self.init(address: try Self.parse(text), name: name, backlog: backlog)
    }

    /// Whether only this host can connect: a loopback address or a Unix socket.
    public var isLoopback: Bool {
        switch address {
        case .unix: return true
        case .tcp(let host, _): return host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }

    public var description: String {
        switch address {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    static func parse(_ text: String) throws(ListenerError) -> Address {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { throw ListenerError(listener: text, message: "a Unix socket path must be absolute") }
            return .unix(path: path)
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ListenerError(listener: text, message: "expected [ipv6-address]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ListenerError(listener: text, message: "expected host:port, [ipv6-address]:port or unix:/path")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ListenerError(listener: text, message: "write an IPv6 address in brackets: [address]:port")
            }
        }
        guard !host.isEmpty else { throw ListenerError(listener: text, message: "the host is missing (use 0.0.0.0 for every interface)") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ListenerError(listener: text, message: "port '\(portText)' is not a number in 0...65535")
        }
        return .tcp(host: String(host), port: port)
    }
}

/// A listener that could not be parsed or bound; names the listener.
public struct ListenerError: Error, Hashable, Sendable, CustomStringConvertible {
    public var listener: String
    public var message: String

    public var description: String { "listener \(listener): \(message)" }
}

#if PostgresQueue
import PoolEngine
import PostgresNIO

/// Where the queue's database is and how to log in: from a `postgres://` URL, or from the
/// standard `PG*` variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
/// `PGSSLMODE`), as libpq reads them.
///
/// A host that starts with `/` is a directory holding the server's Unix socket
/// (`.s.PGSQL.<port>`), as in libpq: `postgres:///queue?host=/run/postgresql`.
public struct DatabaseAddress: Hashable, Sendable, CustomStringConvertible {
    public enum TLSMode: String, Hashable, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String?
    public var tls: TLSMode

    /// The address without its password, for logs and status.
    public var description: String {
        let place = host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : "\(host):\(port)"
        return "postgres://\(user)@\(place)/\(database ?? user)"
    }

    /// What is wrong with an address, as a sentence.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// An address from its parts.
    public init(host: String, port: Int, user: String, password: String?, database: String?, tls: TLSMode) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Reads `url` when given, else the `PG*` variables of `environment`.
    public init(url: String?, environment: [String: String]) throws(Problem) {
        var host = environment["PGHOST"] ?? "/var/run/postgresql"
        var port = environment["PGPORT"].flatMap { Int($0) } ?? 5432
        var user = environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        var password = environment["PGPASSWORD"]
        var database = environment["PGDATABASE"]
        var mode = environment["PGSSLMODE"] ?? "prefer"
        if let url {
            guard let rest = Self.dropScheme(url) else {
                throw Problem(message: "'\(Self.redacted(url))' is not a PostgreSQL URL; write postgres://user:password@host:port/database")
            }
            var main = Substring(rest)
            var query = Substring("")
            if let mark = main.firstIndex(of: "?") {
                query = main[main.index(after: mark)...]
                main = main[..<mark]
            }
            var authority = main
            if let slash = main.firstIndex(of: "/") {
                authority = main[..<slash]
                let name = main[main.index(after: slash)...]
                if !name.isEmpty { database = Self.decode(name) }
            }
            if let at = authority.lastIndex(of: "@") {
                let credentials = authority[..<at]
                authority = authority[authority.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    user = Self.decode(credentials[..<colon])
                    password = Self.decode(credentials[credentials.index(after: colon)...])
                } else {
                    user = Self.decode(credentials)
                }
            }
            if !authority.isEmpty {
                var hostPart = authority
                if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
                    guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else {
                        throw Problem(message: "the port in '\(Self.redacted(url))' must be a number from 1 to 65535")
                    }
                    port = parsed
                    hostPart = authority[..<colon]
                }
                host = String(Self.decode(hostPart).filter { $0 != "[" && $0 != "]" })
            }
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                let key = String(parts[0])
                let value = parts.count > 1 ? Self.decode(parts[1]) : ""
                switch key {
                case "host": host = value
                case "port":
                    guard let parsed = Int(value), (1...65535).contains(parsed) else {
                        throw Problem(message: "port=\(value) in the URL must be a number from 1 to 65535")
                    }
                    port = parsed
                case "user": user = value
                case "password": password = value
                case "dbname": database = value
                case "sslmode": mode = value
                case "application_name", "connect_timeout": break
                default:
                    throw Problem(message: "the URL parameter '\(key)' is not understood; known: host, port, user, password, dbname, sslmode")
                }
            }
        }
        switch mode {
        case "disable", "allow": tls = .disable
        case "prefer": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        default:
            throw Problem(message: "sslmode '\(mode)' is not one of disable, allow, prefer, require, verify-ca, verify-full")
        }
        // A Unix socket is local: TLS over it is neither offered by PostgreSQL nor useful.
        if host.hasPrefix("/") { tls = .disable }
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// The `PG*` variables (and `USER`) of this process.
    public static func processEnvironment() -> [String: String] {
        var values: [String: String] = [:]
        for name in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "USER"] {
            values[name] = PoolHost.environment(name)
        }
        return values
    }

    /// The connection configuration postgres-nio takes.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if host.hasPrefix("/") {
            configuration = .init(
                unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tlsSetting: PostgresConnection.Configuration.TLS
            switch tls {
            case .disable: tlsSetting = .disable
            case .prefer: tlsSetting = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tlsSetting = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tlsSetting)
        }
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    private static func dropScheme(_ url: String) -> String? {
        for scheme in ["postgres://", "postgresql://"] where url.hasPrefix(scheme) { return String(url.dropFirst(scheme.count)) }
        return nil
    }

    /// Percent-decoding, as URLs carry passwords and socket paths.
    private static func decode<S: StringProtocol>(_ text: S) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The URL with its password replaced, for error messages.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let schemeEnd = url.range(of: "://")?.upperBound,
            let colon = url[schemeEnd..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }
}
#endif

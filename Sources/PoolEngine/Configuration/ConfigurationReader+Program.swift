import Yams

// The keys of a group that runs a program (`command:`): read here, checked by the validator.
extension ConfigurationReader {
    /// Keys that only a group with `command` may have.
    static let programOnlyKeys = ["envFile", "workingDirectory", "ready", "stopSignal", "watchdog", "user", "group"]

    mutating func program(_ map: [String: Node], into group: inout WorkerGroup, path: String) throws(ConfigurationError) {
        guard let commandNode = map["command"] else {
            if let key = Self.programOnlyKeys.first(where: { map[$0] != nil }) {
                throw error("\(path).\(key)", "only applies to a group that runs a program ('command')", node: map[key]!)
            }
            return
        }
        if let node = map["hangTimeout"] {
            // A program has no pooltop heartbeat; systemd's watchdog protocol is its equivalent.
            throw error(
                "\(path).hangTimeout", "a program has no pooltop heartbeat: give it 'watchdog' and have it send WATCHDOG=1 (sd_notify)",
                node: node)
        }
        var program = ExternalProgram(try strings(commandNode, path: "\(path).command"))
        if let node = map["envFile"] { program.environmentFile = resolve(try string(node, path: "\(path).envFile")) }
        if let node = map["workingDirectory"] {
            program.workingDirectory = resolve(try string(node, path: "\(path).workingDirectory"))
        }
        if let node = map["stopSignal"] {
            let text = try string(node, path: "\(path).stopSignal")
            guard let number = signalNumber(named: text.uppercased()) else {
                throw error(
                    "\(path).stopSignal", "'\(text)' is not a signal; use TERM, INT, QUIT, HUP, USR1, USR2, WINCH, KILL or a number",
                    node: node)
            }
            program.stopSignal = number
        }
        if let node = map["watchdog"] { program.watchdog = try duration(node, path: "\(path).watchdog") }
        if let node = map["user"] { program.user = try string(node, path: "\(path).user") }
        if let node = map["group"] { program.group = try string(node, path: "\(path).group") }
        if let node = map["ready"] { program.readiness = try readiness(node, path: "\(path).ready") }
        group.program = program
    }

    /// `started`, `notify`, or a probe: `{tcp: ADDRESS}`, `{http: URL}` or `{exec: [...]}` with
    /// `interval`, `timeout`, `failureThreshold` and `initialDelay`.
    private mutating func readiness(_ node: Node, path: String) throws(ConfigurationError) -> Readiness {
        guard case .mapping = node else {
            switch try choice(node, path: path, among: ["started", "notify"]) {
            case "notify": return .notify
            default: return .started
            }
        }
        let values = try mapping(node, path: path, allowed: PoolConfiguration.readyKeys)
        let kinds = ["tcp", "http", "exec"].filter { values[$0] != nil }
        guard kinds.count == 1, let kind = kinds.first, let checkNode = values[kind] else {
            throw error(path, "a probe needs exactly one of 'tcp', 'http' or 'exec' (got \(kinds.isEmpty ? "none" : kinds.joined(separator: ", ")))", node: node)
        }
        let check: ReadinessProbe.Check
        switch kind {
        case "tcp":
            let text = try string(checkNode, path: "\(path).tcp")
            // try?: the listener's own message speaks of listening; this one names the probe key.
            guard let address = try? Listener.parse(text), case .tcp(let host, let port) = address else {
                throw error("\(path).tcp", "'\(text)' is not host:port", node: checkNode)
            }
            check = .tcp(host: host, port: port)
        case "http":
            let text = try string(checkNode, path: "\(path).http")
            guard let url = Self.parseHTTP(text) else {
                throw error("\(path).http", "'\(text)' is not an http:// URL with a host and a port or path", node: checkNode)
            }
            check = .http(host: url.host, port: url.port, path: url.path)
        default:
            check = .exec(try strings(checkNode, path: "\(path).exec"))
        }
        var probe = ReadinessProbe(check)
        if let node = values["interval"] { probe.interval = try duration(node, path: "\(path).interval") }
        if let node = values["timeout"] { probe.timeout = try duration(node, path: "\(path).timeout") }
        if let node = values["failureThreshold"] { probe.failureThreshold = try integer(node, path: "\(path).failureThreshold") }
        if let node = values["initialDelay"] { probe.initialDelay = try duration(node, path: "\(path).initialDelay") }
        return .probe(probe)
    }

    /// `http://host[:port][/path]` (only plain HTTP: probes talk to the worker on this host).
    static func parseHTTP(_ text: String) -> (host: String, port: Int, path: String)? {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard !authority.isEmpty else { return nil }
        let address: Listener.Address?
        if authority.hasPrefix("[") || authority.contains(":") {
            address = try? Listener.parse(String(authority))  // try?: the caller names the key and the URL
        } else {
            address = .tcp(host: String(authority), port: 80)
        }
        guard case .tcp(let host, let port)? = address else { return nil }
        return (host, port, path.isEmpty ? "/" : String(path))
    }

    /// A list of strings (a command line), never empty.
    private mutating func strings(_ node: Node, path: String) throws(ConfigurationError) -> [String] {
        guard case .sequence(let items) = node, !items.isEmpty else {
            throw error(path, "must be a list of strings such as [\"python3\", \"app.py\"] (no shell is involved)", node: node)
        }
        var result: [String] = []
        for (index, item) in items.enumerated() { result.append(try string(item, path: "\(path)[\(index)]")) }
        return result
    }

    /// A path relative to the configuration file's folder, as docker compose and process-compose
    /// read them, made absolute: `run --config pool.yaml` and `apply` (which sends the file's
    /// absolute path) then resolve it alike, and `apply` sees no change where there is none.
    func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), let file else { return path }
        var folder = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
        if !folder.hasPrefix("/") { folder = Posix.currentDirectory() + (folder == "." ? "" : "/\(folder)") }
        let relative = path.hasPrefix("./") ? path.dropFirst(2) : Substring(path)
        return relative.isEmpty || relative == "." ? folder : "\(folder)/\(relative)"
    }
}

import Logging
import Yams

/// A pool described in YAML (`pool.yaml`): its name, settings and groups.
///
/// Every key is checked: an unknown key, a wrong type, or an invalid value is one
/// ``ConfigurationError`` naming the key path and its line. The keys are listed in
/// `docs/configuration.md`, which a test keeps in step with ``PoolConfiguration/knownKeys``.
public struct PoolConfiguration: Sendable {
    public var name: String
    public var stopTimeout: Duration
    public var pidFile: String?
    public var workerLogLevel: String
    public var groups: [WorkerGroup]
    /// Where workers' output goes, in the runtime directory; nil inherits the watcher's (not a file key).
    public var workerOutputFile: String?
    /// How much the flight recorder keeps (`recordFor`, default 15 minutes); nil when `off`.
    public var recordFor: Duration? = PoolConfiguration.defaultRecordFor
    /// Log lines kept per worker (`logHistory`, default 1,000).
    public var logHistory = EventLog.defaultPerWorker
    /// The combined stream's file and its rotation (`logFile`, `logMaxSize`, `logKeep`).
    public var logFile: LogFileSettings?

    /// The flight recorder's span when `recordFor` is not given.
    public static let defaultRecordFor: Duration = .seconds(900)

    /// Keys accepted at the top level.
    public static let poolKeys = [
        "name", "stopTimeout", "pidFile", "logLevel", "logHistory", "logFile", "logMaxSize", "logKeep", "recordFor", "groups",
    ]
    /// Keys accepted in each group.
    public static let groupKeys = [
        "name", "kind", "entryPoint", "min", "max", "jobGroups", "restart", "stopTimeout", "startTimeout",
        "onError", "environment", "executable", "pickup", "jobs", "scaling", "recycle", "jobWait", "after",
        "listen", "command", "env", "envFile", "workingDirectory", "ready", "stopSignal", "watchdog", "user", "group",
        "hangTimeout", "settings", "standby", "forkServer",
    ]
    /// Keys accepted in a group's `restart`.
    public static let restartKeys = ["policy", "maxRestarts", "window", "backoff"]
    /// Keys accepted in `restart.backoff`.
    public static let backoffKeys = ["initial", "factor", "max", "resetAfter"]
    /// Keys accepted in a group's `jobs` (the job executor's limits).
    public static let jobsKeys = ["maxConcurrent", "maxWeight", "maxQueued"]
    /// Keys accepted in a group's `scaling`.
    public static let scalingKeys = ["onDemand", "shrinkAfterIdle"]
    /// Keys accepted in a group's `recycle`.
    public static let recycleKeys = ["maxJobs", "maxMemory", "memorySamples", "maxLifetime", "maxIdle", "jitter"]
    /// Keys accepted in a group's `ready` written as a mapping (a probe).
    public static let readyKeys = ["tcp", "http", "exec", "interval", "timeout", "failureThreshold", "initialDelay"]
    /// Keys accepted in a `listen` entry written as a mapping.
    public static let listenKeys = ["address", "name", "backlog", "exposed", "shared"]

    /// Every key path the file format knows, for the documentation test.
    public static var knownKeys: [String] {
        poolKeys + groupKeys.map { "groups[].\($0)" } + restartKeys.map { "groups[].restart.\($0)" }
            + backoffKeys.map { "groups[].restart.backoff.\($0)" } + jobsKeys.map { "groups[].jobs.\($0)" }
            + scalingKeys.map { "groups[].scaling.\($0)" } + recycleKeys.map { "groups[].recycle.\($0)" }
            + listenKeys.map { "groups[].listen[].\($0)" } + readyKeys.map { "groups[].ready.\($0)" }
    }

    /// Checks a pool name (used in file paths and shared-memory names) on its own.
    public static func validatePoolName(_ name: String) throws(ConfigurationError) {
        try PoolValidator.validatePoolName(name)
    }

    /// The largest configuration file read (a pool of a thousand groups fits in a tenth of it).
    public static let maximumFileSize = 1 << 20
    /// How long reading the file may take.
    public static let readTimeout: Duration = .seconds(5)

    /// Reads, parses and validates a YAML file; an unreadable file is a ``ConfigurationError`` too.
    ///
    /// Only a regular file of at most ``maximumFileSize`` bytes, read within ``readTimeout``, is
    /// read: a device such as `/dev/zero`, a FIFO or a huge file is refused with an error that
    /// says so, instead of a read that never ends.
    public static func load(
        file path: String, entryPoints: EntryPoints?
    ) throws(ConfigurationError) -> (configuration: PoolConfiguration, description: PoolDescription) {
        try parse(yaml: try readText(file: path), file: path, entryPoints: entryPoints)
    }

    /// A configuration file's text, read as ``load(file:entryPoints:)`` reads it (a regular
    /// file, at most ``maximumFileSize``, within ``readTimeout``): for `pooltop apply`, which
    /// sends the text to the running pool.
    public static func readText(file path: String) throws(ConfigurationError) -> String {
        let read: Posix.RegularFileRead
        do {
            read = try Posix.readRegularFile(
                path, limit: maximumFileSize, timeoutNanoseconds: UInt64(readTimeout.nanoseconds))
        } catch {
            throw ConfigurationError(path: "", message: "cannot read \(path): \(error)")
        }
        switch read {
        case .bytes(let bytes):
            return String(decoding: bytes, as: UTF8.self)
        case .notRegular(let kind):
            throw ConfigurationError(path: "", message: "cannot read \(path): it is \(kind), not a regular file")
        case .tooLarge(let size):
            throw ConfigurationError(
                path: "", message: "cannot read \(path): it has \(size) bytes or more; a configuration file may have at most \(maximumFileSize) (1 MiB)")
        case .tooSlow:
            throw ConfigurationError(
                path: "", message: "cannot read \(path): reading it took longer than \(DurationParser.format(readTimeout))")
        }
    }

    /// Parses and validates YAML text.
    ///
    /// - Parameters:
    ///   - file: The file name put into errors.
    ///   - entryPoints: The entry points of this binary; an unknown `entryPoint` is an error.
    public static func parse(
        yaml text: String, file: String? = nil, entryPoints: EntryPoints?
    ) throws(ConfigurationError) -> (configuration: PoolConfiguration, description: PoolDescription) {
        let parsed = try parseLocating(yaml: text, file: file, entryPoints: entryPoints)
        return (parsed.configuration, parsed.description)
    }

    /// ``parse(yaml:file:entryPoints:)``, with the reader that can give any later finding
    /// about the file (`apply`'s refusals) its line.
    static func parseLocating(
        yaml text: String, file: String? = nil, entryPoints: EntryPoints?
    ) throws(ConfigurationError) -> (configuration: PoolConfiguration, description: PoolDescription, reader: ConfigurationReader) {
        var reader = ConfigurationReader(file: file, entryPoints: entryPoints)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationError(path: "", message: "the file is empty; it needs at least 'groups'", file: file, line: 1)
            }
            root = node
        } catch let error as ConfigurationError {
            throw error
        } catch let error as YamlError {
            throw reader.syntaxError(error)
        } catch {
            throw ConfigurationError(path: "", message: "cannot parse YAML: \(error)", file: file)
        }
        let configuration = try reader.pool(root)
        do {
            let description = try PoolValidator.validate(
                name: configuration.name, stopTimeout: configuration.stopTimeout, groups: configuration.groups,
                entryPoints: entryPoints)
            return (configuration, description, reader)
        } catch {
            throw reader.locate(error)
        }
    }

    /// Builds the pool the file describes (nothing runs until `run()`).
    public func makePool(
        entryPoints: EntryPoints?, nameOverride: String? = nil, handlesSignals: Bool = true,
        logger: Logger
    ) throws -> WorkerPool {
        let pool = WorkerPool(
            name: nameOverride ?? name, entryPoints: entryPoints,
            configuration: WorkerPool.Configuration(
                stopTimeout: stopTimeout, pidFile: pidFile, handlesSignals: handlesSignals,
                workerLogLevel: Logger.Level(rawValue: workerLogLevel) ?? .info, workerOutputFile: workerOutputFile,
                recordFor: recordFor, logHistory: logHistory, logFile: logFile),
            logger: logger)
        for group in groups { try pool.describeGroup(group) }
        return pool
    }
}

/// Walks the YAML node tree, remembering the line of every key path it reads.
struct ConfigurationReader {
    let file: String?
    let entryPoints: EntryPoints?
    var lines: [String: Int] = [:]

    init(file: String?, entryPoints: EntryPoints?) {
        self.file = file
        self.entryPoints = entryPoints
    }

    var registeredPickups: [String] { entryPoints?.pickupNames ?? [] }

    mutating func pool(_ root: Node) throws(ConfigurationError) -> PoolConfiguration {
        let map = try mapping(root, path: "", allowed: PoolConfiguration.poolKeys)
        let name = try map["name"].map { node throws(ConfigurationError) in try string(node, path: "name") } ?? "demo"
        let stopTimeout =
            try map["stopTimeout"].map { node throws(ConfigurationError) in try duration(node, path: "stopTimeout") }
            ?? .seconds(10)
        let pidFile = try map["pidFile"].map { node throws(ConfigurationError) in try string(node, path: "pidFile") }
        let logLevel =
            try map["logLevel"].map { node throws(ConfigurationError) in
                try choice(node, path: "logLevel", among: Logger.Level.allCases.map(\.rawValue))
            } ?? "info"
        var recordFor: Duration? = PoolConfiguration.defaultRecordFor
        if let node = map["recordFor"] {
            if try string(node, path: "recordFor") == "off" {
                recordFor = nil
            } else {
                let value = try duration(node, path: "recordFor")
                guard ConfigurationLimits.recordFor.contains(value) else {
                    throw error(
                        "recordFor",
                        "must be from \(DurationParser.format(ConfigurationLimits.recordFor.lowerBound)) to \(DurationParser.format(ConfigurationLimits.recordFor.upperBound)), or off (got \(DurationParser.format(value)))",
                        node: node)
                }
                recordFor = value
            }
        }
        var logHistory = EventLog.defaultPerWorker
        if let node = map["logHistory"] {
            logHistory = try integer(node, path: "logHistory")
            guard ConfigurationLimits.logHistory.contains(logHistory) else {
                throw error(
                    "logHistory",
                    "must be from \(ConfigurationLimits.logHistory.lowerBound) to \(ConfigurationLimits.logHistory.upperBound) lines (got \(logHistory))",
                    node: node)
            }
        }
        var logFile: LogFileSettings?
        if let node = map["logFile"] {
            var settings = LogFileSettings(path: try string(node, path: "logFile"))
            if settings.path.isEmpty { throw error("logFile", "must be a file's path", node: node) }
            // Relative to the configuration file, as envFile is: the pool may start anywhere.
            settings.path = resolve(settings.path)
            if let node = map["logMaxSize"] {
                settings.maxSize = try bytes(node, path: "logMaxSize")
                guard ConfigurationLimits.logMaxSize.contains(settings.maxSize) else {
                    throw error("logMaxSize", "must be from 4 KiB to 1 TiB (got \(settings.maxSize) bytes)", node: node)
                }
            }
            if let node = map["logKeep"] {
                settings.keep = try integer(node, path: "logKeep")
                guard ConfigurationLimits.logKeep.contains(settings.keep) else {
                    throw error("logKeep", "must be from 0 to 100 (got \(settings.keep))", node: node)
                }
            }
            logFile = settings
        } else if let key = ["logMaxSize", "logKeep"].first(where: { map[$0] != nil }), let node = map[key] {
            throw error(key, "applies to logFile, which is not set", node: node)
        }
        guard let groupsNode = map["groups"] else {
            throw error("", "the key 'groups' is missing; a pool needs at least one group", node: root)
        }
        guard case .sequence(let sequence) = groupsNode else {
            throw error("groups", "must be a list of groups", node: groupsNode)
        }
        var groups: [WorkerGroup] = []
        for (index, node) in sequence.enumerated() {
            groups.append(try group(node, path: "groups[\(index)]"))
        }
        var configuration = PoolConfiguration(
            name: name, stopTimeout: stopTimeout, pidFile: pidFile, workerLogLevel: logLevel, groups: groups)
        configuration.recordFor = recordFor
        configuration.logHistory = logHistory
        configuration.logFile = logFile
        return configuration
    }

    private mutating func group(_ node: Node, path: String) throws(ConfigurationError) -> WorkerGroup {
        let map = try mapping(node, path: path, allowed: PoolConfiguration.groupKeys)
        guard let kindNode = map["kind"] else { throw error(path, "the key 'kind' is missing (reactor, job or service)", node: node) }
        let kind = WorkerKind(
            rawValue: try choice(kindNode, path: "\(path).kind", among: WorkerKind.allCases.map(\.rawValue)))!
        var group: WorkerGroup
        if let entryNode = map["entryPoint"] {
            group = WorkerGroup(entryPoint: try string(entryNode, path: "\(path).entryPoint"), kind: kind)
        } else if map["command"] != nil {
            group = WorkerGroup(entryPoint: "", kind: kind)
        } else {
            throw error(path, "the key 'entryPoint' (a Swift worker) or 'command' (a program) is missing", node: node)
        }
        try program(map, into: &group, path: path)
        if let node = map["name"] { group.name = try string(node, path: "\(path).name") }
        if let node = map["min"] { group.minWorkers = try integer(node, path: "\(path).min") }
        if let node = map["max"] { group.maxWorkers = try integer(node, path: "\(path).max") }
        if let node = map["jobGroups"] {
            guard case .sequence(let items) = node else { throw error("\(path).jobGroups", "must be a list of group names", node: node) }
            group.jobGroups = []
            for (index, item) in items.enumerated() {
                let itemPath = "\(path).jobGroups[\(index)]"
                if case .scalar = item, let id = item.int {
                    note(itemPath, item)
                    group.jobGroups.append(.id(GroupID(id)))
                } else {
                    group.jobGroups.append(.name(try string(item, path: itemPath)))
                }
            }
        }
        if let node = map["after"] {
            guard case .sequence(let items) = node else {
                throw error("\(path).after", "must be a list of groups, each a name or {group: NAME, condition: started|ready|completed}", node: node)
            }
            for (index, item) in items.enumerated() {
                let itemPath = "\(path).after[\(index)]"
                if case .mapping = item {
                    let entry = try mapping(item, path: itemPath, allowed: ["group", "condition"])
                    guard let name = entry["group"] else { throw error(itemPath, "'group' is missing", node: item) }
                    var condition = GroupDependency.Condition.ready
                    if let value = entry["condition"] {
                        let text = try choice(
                            value, path: "\(itemPath).condition", among: GroupDependency.Condition.allCases.map(\.rawValue))
                        condition = GroupDependency.Condition(rawValue: text) ?? .ready
                    }
                    note("\(itemPath).group", name)
                    group.after.append(GroupDependency(.name(try string(name, path: "\(itemPath).group")), condition))
                } else {
                    // A plain name waits for that group to be ready.
                    note("\(itemPath).group", item)
                    group.after.append(GroupDependency(.name(try string(item, path: itemPath))))
                }
            }
        }
        if let node = map["restart"] { group.restart = try restart(node, path: "\(path).restart") }
        if let node = map["stopTimeout"] { group.stopTimeout = try duration(node, path: "\(path).stopTimeout") }
        if let node = map["startTimeout"] { group.startTimeout = try duration(node, path: "\(path).startTimeout") }
        if let node = map["hangTimeout"] {
            let text = try string(node, path: "\(path).hangTimeout")
            group.hangTimeout = text == "off" ? nil : try duration(node, path: "\(path).hangTimeout")
        }
        if let node = map["standby"] {
            note("\(path).standby", node)
            group.standby = try boolean(node, path: "\(path).standby")
        }
        if let node = map["forkServer"] {
            note("\(path).forkServer", node)
            group.forkServer = try boolean(node, path: "\(path).forkServer")
        }
        if let node = map["onError"] {
            let value = try choice(node, path: "\(path).onError", among: ["stop-pool", "restart"])
            group.onUncaughtError = UncaughtErrorPolicy(rawValue: value)!
        }
        if let node = map["jobWait"] {
            let text = try string(node, path: "\(path).jobWait")
            guard let policy = JobWaitPolicy(rawValue: text) else {
                throw error(
                    "\(path).jobWait",
                    "'\(text)' is not a job wait; use \(JobWaitPolicy.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))",
                    node: node)
            }
            group.jobWait = policy
        }
        if map["environment"] != nil && map["env"] != nil {
            throw error("\(path).env", "'env' and 'environment' are the same key; give one", node: map["env"]!)
        }
        for key in ["environment", "env"] {
            guard let node = map[key] else { continue }
            let entries = try mapping(node, path: "\(path).\(key)", allowed: nil)
            for (name, value) in entries { group.runner.environment[name] = try string(value, path: "\(path).\(key).\(name)") }
        }
        if let node = map["executable"] { group.runner.executable = try string(node, path: "\(path).executable") }
        if let node = map["pickup"] {
            let name = try choice(node, path: "\(path).pickup", among: PickupStrategies.builtIn + registeredPickups)
            group.pickup = PickupStrategies.make(StrategyDescriptor(name: name), registry: entryPoints)
        }
        if let node = map["jobs"] {
            let values = try mapping(node, path: "\(path).jobs", allowed: PoolConfiguration.jobsKeys)
            var limits = JobExecutorConfiguration()
            if let node = values["maxConcurrent"] { limits.maxConcurrentJobs = try integer(node, path: "\(path).jobs.maxConcurrent") }
            if let node = values["maxWeight"] { limits.maxConcurrentWeight = try integer(node, path: "\(path).jobs.maxWeight") }
            if let node = values["maxQueued"] { limits.maxQueuedJobs = try integer(node, path: "\(path).jobs.maxQueued") }
            group.jobExecutor = limits
        }
        if let node = map["scaling"] {
            let values = try mapping(node, path: "\(path).scaling", allowed: PoolConfiguration.scalingKeys)
            if let node = values["onDemand"] { group.scaling.onDemand = try boolean(node, path: "\(path).scaling.onDemand") }
            if let node = values["shrinkAfterIdle"] {
                let text = try string(node, path: "\(path).scaling.shrinkAfterIdle")
                group.scaling.shrinkAfterIdle = text == "never" ? nil : try duration(node, path: "\(path).scaling.shrinkAfterIdle")
            }
        }
        if let node = map["recycle"] {
            let values = try mapping(node, path: "\(path).recycle", allowed: PoolConfiguration.recycleKeys)
            var recycle = RecyclePolicy()
            if let node = values["maxJobs"] { recycle.maxJobs = try integer(node, path: "\(path).recycle.maxJobs") }
            if let node = values["maxMemory"] { recycle.maxMemoryBytes = try bytes(node, path: "\(path).recycle.maxMemory") }
            if let node = values["memorySamples"] { recycle.memorySamples = try integer(node, path: "\(path).recycle.memorySamples") }
            if let node = values["maxLifetime"] { recycle.maxLifetime = try duration(node, path: "\(path).recycle.maxLifetime") }
            if let node = values["maxIdle"] { recycle.maxIdle = try duration(node, path: "\(path).recycle.maxIdle") }
            if let node = values["jitter"] { recycle.jitter = try number(node, path: "\(path).recycle.jitter") }
            group.recycle = recycle
        }
        if let node = map["settings"] {
            guard case .map(let settings) = try settingValue(node, path: "\(path).settings") else {
                throw error("\(path).settings", "must be a mapping of keys to values (the entry point's own settings)", node: node)
            }
            group.settings = settings
        }
        if let node = map["listen"] {
            guard case .sequence(let items) = node else {
                throw error("\(path).listen", "must be a list of addresses (\"127.0.0.1:8080\", \"[::1]:8080\", \"unix:/path\")", node: node)
            }
            for (index, item) in items.enumerated() {
                group.listeners.append(try listener(item, path: "\(path).listen[\(index)]"))
            }
        }
        return group
    }

    private mutating func restart(_ node: Node, path: String) throws(ConfigurationError) -> RestartStrategy {
        let map = try mapping(node, path: path, allowed: PoolConfiguration.restartKeys)
        var backoff = RestartBackoff.standard
        if let node = map["backoff"] {
            let values = try mapping(node, path: "\(path).backoff", allowed: PoolConfiguration.backoffKeys)
            if let node = values["initial"] { backoff.initial = try duration(node, path: "\(path).backoff.initial") }
            if let node = values["factor"] { backoff.factor = try number(node, path: "\(path).backoff.factor") }
            if let node = values["max"] { backoff.maximum = try duration(node, path: "\(path).backoff.max") }
            if let node = values["resetAfter"] { backoff.resetAfter = try duration(node, path: "\(path).backoff.resetAfter") }
        }
        let policyName =
            try map["policy"].map { node throws(ConfigurationError) in
                try choice(node, path: "\(path).policy", among: ["always", "never", "limited"])
            } ?? "always"
        switch policyName {
        case "never":
            return RestartStrategy(policy: .never, backoff: backoff)
        case "limited":
            guard let maxNode = map["maxRestarts"] else {
                throw error(path, "policy 'limited' needs 'maxRestarts'", node: node)
            }
            let maxRestarts = try integer(maxNode, path: "\(path).maxRestarts")
            let window = try map["window"].map { node throws(ConfigurationError) in try duration(node, path: "\(path).window") } ?? .seconds(60)
            return RestartStrategy(policy: .limited(maxRestarts: maxRestarts, window: window), backoff: backoff)
        default:
            for key in ["maxRestarts", "window"] where map[key] != nil {
                throw error("\(path).\(key)", "only applies to policy 'limited' (the policy is '\(policyName)')", node: map[key]!)
            }
            return RestartStrategy(policy: .always, backoff: backoff)
        }
    }

    /// A listener: an address string, or a mapping with `address`, `name`, `backlog`, `exposed` and `shared`.
    private mutating func listener(_ node: Node, path: String) throws(ConfigurationError) -> Listener {
        var addressNode = node
        var name = ""
        var backlog = 1024
        var exposed = false
        var shared = false
        if case .mapping = node {
            let values = try mapping(node, path: path, allowed: PoolConfiguration.listenKeys)
            guard let address = values["address"] else { throw error(path, "the key 'address' is missing", node: node) }
            addressNode = address
            if let node = values["name"] { name = try string(node, path: "\(path).name") }
            if let node = values["backlog"] { backlog = try integer(node, path: "\(path).backlog") }
            if let node = values["exposed"] { exposed = try boolean(node, path: "\(path).exposed") }
            if let node = values["shared"] { shared = try boolean(node, path: "\(path).shared") }
        }
        let text = try string(addressNode, path: path)
        do {
            var listener = try Listener(text, name: name, backlog: backlog)
            listener.exposed = exposed
            listener.shared = shared
            return listener
        } catch let failure {
            throw error(path, failure.message + " (got '\(text)')", node: addressNode)
        }
    }

    // MARK: - Typed reads

    mutating func mapping(_ node: Node, path: String, allowed: [String]?) throws(ConfigurationError) -> [String: Node] {
        note(path, node)
        guard case .mapping(let mapping) = node else {
            throw error(path, "must be a mapping of keys to values", node: node)
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error(path, "has a key that is not a string", node: keyNode) }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if let allowed, !allowed.contains(key) {
                throw error(keyPath, "unknown key '\(key)'; known keys here: \(allowed.joined(separator: ", "))", node: keyNode)
            }
            note(keyPath, value)
            result[key] = value
        }
        return result
    }

    /// A group's own settings, kept as YAML wrote them, every key path's line noted so the
    /// entry point's check (``SettingsCheck``) errors point at the right line.
    mutating func settingValue(_ node: Node, path: String, depth: Int = 0) throws(ConfigurationError) -> SettingValue {
        note(path, node)
        if depth > ConfigurationLimits.settingsDepth {
            throw error(path, "nests deeper than \(ConfigurationLimits.settingsDepth) levels", node: node)
        }
        switch node {
        case .scalar(let scalar): return .scalar(scalar.string)
        case .sequence(let sequence):
            var items: [SettingValue] = []
            for (index, item) in sequence.enumerated() { items.append(try settingValue(item, path: "\(path)[\(index)]", depth: depth + 1)) }
            return .list(items)
        case .mapping(let mapping):
            var values: [String: SettingValue] = [:]
            for (keyNode, value) in mapping {
                guard let key = keyNode.string else { throw error(path, "has a key that is not a string", node: keyNode) }
                values[key] = try settingValue(value, path: "\(path).\(key)", depth: depth + 1)
            }
            return .map(values)
        case .alias:
            throw error(path, "YAML aliases are not read here; write the value out", node: node)
        }
    }

    mutating func string(_ node: Node, path: String) throws(ConfigurationError) -> String {
        note(path, node)
        guard case .scalar(let scalar) = node else { throw error(path, "must be a string", node: node) }
        return scalar.string
    }

    mutating func integer(_ node: Node, path: String) throws(ConfigurationError) -> Int {
        note(path, node)
        guard case .scalar = node, let value = node.int else {
            throw error(path, "must be a whole number (got '\(node.string ?? "a \(node.kindName)")')", node: node)
        }
        return value
    }

    mutating func number(_ node: Node, path: String) throws(ConfigurationError) -> Double {
        note(path, node)
        guard case .scalar = node, let value = node.float else {
            throw error(path, "must be a number (got '\(node.string ?? "a \(node.kindName)")')", node: node)
        }
        return value
    }

    mutating func boolean(_ node: Node, path: String) throws(ConfigurationError) -> Bool {
        note(path, node)
        guard case .scalar = node, let value = node.bool else {
            throw error(path, "must be true or false (got '\(node.string ?? "a \(node.kindName)")')", node: node)
        }
        return value
    }

    /// A size: a whole number of bytes, or a number with KB, MB, GB, TB (powers of 1000) or
    /// KiB, MiB, GiB, TiB. Checked as a `Double` before it becomes an integer, so `infGB` or
    /// `1e30GB` is an error rather than an overflow trap.
    private mutating func bytes(_ node: Node, path: String) throws(ConfigurationError) -> UInt64 {
        let text = try string(node, path: path)
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
        ]
        var value: Double?
        if let whole = UInt64(text) {
            value = Double(whole)
        } else {
            for (unit, scale) in units where text.hasSuffix(unit) {
                let number = text.dropLast(unit.count)
                // Swift's Double parser also takes "inf", "nan" and hex; a size is decimal.
                guard number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+") }),
                    let parsed = Double(number)
                else { break }
                value = parsed * scale
                break
            }
        }
        guard let value, value.isFinite, value > 0 else {
            throw error(path, "'\(text)' is not a size; write bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB", node: node)
        }
        let limit = ConfigurationLimits.memoryBytes.upperBound
        guard value <= Double(limit) else {
            throw error(path, "'\(text)' is too large; \(Self.documentedRange(path) ?? "the limit is 16 TiB")", node: node)
        }
        return max(1, UInt64(value))
    }

    mutating func choice(_ node: Node, path: String, among values: [String]) throws(ConfigurationError) -> String {
        let value = try string(node, path: path)
        guard values.contains(value) else {
            throw error(path, "unknown value '\(value)'; expected one of: \(values.joined(separator: ", "))", node: node)
        }
        return value
    }

    mutating func duration(_ node: Node, path: String) throws(ConfigurationError) -> Duration {
        let text = try string(node, path: path)
        switch DurationParser.classify(text) {
        case .duration(let duration): return duration
        case .tooLong:
            throw error(path, "'\(text)' is too long; \(Self.documentedRange(path) ?? "see docs/reliability.md for the range")", node: node)
        case .invalid:
            throw error(path, "'\(text)' is not a duration; write a number with a unit: 250ms, 10s, 5m, 1h", node: node)
        }
    }

    /// "groups[].stopTimeout takes 0 to 24h", from ``ConfigurationLimits/documented``.
    private static func documentedRange(_ path: String) -> String? {
        var key = ""
        var inIndex = false
        for character in path {
            if character == "[" {
                inIndex = true
                key.append("[")
            } else if character == "]" {
                inIndex = false
                key.append("]")
            } else if !inIndex {
                key.append(character)
            }
        }
        return ConfigurationLimits.documented.first { $0.key == key }.map { "\($0.key) takes \($0.range)" }
    }

    // MARK: - Locations

    mutating func note(_ path: String, _ node: Node) {
        if lines[path] == nil, let mark = node.mark { lines[path] = mark.line }
    }

    func error(_ path: String, _ message: String, node: Node) -> ConfigurationError {
        ConfigurationError(path: path, message: message, file: file, line: node.mark?.line)
    }

    /// Gives a validation error the line of its key path, or of the nearest enclosing one.
    func locate(_ error: ConfigurationError) -> ConfigurationError {
        var located = error
        located.file = file
        var path = error.path
        while located.line == nil {
            if let line = lines[path] {
                located.line = line
            } else if let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) {
                path = String(path[..<cut])
            } else {
                located.line = lines[""]
                break
            }
        }
        return located
    }

    func syntaxError(_ error: YamlError) -> ConfigurationError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return ConfigurationError(path: "", message: "YAML syntax error: \(problem)", file: file, line: mark.line)
        default:
            return ConfigurationError(path: "", message: "YAML syntax error: \(error)", file: file)
        }
    }
}

extension Node {
    fileprivate var kindName: String {
        switch self {
        case .scalar: return "scalar"
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }
}

/// Turns described groups into a frozen ``PoolDescription``, or says exactly what is wrong.
///
/// One validator serves the Swift API and `pool.yaml`; paths use the YAML key names
/// (`groups[0].max`) so a file error can be mapped back to its line.
enum PoolValidator {
    static func validate(
        name: String,
        stopTimeout: Duration,
        groups: [WorkerGroup],
        entryPointNames: Set<String>?
    ) throws(ConfigurationError) -> PoolDescription {
        try validatePoolName(name)
        if stopTimeout < .zero {
            throw ConfigurationError(path: "stopTimeout", message: "must not be negative")
        }
        if groups.isEmpty {
            throw ConfigurationError(path: "groups", message: "the pool has no groups; describe at least one")
        }
        var described: [GroupDescription] = []
        var nextWorkerID = 1
        var namesSeen: [String: Int] = [:]
        for (index, group) in groups.enumerated() {
            let path = "groups[\(index)]"
            let description = try describe(
                group, index: index, path: path, firstWorkerID: nextWorkerID, poolStopTimeout: stopTimeout,
                entryPointNames: entryPointNames)
            if let previous = namesSeen[description.name] {
                throw ConfigurationError(
                    path: "\(path).name",
                    message: "duplicate group name '\(description.name)' (groups[\(previous)] has it already)")
            }
            namesSeen[description.name] = index
            for (listenerIndex, listener) in description.listeners.enumerated() {
                // SO_REUSEPORT would let two groups share an address silently, mixing their traffic.
                if let owner = described.first(where: { $0.listeners.contains { $0.address == listener.address } }) {
                    throw ConfigurationError(
                        path: "\(path).listen[\(listenerIndex)]",
                        message: "\(listener) is already served by group '\(owner.name)'")
                }
            }
            described.append(description)
            nextWorkerID += description.maxWorkers
        }
        // Resolve jobGroups once every name is known, so a group may name a later one.
        for (index, group) in groups.enumerated() {
            var resolved: [GroupID] = []
            for (referenceIndex, reference) in group.jobGroups.enumerated() {
                let path = "groups[\(index)].jobGroups[\(referenceIndex)]"
                let target: GroupDescription?
                switch reference {
                case .id(let id): target = described.first { $0.id == id }
                case .name(let name): target = described.first { $0.name == name }
                }
                guard let target else {
                    let known = described.map(\.name).joined(separator: ", ")
                    throw ConfigurationError(path: path, message: "unknown group '\(reference)'; groups are: \(known)")
                }
                if target.id == described[index].id {
                    throw ConfigurationError(
                        path: path, message: "group '\(target.name)' cannot send jobs to itself")
                }
                if !resolved.contains(target.id) { resolved.append(target.id) }
            }
            described[index].jobGroups = resolved
        }
        return PoolDescription(name: name, stopTimeout: stopTimeout, groups: described)
    }

    static func validatePoolName(_ name: String) throws(ConfigurationError) {
        if name.isEmpty {
            throw ConfigurationError(path: "name", message: "the pool name must not be empty")
        }
        if name.utf8.count > 64 {
            throw ConfigurationError(path: "name", message: "the pool name is longer than 64 bytes")
        }
        // The name goes into file paths and the shared-memory name.
        let allowed = name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-"
                || $0 == "_" || $0 == "."
        }
        if !allowed || name.hasPrefix(".") {
            throw ConfigurationError(
                path: "name",
                message: "'\(name)' is not a valid pool name; use letters, digits, '-', '_' and '.' (not first)")
        }
    }

    private static func describe(
        _ group: WorkerGroup,
        index: Int,
        path: String,
        firstWorkerID: Int,
        poolStopTimeout: Duration,
        entryPointNames: Set<String>?
    ) throws(ConfigurationError) -> GroupDescription {
        if group.entryPoint.isEmpty {
            throw ConfigurationError(path: "\(path).entryPoint", message: "an entry point is required")
        }
        if let entryPointNames, !entryPointNames.contains(group.entryPoint) {
            let known = entryPointNames.sorted().joined(separator: ", ")
            throw ConfigurationError(
                path: "\(path).entryPoint",
                message: "unknown entry point '\(group.entryPoint)'; this binary registers: \(known)")
        }
        if group.minWorkers < 0 {
            throw ConfigurationError(path: "\(path).min", message: "must not be negative (got \(group.minWorkers))")
        }
        if group.maxWorkers < 0 {
            throw ConfigurationError(path: "\(path).max", message: "must not be negative (got \(group.maxWorkers))")
        }
        let maxWorkers = group.maxWorkers == 0 ? group.minWorkers : group.maxWorkers
        if maxWorkers == 0 {
            throw ConfigurationError(path: "\(path).max", message: "max workers must be at least 1")
        }
        if maxWorkers < group.minWorkers {
            throw ConfigurationError(
                path: "\(path).max", message: "max (\(maxWorkers)) is less than min (\(group.minWorkers))")
        }
        try validate(group.restart, path: "\(path).restart")
        if let stop = group.stopTimeout, stop < .zero {
            throw ConfigurationError(path: "\(path).stopTimeout", message: "must not be negative")
        }
        if group.startTimeout <= .zero {
            throw ConfigurationError(path: "\(path).startTimeout", message: "must be positive")
        }
        if let recycle = group.recycle {
            if recycle.jitter < 0 || recycle.jitter >= 1 {
                throw ConfigurationError(path: "\(path).recycle.jitter", message: "must be in 0..<1 (got \(recycle.jitter))")
            }
            if let maxJobs = recycle.maxJobs, maxJobs < 1 {
                throw ConfigurationError(path: "\(path).recycle.maxJobs", message: "must be at least 1")
            }
            if recycle.memorySamples < 1 {
                throw ConfigurationError(path: "\(path).recycle.memorySamples", message: "must be at least 1")
            }
        }
        let name = group.name.isEmpty ? group.entryPoint : group.name
        if name.contains(where: { $0 == "/" || $0.isNewline }) {
            throw ConfigurationError(path: "\(path).name", message: "'\(name)' must not contain '/' or line breaks")
        }
        let listeners = try validate(
            group.listeners.isEmpty && group.entryPoint == PrometheusGroup.entryPoint ? [PrometheusGroup.defaultListener] : group.listeners,
            kind: group.kind, metrics: group.entryPoint == PrometheusGroup.entryPoint, path: "\(path).listen")
        var strategies: [String: StrategyDescriptor] = [:]
        let slots: [(String, (any DescribableStrategy)?)] = [
            ("pickup", group.pickup),
        ]
        var executor = group.jobExecutor ?? (group.kind == .job ? JobExecutorConfiguration() : nil)
        if let limits = executor {
            if limits.maxConcurrentJobs < 1 {
                throw ConfigurationError(path: "\(path).jobs.maxConcurrent", message: "must be at least 1")
            }
            if limits.maxConcurrentWeight < 0 || limits.maxQueuedJobs < 0 {
                throw ConfigurationError(path: "\(path).jobs", message: "limits must not be negative")
            }
            executor = limits
        }
        for (slot, strategy) in slots {
            if let strategy { strategies[slot] = strategy.descriptor }
        }
        return GroupDescription(
            id: GroupID(index + 1),
            name: name,
            kind: group.kind,
            entryPoint: group.entryPoint,
            minWorkers: group.minWorkers,
            maxWorkers: maxWorkers,
            firstWorkerID: WorkerID(firstWorkerID),
            jobGroups: [],
            runner: group.runner,
            restart: group.restart,
            stopTimeout: group.stopTimeout ?? poolStopTimeout,
            startTimeout: group.startTimeout,
            onUncaughtError: group.onUncaughtError,
            strategies: strategies,
            jobExecutor: executor,
            scaling: group.scaling,
            recycle: group.recycle,
            listeners: listeners)
    }

    private static func validate(
        _ listeners: [Listener], kind: WorkerKind, metrics: Bool, path: String
    ) throws(ConfigurationError) -> [Listener] {
        guard !listeners.isEmpty else { return [] }
        guard kind != .job else {
            throw ConfigurationError(path: path, message: "only reactor and service groups serve listeners (this group is a job group)")
        }
        var resolved: [Listener] = []
        for (index, var listener) in listeners.enumerated() {
            let where_ = "\(path)[\(index)]"
            if listener.name.isEmpty { listener.name = "listen\(index)" }
            // LISTEN_FDNAMES separates names with ':'.
            if listener.name.contains(where: { $0 == ":" || $0.isWhitespace || !$0.isASCII }) {
                throw ConfigurationError(path: "\(where_).name", message: "'\(listener.name)' must be ASCII without ':' or spaces")
            }
            if resolved.contains(where: { $0.name == listener.name }) {
                throw ConfigurationError(path: "\(where_).name", message: "another listener of the group is already named '\(listener.name)'")
            }
            if listener.backlog < 1 {
                throw ConfigurationError(path: "\(where_).backlog", message: "must be at least 1 (got \(listener.backlog))")
            }
            if case .tcp(_, let port) = listener.address, port == 0 {
                // Each slot binds its own socket: port 0 would give every worker a different port.
                throw ConfigurationError(path: where_, message: "\(listener): port 0 is not allowed, name a port")
            }
            if resolved.contains(where: { $0.address == listener.address }) {
                throw ConfigurationError(path: where_, message: "\(listener) is listed twice")
            }
            if metrics && !listener.isLoopback && !listener.exposed {
                throw ConfigurationError(
                    path: where_,
                    message: "\(listener) is not a loopback address: the metrics would be open to the network; say so with exposed: true (in code, Listener.exposed)")
            }
            resolved.append(listener)
        }
        return resolved
    }

    private static func validate(_ restart: RestartStrategy, path: String) throws(ConfigurationError) {
        if case .limited(let maxRestarts, let window) = restart.policy {
            if maxRestarts < 0 {
                throw ConfigurationError(path: "\(path).maxRestarts", message: "must not be negative")
            }
            if window <= .zero {
                throw ConfigurationError(path: "\(path).window", message: "must be positive")
            }
        }
        let backoff = restart.backoff
        if backoff.initial < .zero {
            throw ConfigurationError(path: "\(path).backoff.initial", message: "must not be negative")
        }
        if backoff.factor < 1 {
            throw ConfigurationError(
                path: "\(path).backoff.factor", message: "must be at least 1 (got \(backoff.factor))")
        }
        if backoff.maximum < backoff.initial {
            throw ConfigurationError(path: "\(path).backoff.max", message: "must not be less than backoff.initial")
        }
        if backoff.resetAfter < .zero {
            throw ConfigurationError(path: "\(path).backoff.resetAfter", message: "must not be negative")
        }
    }
}

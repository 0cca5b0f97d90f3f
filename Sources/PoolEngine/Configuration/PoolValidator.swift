/// Turns described groups into a frozen ``PoolDescription``, or says exactly what is wrong.
///
/// One validator serves the Swift API and `pool.yaml`; paths use the YAML key names
/// (`groups[0].max`) so a file error can be mapped back to its line.
enum PoolValidator {
    static func validate(
        name: String,
        stopTimeout: Duration,
        groups: [WorkerGroup],
        entryPoints: EntryPoints?
    ) throws(ConfigurationError) -> PoolDescription {
        try validatePoolName(name)
        let entryPointNames = entryPoints.map { Set($0.names) }
        // An entry point's own settings first: its check may fill in what they imply (jobGroups).
        var groups = groups
        if let entryPoints {
            for index in groups.indices { try entryPoints.checkSettings(of: &groups[index], path: "groups[\(index)]") }
        }
        try check(stopTimeout, "stopTimeout", to: ConfigurationLimits.longestTimeout)
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
            nextWorkerID += description.slots
            if nextWorkerID - 1 > ConfigurationLimits.workersPerPool {
                throw ConfigurationError(
                    path: "\(path).max",
                    message: "the pool would have \(nextWorkerID - 1) worker slots; the limit is \(ConfigurationLimits.workersPerPool) for the whole pool")
            }
        }
        // Resolve jobGroups once every name is known, so a group may name a later one.
        for (index, group) in groups.enumerated() {
            var resolved: [GroupID] = []
            for (referenceIndex, reference) in group.jobGroups.enumerated() {
                let path = "groups[\(index)].jobGroups[\(referenceIndex)]"
                let target = try find(reference, in: described, path: path)
                if target.id == described[index].id {
                    throw ConfigurationError(
                        path: path, message: "group '\(target.name)' cannot send jobs to itself")
                }
                if !resolved.contains(target.id) { resolved.append(target.id) }
            }
            described[index].jobGroups = resolved
            described[index].after = try resolve(group.after, of: index, in: described)
        }
        try checkStartOrder(described)
        var pool = PoolDescription(name: name, stopTimeout: stopTimeout, groups: described)
        // The reserve never takes a pool past the limit on workers.
        pool.reserve.slots = max(0, min(pool.reserve.slots, ConfigurationLimits.workersPerPool - pool.slotCount))
        return pool
    }

    /// The group a reference names, or an error at `path` listing the groups there are.
    private static func find(
        _ reference: GroupReference, in described: [GroupDescription], path: String
    ) throws(ConfigurationError) -> GroupDescription {
        let target: GroupDescription?
        switch reference {
        case .id(let id): target = described.first { $0.id == id }
        case .name(let name): target = described.first { $0.name == name }
        }
        guard let target else {
            let known = described.map(\.name).joined(separator: ", ")
            throw ConfigurationError(path: path, message: "unknown group '\(reference)'; groups are: \(known)")
        }
        return target
    }

    private static func resolve(
        _ dependencies: [GroupDependency], of index: Int, in described: [GroupDescription]
    ) throws(ConfigurationError) -> [ResolvedDependency] {
        var resolved: [ResolvedDependency] = []
        for (position, dependency) in dependencies.enumerated() {
            let path = "groups[\(index)].after[\(position)].group"
            let target = try find(dependency.group, in: described, path: path)
            if target.id == described[index].id {
                throw ConfigurationError(path: path, message: "group '\(target.name)' cannot wait for itself")
            }
            if resolved.contains(where: { $0.group == target.id }) {
                throw ConfigurationError(path: path, message: "group '\(target.name)' is listed twice")
            }
            resolved.append(ResolvedDependency(group: target.id, condition: dependency.condition))
        }
        return resolved
    }

    /// Refuses a cycle in `after`, naming it: such groups could never start.
    private static func checkStartOrder(_ groups: [GroupDescription]) throws(ConfigurationError) {
        // Depth-first, with the path kept to name the cycle.
        var state = [Int](repeating: 0, count: groups.count)  // 0 new, 1 on the path, 2 done
        var path: [Int] = []
        func visit(_ index: Int) -> [Int]? {
            if state[index] == 2 { return nil }
            if state[index] == 1 { return Array(path[path.firstIndex(of: index)!...]) + [index] }
            state[index] = 1
            path.append(index)
            for dependency in groups[index].after {
                guard let next = groups.firstIndex(where: { $0.id == dependency.group }) else { continue }
                if let cycle = visit(next) { return cycle }
            }
            path.removeLast()
            state[index] = 2
            return nil
        }
        for index in groups.indices {
            if let cycle = visit(index) {
                let names = cycle.map { "'\(groups[$0].name)'" }.joined(separator: " → ")
                throw ConfigurationError(
                    path: "groups[\(cycle[0])].after", message: "the start order has a cycle: \(names) (each waits for the next)")
            }
        }
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
        var environmentFileDigest: UInt64?
        if let program = group.program {
            environmentFileDigest = try validate(program, of: group, path: path)
        } else if group.entryPoint.isEmpty {
            throw ConfigurationError(path: "\(path).entryPoint", message: "an entry point or a command is required")
        } else if group.runner.executable == nil, let entryPointNames, !entryPointNames.contains(group.entryPoint) {
            // Only this binary's entry points are known here; a group whose workers run another
            // executable (`runner.executable`) is checked by that binary, when its worker starts.
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
        if maxWorkers > ConfigurationLimits.workersPerGroup {
            throw ConfigurationError(
                path: group.maxWorkers == 0 ? "\(path).min" : "\(path).max",
                message: "must be at most \(ConfigurationLimits.workersPerGroup) workers (got \(maxWorkers))")
        }
        try validate(group.restart, path: "\(path).restart")
        if let stop = group.stopTimeout {
            try check(stop, "\(path).stopTimeout", to: ConfigurationLimits.longestTimeout)
        }
        try check(group.startTimeout, "\(path).startTimeout", positive: true, to: ConfigurationLimits.longestTimeout)
        if let hang = group.hangTimeout {
            try check(hang, "\(path).hangTimeout", in: ConfigurationLimits.hangTimeout)
        }
        if let idle = group.scaling.shrinkAfterIdle {
            try check(idle, "\(path).scaling.shrinkAfterIdle", to: ConfigurationLimits.longestWindow)
        }
        if let recycle = group.recycle { try validate(recycle, path: "\(path).recycle") }
        // A program group is named after its program unless it has a name.
        let name = group.name.isEmpty ? (group.program.map { programName($0) } ?? group.entryPoint) : group.name
        if name.contains(where: { $0 == "/" || $0.isNewline }) {
            throw ConfigurationError(path: "\(path).name", message: "'\(name)' must not contain '/' or line breaks")
        }
        let listeners = try validate(
            group.listeners.isEmpty && group.entryPoint == PrometheusGroup.entryPoint ? [PrometheusGroup.defaultListener] : group.listeners,
            kind: group.kind, metrics: group.entryPoint == PrometheusGroup.entryPoint, path: "\(path).listen")
        if group.standby && group.program != nil {
            throw ConfigurationError(
                path: "\(path).standby",
                message: "a program group cannot keep a standby: only an entry point of this binary waits for its slot")
        }
        var strategies: [String: StrategyDescriptor] = [:]
        let slots: [(String, (any DescribableStrategy)?)] = [
            ("pickup", group.pickup),
        ]
        var executor = group.jobExecutor ?? (group.kind == .job ? JobExecutorConfiguration() : nil)
        if let limits = executor {
            try check(limits.maxConcurrentJobs, "\(path).jobs.maxConcurrent", in: ConfigurationLimits.concurrentJobs)
            try check(limits.maxConcurrentWeight, "\(path).jobs.maxWeight", in: ConfigurationLimits.concurrentWeight)
            try check(limits.maxQueuedJobs, "\(path).jobs.maxQueued", in: ConfigurationLimits.queuedJobs)
            executor = limits
        }
        for (slot, strategy) in slots {
            if let strategy { strategies[slot] = strategy.descriptor }
        }
        return GroupDescription(
            id: GroupID(index + 1),
            name: name,
            kind: group.kind,
            entryPoint: group.program == nil ? group.entryPoint : "",
            minWorkers: group.minWorkers,
            maxWorkers: maxWorkers,
            firstWorkerID: WorkerID(firstWorkerID),
            slots: maxWorkers,
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
            listeners: listeners,
            jobWait: group.jobWait,
            program: group.program,
            hangTimeout: group.program == nil ? group.hangTimeout : nil,
            environmentFileDigest: environmentFileDigest,
            settings: group.settings,
            standby: group.standby,
            forkServer: group.forkServer)
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
            try check(listener.backlog, "\(where_).backlog", in: ConfigurationLimits.backlog)
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
            try check(maxRestarts, "\(path).maxRestarts", in: 0...ConfigurationLimits.maxRestarts)
            try check(window, "\(path).window", positive: true, to: ConfigurationLimits.longestWindow)
        }
        let backoff = restart.backoff
        try check(backoff.initial, "\(path).backoff.initial", to: ConfigurationLimits.longestTimeout)
        // NaN compares false with everything: test membership, not the bounds one by one.
        if !ConfigurationLimits.backoffFactor.contains(backoff.factor) {
            throw ConfigurationError(
                path: "\(path).backoff.factor", message: "must be a number from 1 to 1000 (got \(backoff.factor))")
        }
        try check(backoff.maximum, "\(path).backoff.max", to: ConfigurationLimits.longestTimeout)
        if backoff.maximum < backoff.initial {
            throw ConfigurationError(path: "\(path).backoff.max", message: "must not be less than backoff.initial")
        }
        try check(backoff.resetAfter, "\(path).backoff.resetAfter", to: ConfigurationLimits.longestWindow)
    }

    private static func validate(_ recycle: RecyclePolicy, path: String) throws(ConfigurationError) {
        if !(recycle.jitter >= 0 && recycle.jitter < 1) {
            throw ConfigurationError(path: "\(path).jitter", message: "must be from 0 to under 1 (got \(recycle.jitter))")
        }
        if let maxJobs = recycle.maxJobs { try check(maxJobs, "\(path).maxJobs", in: ConfigurationLimits.recycleJobs) }
        if let bytes = recycle.maxMemoryBytes, !ConfigurationLimits.memoryBytes.contains(bytes) {
            throw ConfigurationError(path: "\(path).maxMemory", message: "must be from 1 B to 16 TiB (got \(bytes) bytes)")
        }
        try check(recycle.memorySamples, "\(path).memorySamples", in: ConfigurationLimits.memorySamples)
        if let lifetime = recycle.maxLifetime {
            try check(lifetime, "\(path).maxLifetime", positive: true, to: ConfigurationLimits.longestRecycle)
        }
        if let idle = recycle.maxIdle { try check(idle, "\(path).maxIdle", positive: true, to: ConfigurationLimits.longestRecycle) }
    }

    /// A duration within `0...maximum` (above 0 when `positive`).
    static func check(
        _ value: Duration, _ path: String, positive: Bool = false, to maximum: Duration
    ) throws(ConfigurationError) {
        if positive ? value <= .zero : value < .zero {
            throw ConfigurationError(path: path, message: positive ? "must be positive" : "must not be negative")
        }
        if value > maximum {
            throw ConfigurationError(
                path: path,
                message: "must be at most \(DurationParser.format(maximum)) (got \(DurationParser.format(value)))")
        }
    }

    static func check(_ value: Duration, _ path: String, in range: ClosedRange<Duration>) throws(ConfigurationError) {
        guard !range.contains(value) else { return }
        throw ConfigurationError(
            path: path,
            message: "must be from \(DurationParser.format(range.lowerBound)) to \(DurationParser.format(range.upperBound)) (got \(DurationParser.format(value)))")
    }

    static func check(_ value: Int, _ path: String, in range: ClosedRange<Int>) throws(ConfigurationError) {
        guard !range.contains(value) else { return }
        throw ConfigurationError(path: path, message: "must be from \(range.lowerBound) to \(range.upperBound) (got \(value))")
    }
}

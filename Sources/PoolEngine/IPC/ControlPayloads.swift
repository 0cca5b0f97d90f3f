/// The control channel's payloads in ``ByteWriter``'s encoding, field by field in declaration
/// order, for both ends.
///
/// Hand-written on purpose: decoding the bootstrap with `JSONDecoder` cost a worker 1.6–2.2 ms
/// of its start, most of it the Swift runtime scanning every protocol conformance record of the
/// binary (about 8,000) for each generic type `Codable` instantiates (decision 0016). A stored
/// property added to any type here must be added to both functions; the tests count each
/// type's stored properties, so a forgotten one fails them.
extension ByteWriter {
    mutating func bootstrap(_ value: WorkerBootstrap) {
        unsigned(value.workerID.rawValue)
        signed(Int64(value.generation))
        pool(value.pool)
        signed(Int64(value.watcherPID))
        string(value.logLevel)
        optionalString(value.sharedMemoryName)
        optionalString(value.runtimeDirectory)
        strings(value.slotEnvironment)
    }

    mutating func pool(_ value: PoolDescription) {
        string(value.name)
        duration(value.stopTimeout)
        array(value.groups) { $0.group($1) }
        unsigned(value.reserve.groups)
        unsigned(value.reserve.slots)
        unsigned(value.reserve.runningJobBytes)
    }

    mutating func group(_ value: GroupDescription) {
        unsigned(value.id.rawValue)
        string(value.name)
        string(value.kind.rawValue)
        string(value.entryPoint)
        unsigned(value.minWorkers)
        unsigned(value.maxWorkers)
        unsigned(value.firstWorkerID.rawValue)
        unsigned(value.slots)
        array(value.jobGroups) { $0.unsigned($1.rawValue) }
        optionalString(value.runner.executable)
        strings(value.runner.environment)
        restart(value.restart)
        duration(value.stopTimeout)
        duration(value.startTimeout)
        string(value.onUncaughtError.rawValue)
        dictionary(value.strategies) { output, strategy in
            output.string(strategy.name)
            output.strings(strategy.parameters)
        }
        optional(value.jobExecutor) { output, limits in
            output.unsigned(limits.maxConcurrentJobs)
            output.unsigned(limits.maxConcurrentWeight)
            output.unsigned(limits.maxQueuedJobs)
        }
        bool(value.scaling.onDemand)
        optional(value.scaling.shrinkAfterIdle) { $0.duration($1) }
        optional(value.recycle) { $0.recycle($1) }
        array(value.listeners) { $0.listener($1) }
        string(value.jobWait.rawValue)
        array(value.after) { output, dependency in
            output.unsigned(dependency.group.rawValue)
            output.string(dependency.condition.rawValue)
        }
        optional(value.program) { $0.program($1) }
        optional(value.hangTimeout) { $0.duration($1) }
        optional(value.environmentFileDigest) { $0.unsigned($1) }
        dictionary(value.settings) { $0.setting($1) }
        bool(value.standby)
        bool(value.forkServer)
        bool(value.retired)
    }

    mutating func restart(_ value: RestartStrategy) {
        switch value.policy {
        case .never: byte(0)
        case .always: byte(1)
        case .limited(let maxRestarts, let window):
            byte(2)
            unsigned(maxRestarts)
            duration(window)
        }
        duration(value.backoff.initial)
        double(value.backoff.factor)
        duration(value.backoff.maximum)
        duration(value.backoff.resetAfter)
    }

    mutating func recycle(_ value: RecyclePolicy) {
        optional(value.maxJobs) { $0.unsigned($1) }
        optional(value.maxMemoryBytes) { $0.unsigned($1) }
        unsigned(value.memorySamples)
        optional(value.maxLifetime) { $0.duration($1) }
        optional(value.maxIdle) { $0.duration($1) }
        double(value.jitter)
    }

    mutating func listener(_ value: Listener) {
        switch value.address {
        case .tcp(let host, let port):
            byte(0)
            string(host)
            unsigned(port)
        case .unix(let path):
            byte(1)
            string(path)
        }
        string(value.name)
        unsigned(value.backlog)
        bool(value.exposed)
        bool(value.shared)
    }

    mutating func program(_ value: ExternalProgram) {
        array(value.arguments) { $0.string($1) }
        optionalString(value.environmentFile)
        optionalString(value.workingDirectory)
        switch value.readiness {
        case .started: byte(0)
        case .notify: byte(1)
        case .probe(let probe):
            byte(2)
            switch probe.check {
            case .tcp(let host, let port):
                byte(0)
                string(host)
                unsigned(port)
            case .http(let host, let port, let path):
                byte(1)
                string(host)
                unsigned(port)
                string(path)
            case .exec(let arguments):
                byte(2)
                array(arguments) { $0.string($1) }
            }
            duration(probe.interval)
            duration(probe.timeout)
            unsigned(probe.failureThreshold)
            duration(probe.initialDelay)
        }
        signed(Int64(value.stopSignal))
        optional(value.watchdog) { $0.duration($1) }
        optionalString(value.user)
        optionalString(value.group)
    }

    mutating func setting(_ value: SettingValue) {
        switch value {
        case .scalar(let text):
            byte(0)
            string(text)
        case .list(let values):
            byte(1)
            array(values) { $0.setting($1) }
        case .map(let values):
            byte(2)
            dictionary(values) { $0.setting($1) }
        }
    }

    mutating func stopRequest(_ value: StopRequest) {
        string(value.reason.rawValue)
        duration(value.timeout)
    }

    mutating func logRecord(_ value: LogRecord) {
        string(value.level)
        string(value.message)
        strings(value.metadata)
        double(value.timestamp)
    }

    mutating func exitReport(_ value: WorkerExitReport) {
        switch value {
        case .clean: byte(0)
        case .terminate(let message):
            byte(1)
            string(message)
        case .fatal(let message):
            byte(2)
            string(message)
        case .crash(let message):
            byte(3)
            string(message)
        }
    }
}

extension ByteReader {
    mutating func bootstrap() throws(Malformed) -> WorkerBootstrap {
        WorkerBootstrap(
            workerID: WorkerID(try int("workerID")), generation: Int(try signed("generation")), pool: try pool(),
            watcherPID: Int32(truncatingIfNeeded: try signed("watcherPID")), logLevel: try string("logLevel"),
            sharedMemoryName: try optionalString("sharedMemoryName"), runtimeDirectory: try optionalString("runtimeDirectory"),
            slotEnvironment: try strings("slotEnvironment"))
    }

    mutating func pool() throws(Malformed) -> PoolDescription {
        PoolDescription(
            name: try string("pool.name"), stopTimeout: try duration("pool.stopTimeout"),
            groups: try array("pool.groups") { input throws(Malformed) in try input.group() },
            reserve: PoolReserve(
                groups: try int("reserve.groups"), slots: try int("reserve.slots"), runningJobBytes: try int("reserve.runningJobBytes")))
    }

    mutating func group() throws(Malformed) -> GroupDescription {
        GroupDescription(
            id: GroupID(try int("group.id")), name: try string("group.name"), kind: try rawValue("group.kind", as: WorkerKind.self),
            entryPoint: try string("group.entryPoint"), minWorkers: try int("group.minWorkers"), maxWorkers: try int("group.maxWorkers"),
            firstWorkerID: WorkerID(try int("group.firstWorkerID")), slots: try int("group.slots"),
            jobGroups: try array("group.jobGroups") { input throws(Malformed) in GroupID(try input.int("group.jobGroups")) },
            runner: WorkerRunner(executable: try optionalString("runner.executable"), environment: try strings("runner.environment")),
            restart: try restart(), stopTimeout: try duration("group.stopTimeout"), startTimeout: try duration("group.startTimeout"),
            onUncaughtError: try rawValue("group.onUncaughtError", as: UncaughtErrorPolicy.self),
            strategies: try dictionary("group.strategies") { input throws(Malformed) in
                StrategyDescriptor(name: try input.string("strategy.name"), parameters: try input.strings("strategy.parameters"))
            },
            jobExecutor: try optional("group.jobExecutor") { input throws(Malformed) in
                JobExecutorConfiguration(
                    maxConcurrentJobs: try input.int("jobs.maxConcurrent"), maxConcurrentWeight: try input.int("jobs.maxWeight"),
                    maxQueuedJobs: try input.int("jobs.maxQueued"))
            },
            scaling: ScalingPolicy(
                onDemand: try bool("scaling.onDemand"),
                shrinkAfterIdle: try optional("scaling.shrinkAfterIdle") { input throws(Malformed) in try input.duration("scaling.shrinkAfterIdle") }),
            recycle: try optional("group.recycle") { input throws(Malformed) in try input.recycle() },
            listeners: try array("group.listeners") { input throws(Malformed) in try input.listener() },
            jobWait: try rawValue("group.jobWait", as: JobWaitPolicy.self),
            after: try array("group.after") { input throws(Malformed) in
                ResolvedDependency(
                    group: GroupID(try input.int("after.group")),
                    condition: try input.rawValue("after.condition", as: GroupDependency.Condition.self))
            },
            program: try optional("group.program") { input throws(Malformed) in try input.program() },
            hangTimeout: try optional("group.hangTimeout") { input throws(Malformed) in try input.duration("group.hangTimeout") },
            environmentFileDigest: try optional("group.environmentFileDigest") { input throws(Malformed) in
                try input.unsigned("group.environmentFileDigest")
            },
            settings: try dictionary("group.settings") { input throws(Malformed) in try input.setting(depth: 0) },
            standby: try bool("group.standby"),
            forkServer: try bool("group.forkServer"),
            retired: try bool("group.retired"))
    }

    mutating func restart() throws(Malformed) -> RestartStrategy {
        let policy: RestartPolicy
        switch try byte("restart.policy") {
        case 0: policy = .never
        case 1: policy = .always
        case 2: policy = .limited(maxRestarts: try int("restart.maxRestarts"), window: try duration("restart.window"))
        case let other: throw invalid("restart.policy", "kind \(other)")
        }
        return RestartStrategy(
            policy: policy,
            backoff: RestartBackoff(
                initial: try duration("backoff.initial"), factor: try double("backoff.factor"), maximum: try duration("backoff.maximum"),
                resetAfter: try duration("backoff.resetAfter")))
    }

    mutating func recycle() throws(Malformed) -> RecyclePolicy {
        RecyclePolicy(
            maxJobs: try optional("recycle.maxJobs") { input throws(Malformed) in try input.int("recycle.maxJobs") },
            maxMemoryBytes: try optional("recycle.maxMemory") { input throws(Malformed) in try input.unsigned("recycle.maxMemory") },
            memorySamples: try int("recycle.memorySamples"),
            maxLifetime: try optional("recycle.maxLifetime") { input throws(Malformed) in try input.duration("recycle.maxLifetime") },
            maxIdle: try optional("recycle.maxIdle") { input throws(Malformed) in try input.duration("recycle.maxIdle") },
            jitter: try double("recycle.jitter"))
    }

    mutating func listener() throws(Malformed) -> Listener {
        let address: Listener.Address
        switch try byte("listener.address") {
        case 0: address = .tcp(host: try string("listener.host"), port: try int("listener.port"))
        case 1: address = .unix(path: try string("listener.path"))
        case let other: throw invalid("listener.address", "kind \(other)")
        }
        var listener = Listener(address: address, name: try string("listener.name"), backlog: try int("listener.backlog"))
        listener.exposed = try bool("listener.exposed")
        listener.shared = try bool("listener.shared")
        return listener
    }

    mutating func program() throws(Malformed) -> ExternalProgram {
        let arguments = try array("program.arguments") { input throws(Malformed) in try input.string("program.arguments") }
        let environmentFile = try optionalString("program.envFile")
        let workingDirectory = try optionalString("program.workingDirectory")
        let readiness: Readiness
        switch try byte("program.ready") {
        case 0: readiness = .started
        case 1: readiness = .notify
        case 2:
            let check: ReadinessProbe.Check
            switch try byte("probe.check") {
            case 0: check = .tcp(host: try string("probe.host"), port: try int("probe.port"))
            case 1: check = .http(host: try string("probe.host"), port: try int("probe.port"), path: try string("probe.path"))
            case 2: check = .exec(try array("probe.exec") { input throws(Malformed) in try input.string("probe.exec") })
            case let other: throw invalid("probe.check", "kind \(other)")
            }
            readiness = .probe(
                ReadinessProbe(
                    check, interval: try duration("probe.interval"), timeout: try duration("probe.timeout"),
                    failureThreshold: try int("probe.failureThreshold"), initialDelay: try duration("probe.initialDelay")))
        case let other: throw invalid("program.ready", "kind \(other)")
        }
        return ExternalProgram(
            arguments, environmentFile: environmentFile, workingDirectory: workingDirectory, readiness: readiness,
            stopSignal: Int32(truncatingIfNeeded: try signed("program.stopSignal")),
            watchdog: try optional("program.watchdog") { input throws(Malformed) in try input.duration("program.watchdog") },
            user: try optionalString("program.user"), group: try optionalString("program.group"))
    }

    /// Settings nest no deeper than pool.yaml lets them (``ConfigurationLimits/settingsDepth``);
    /// a deeper payload is refused, not followed down to the end of the stack.
    mutating func setting(depth: Int) throws(Malformed) -> SettingValue {
        guard depth <= ConfigurationLimits.settingsDepth else {
            throw invalid("setting", "nested deeper than \(ConfigurationLimits.settingsDepth) levels")
        }
        switch try byte("setting") {
        case 0: return .scalar(try string("setting"))
        case 1: return .list(try array("setting") { input throws(Malformed) in try input.setting(depth: depth + 1) })
        case 2: return .map(try dictionary("setting") { input throws(Malformed) in try input.setting(depth: depth + 1) })
        case let other: throw invalid("setting", "kind \(other)")
        }
    }

    mutating func stopRequest() throws(Malformed) -> StopRequest {
        StopRequest(reason: try rawValue("stop.reason", as: ExitReason.self), timeout: try duration("stop.timeout"))
    }

    mutating func logRecord() throws(Malformed) -> LogRecord {
        LogRecord(
            level: try string("log.level"), message: try string("log.message"), metadata: try strings("log.metadata"),
            timestamp: try double("log.timestamp"))
    }

    mutating func exitReport() throws(Malformed) -> WorkerExitReport {
        switch try byte("exit.kind") {
        case 0: return .clean
        case 1: return .terminate(try string("exit.message"))
        case 2: return .fatal(try string("exit.message"))
        case 3: return .crash(try string("exit.message"))
        case let other: throw invalid("exit.kind", "kind \(other)")
        }
    }
}

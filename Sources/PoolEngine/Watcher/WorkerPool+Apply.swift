import Logging

// `pooltop apply NAME pool.yaml`: the running pool takes a new configuration without stopping.
extension WorkerPool {
    /// Plans the change from the running pool to the one `yaml` describes and, unless
    /// `dryRun` or something cannot be applied live, makes it (see ``PoolChange``).
    ///
    /// The file is read and checked by this process, with its own entry points, exactly as
    /// `run()` would; relative paths in it are relative to `file`.
    /// - Returns: the plan; its ``PoolChange/refusals`` say what cannot be done live, in which
    ///   case nothing was changed.
    /// - Throws: ``CommandError`` `invalidConfiguration` for a file with an error (with its key
    ///   and line), `notRunning`, or `busy` when another change came first.
    public func apply(yaml text: String, file: String?, dryRun: Bool = false) async throws(CommandError) -> PoolChange {
        guard let running = poolDescription else { throw CommandError(.notRunning, "the pool is not running") }
        let parsed: (configuration: PoolConfiguration, description: PoolDescription, reader: ConfigurationReader)
        do {
            parsed = try PoolConfiguration.parseLocating(yaml: text, file: file, entryPoints: entryPoints)
        } catch {
            throw CommandError(.invalidConfiguration, error.description)
        }
        var change = PoolChange.plan(running: running, candidate: parsed.description)
        // Pool-wide settings the watcher took at start.
        if parsed.configuration.pidFile != configuration.pidFile {
            change.refusals.append(
                ConfigurationError(path: "pidFile", message: "the pid file is held from the pool's start; restart the pool to change it"))
        }
        if Logger.Level(rawValue: parsed.configuration.workerLogLevel) != configuration.workerLogLevel {
            change.refusals.append(
                ConfigurationError(
                    path: "logLevel", message: "workers' log level is set when the pool starts; restart the pool to change it"))
        }
        if parsed.configuration.logFile != configuration.logFile {
            change.refusals.append(
                ConfigurationError(path: "logFile", message: "the log file is opened when the pool starts; restart the pool to change it"))
        }
        if parsed.configuration.logHistory != configuration.logHistory {
            change.refusals.append(
                ConfigurationError(path: "logHistory", message: "the log history is sized when the pool starts; restart the pool to change it"))
        }
        if parsed.configuration.recordFor != configuration.recordFor {
            change.refusals.append(
                ConfigurationError(
                    path: "recordFor", message: "the flight recorder's ring is sized when the pool starts; restart the pool to change it"))
        }
        change.refusals = change.refusals.map { parsed.reader.locate($0) }
        guard !dryRun, change.refusals.isEmpty, !change.isEmpty else { return change }
        try await command(.apply(change))
        let jobs = state.withLock { state -> JobClient? in
            if case .running(_, let monitor) = state.phase { state.phase = .running(description: change.next, monitor: monitor) }
            return state.operatorJobs
        }
        jobs?.update(pool: change.next)
        return change
    }
}

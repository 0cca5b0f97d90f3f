import Logging

extension Watcher {
    /// Writes a pool event to the watcher's log at the level it deserves.
    func log(_ event: PoolEvent) {
        switch event {
        case .workerStarting(let id, let group, let pid, let generation):
            logger.debug("worker \(id) (\(group)) starting", metadata: ["pid": "\(pid)", "generation": "\(generation)"])
        case .workerReady(let id, let group, let pid, let startup):
            logger.info("worker \(id) (\(group)) ready", metadata: ["pid": "\(pid)", "startup": "\(startup)"])
        case .workerStopRequested(let id, let group, let reason):
            logger.debug("worker \(id) (\(group)) asked to stop", metadata: ["reason": "\(reason.rawValue)"])
        case .workerKilled(let id, let group, let pid, let why):
            logger.warning("worker \(id) (\(group)) killed: \(why)", metadata: ["pid": "\(pid)"])
        case .workerExited(let exit):
            var metadata: Logger.Metadata = [
                "pid": "\(exit.pid)", "reason": "\(exit.reason.rawValue)", "uptime": "\(exit.uptime)",
            ]
            if let status = exit.status { metadata["status"] = "\(status)" }
            if let message = exit.message { metadata["error"] = "\(message)" }
            logger.log(
                level: ExitReason.expected.contains(exit.reason) ? .info : .error, "worker \(exit.id) (\(exit.group)) exited",
                metadata: metadata)
        case .workerBackingOff(let id, let group, let delay):
            logger.warning("worker \(id) (\(group)) restarts in \(delay)")
        case .workerFailed(let id, let group, let why):
            logger.error("worker \(id) (\(group)) will not be restarted: \(why)")
        case .workerSpawnFailed(let id, let group, let error):
            logger.error("worker \(id) (\(group)) could not be spawned: \(error)")
        case .workerHung(let id, let group, let pid, let why):
            logger.error("worker \(id) (\(group)) pid \(pid) is \(why); capturing its backtrace, then killing it")
        case .workerBacktrace(let id, let group, let pid, let backtrace):
            logger.error("worker \(id) (\(group)) pid \(pid) backtrace:\n\(backtrace)")
        case .groupScaled(let group, let from, let to):
            logger.info("group \(group) scaled from \(from) to \(to)")
        case .groupWaiting(let group, let waitingFor):
            logger.notice("group \(group) waits for \(waitingFor)")
        case .groupRolling(let group, let progress):
            if case .failed = progress {
                logger.error("group \(group): \(progress)")
            } else {
                logger.info("group \(group): \(progress)")
            }
        case .poolApplied(let changes):
            logger.notice("configuration applied: \(PoolChange.summary(changes))")
        case .poolRestarting(let hard):
            logger.notice("\(hard ? "hard" : "soft") restart of the pool")
        case .poolStopping(let reason):
            logger.notice("pool stopping: \(reason)")
        case .workerLog(let id, let group, let record):
            var metadata: Logger.Metadata = ["worker": "\(id)", "group": "\(group)"]
            for (key, value) in record.metadata { metadata[key] = "\(value)" }
            logger.log(level: Logger.Level(rawValue: record.level) ?? .info, "\(record.message)", metadata: metadata)
        }
    }
}

// Commands are checked before they are queued, so the operator gets a refusal at once and
// the core only ever sees requests it can carry out.
extension WatcherCore {
    /// Checks a scale request before it is queued, so the caller gets the refusal at once.
    func validateScale(_ groupID: GroupID, to target: Int) -> CommandError? {
        guard let group = pool.group(groupID) else {
            return CommandError(.noSuchGroup, "no group with id \(groupID)")
        }
        if target < group.minWorkers || target > group.maxWorkers {
            return CommandError(
                .outOfRange,
                "cannot scale group '\(group.name)' to \(target): allowed range is \(group.minWorkers)...\(group.maxWorkers)"
            )
        }
        if mode != .running {
            return CommandError(.notRunning, "the pool is not running (it is \(mode))")
        }
        return nil
    }

    /// Checks a group request (restart) before it is queued.
    func validateGroup(_ groupID: GroupID) -> CommandError? {
        guard pool.group(groupID) != nil else { return CommandError(.noSuchGroup, "no group with id \(groupID)") }
        if mode != .running { return CommandError(.notRunning, "the pool is not running (it is \(mode))") }
        return nil
    }

    /// Checks a kill request: the worker must have a process.
    func validateWorkerKill(_ id: WorkerID) -> CommandError? {
        guard let slot = slot(id) else {
            return CommandError(.noSuchWorker, "no worker with id \(id); ids run from 1 to \(slots.count)")
        }
        if !slot.state.hasProcess { return CommandError(.noProcess, "worker \(id) has no process (it is \(slot.state.rawValue))") }
        return nil
    }

    /// Checks that `id` can take a worker beside a running one: a stopped slot nobody wants.
    func validateSpareStart(_ id: WorkerID) -> CommandError? {
        guard let slot = slot(id) else { return CommandError(.noSuchWorker, "no worker with id \(id); ids run from 1 to \(slots.count)") }
        if mode != .running { return CommandError(.notRunning, "the pool is not running (it is \(mode))") }
        if slot.isDesired || slot.state != .stopped {
            return CommandError(.busy, "slot \(id) is not a spare (it is \(slot.state.rawValue)\(slot.isDesired ? ", wanted" : ""))")
        }
        return nil
    }

    /// Checks a single-worker request (restart, stop) before it is queued.
    func validateWorkerRestart(_ id: WorkerID) -> CommandError? {
        guard slot(id) != nil else {
            return CommandError(.noSuchWorker, "no worker with id \(id); ids run from 1 to \(slots.count)")
        }
        if mode != .running { return CommandError(.notRunning, "the pool is not running (it is \(mode))") }
        return nil
    }
}

// Who an event is about: the console scopes and filters by it, the event log keeps it per worker.
extension PoolEventRecord {
    /// The worker the event is about; nil for the pool's own events (a group scaled, the pool stopping).
    public var worker: WorkerID? {
        switch event {
        case .workerStarting(let id, _, _, _), .workerReady(let id, _, _, _), .workerStopRequested(let id, _, _),
            .workerKilled(let id, _, _, _), .workerBackingOff(let id, _, _), .workerFailed(let id, _, _),
            .workerSpawnFailed(let id, _, _), .workerHung(let id, _, _, _), .workerBacktrace(let id, _, _, _), .workerLog(let id, _, _):
            return id
        case .workerExited(let exit):
            return exit.id
        case .groupScaled, .groupRolling, .groupWaiting, .poolApplied, .poolRestarting, .poolStopping:
            return nil
        }
    }

    /// The group the event is about; nil for the pool's own events.
    public var group: String? {
        switch event {
        case .workerStarting(_, let group, _, _), .workerReady(_, let group, _, _), .workerStopRequested(_, let group, _),
            .workerKilled(_, let group, _, _), .workerBackingOff(_, let group, _), .workerFailed(_, let group, _),
            .workerSpawnFailed(_, let group, _), .workerHung(_, let group, _, _), .workerBacktrace(_, let group, _, _),
            .workerLog(_, let group, _), .groupScaled(let group, _, _), .groupRolling(let group, _), .groupWaiting(let group, _):
            return group
        case .workerExited(let exit):
            return exit.group
        case .poolApplied, .poolRestarting, .poolStopping:
            return nil
        }
    }
}

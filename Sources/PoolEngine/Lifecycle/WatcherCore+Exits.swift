// What happens when a worker's process ends: how the exit is classified, and what the slot
// does next (restart now, back off, give up, stay stopped), by its restart policy.
extension WatcherCore {
    mutating func exited(_ index: Int, status: TerminationStatus?, at now: PoolInstant) -> [WatcherAction] {
        var actions: [WatcherAction] = []
        let slot = slots[index]
        let group = pool.groups[slot.groupIndex]
        let reason = classify(slot, status: status)
        var message: String?
        switch slot.report {
        case .terminate(let text), .fatal(let text), .crash(let text): message = text
        case .clean, nil: message = nil
        }
        if message == nil, let why = slot.stopMessage { message = why }
        if message == nil, let why = slot.killedBecause { message = "killed: \(why)" }
        if message == nil, slot.report == nil, slot.stopReason == nil, status == .exited(0), group.program == nil {
            message = "exited without saying why: its control channel was lost"
        }
        let record = WorkerExitRecord(
            id: slot.id, group: group.name, pid: slot.pid, status: status, reason: reason, message: message,
            uptime: now.duration(since: slot.startedAt ?? now))
        slots[index].lastExit = record
        slots[index].exits[ExitReason.allCases.firstIndex(of: reason) ?? 0] += 1
        busy.remove(slot.id)
        slots[index].exitedAt = now
        slots[index].killAt = nil
        slots[index].killWhy = nil
        slots[index].watchdogAt = nil
        slots[index].hangAt = nil
        slots[index].hung = false
        slots[index].pid = 0
        actions.append(.emit(.workerExited(record)))

        switch reason {
        case .fatal:
            slots[index].state = .failed
            slots[index].isDesired = false
            if failure == nil {
                failure = PoolFailure(
                    code: .fatalWorkerError, message: message ?? "fatal error", worker: slot.id, group: group.name)
            }
            if mode == .running || mode == .restarting {
                mode = .stopping
                actions.append(.emit(.poolStopping(reason: "worker \(slot.id) of group '\(group.name)' failed fatally")))
                for other in slots.indices { actions += stop(other, reason: .shutdown, at: now) }
            }
        case .terminate:
            slots[index].state = .finished
            slots[index].isDesired = false
        case .shutdown:
            slots[index].state = .stopped
        case .scaleDown, .stopped:
            slots[index].state = .stopped
            slots[index].isDesired = false
        case .restart, .quota:
            slots[index].state = .stopped
            if mode == .running && slots[index].isDesired {
                slots[index].restarts += 1
                actions += spawn(index, at: now)
            }
        case .cleanExit, .crash, .signal, .bootFailure, .hang:
            slots[index].state = .stopped
            if mode == .running {
                actions += applyRestartPolicy(index, reason: reason, at: now)
            }
        }
        return actions
    }

    private func classify(_ slot: WorkerSlot, status: TerminationStatus?) -> ExitReason {
        // What the worker said outranks how the process ended; a fatal error always wins.
        switch slot.report {
        case .fatal: return .fatal
        case .terminate: return .terminate
        default: break
        }
        if let stopReason = slot.stopReason { return stopReason }
        if slot.readyAt == nil { return .bootFailure }
        switch slot.report {
        case .clean: return .cleanExit
        case .crash: return .crash
        default: break
        }
        if pool.groups[slot.groupIndex].program != nil {
            // A program reports nothing: how it ended is all there is, as for any supervisor.
            switch status {
            case .exited(0): return .cleanExit
            case .exited: return .crash
            case .signaled: return .signal
            case nil: return .bootFailure
            }
        }
        switch status {
        // The worker runtime always reports before exiting; an exit without a report, even
        // with code 0, means the channel was lost or user code called exit(): a crash.
        case .exited: return .crash
        case .signaled: return .signal
        case nil: return .bootFailure
        }
    }

    private mutating func applyRestartPolicy(_ index: Int, reason: ExitReason, at now: PoolInstant) -> [WatcherAction] {
        let group = pool.groups[slots[index].groupIndex]
        let strategy = group.restart
        let id = slots[index].id
        switch strategy.policy {
        case .never:
            slots[index].state = .finished
            slots[index].isDesired = false
            return [.emit(.workerFailed(id, group: group.name, why: "restart policy is 'never' (exit: \(reason.rawValue))"))]
        case .limited(let maxRestarts, let window):
            slots[index].restartTimes.removeAll { now.duration(since: $0) >= window }
            if slots[index].restartTimes.count >= maxRestarts {
                slots[index].state = .failed
                return [
                    .emit(
                        .workerFailed(
                            id, group: group.name,
                            why: "gave up after \(maxRestarts) restarts within \(window) (last exit: \(reason.rawValue))"))
                ]
            }
            slots[index].restartTimes.append(now)
        case .always:
            break
        }
        if let readyAt = slots[index].readyAt, now.duration(since: readyAt) >= strategy.backoff.resetAfter {
            slots[index].rapidExits = 0
        }
        let delay = strategy.backoff.delay(
            afterRapidExits: slots[index].rapidExits, isBootFailure: reason == .bootFailure)
        slots[index].rapidExits += 1
        if delay <= .zero {
            slots[index].restarts += 1
            return spawn(index, at: now)
        }
        slots[index].state = .backoff
        slots[index].backoffUntil = now + delay
        return [.emit(.workerBackingOff(id, group: group.name, delay: delay))]
    }
}

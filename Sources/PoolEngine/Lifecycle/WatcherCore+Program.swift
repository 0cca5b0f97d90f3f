// Workers that run a program (`command:`): when one is ready (it runs, it said READY=1, its
// probe answered), what its sd_notify messages mean, and its watchdog. A Swift worker says all
// this over its control channel; a program says it the way systemd services do.
extension WatcherCore {
    /// The slot's worker is ready: connections are steered to it, waiters released.
    mutating func becomeReady(_ index: Int, at now: PoolInstant) -> [WatcherAction] {
        guard slots[index].state == .starting else { return [] }
        slots[index].state = .ready
        slots[index].readyAt = now
        standbyPaused.remove(slots[index].groupIndex)
        slots[index].killAt = nil
        slots[index].killWhy = nil
        if let watchdog = watchdog(index) { slots[index].watchdogAt = now + watchdog }
        if let timeout = hangTimeout(index) { slots[index].hangAt = now + timeout }
        let startup = now.duration(since: slots[index].startedAt ?? now)
        return [.emit(.workerReady(slots[index].id, group: groupName(index), pid: slots[index].pid, startup: startup))]
    }

    /// The slot's program, when its group runs one.
    func program(_ index: Int) -> ExternalProgram? { pool.groups[slots[index].groupIndex].program }

    /// How long a program worker may go without `WATCHDOG=1`, when its group has a watchdog.
    func watchdog(_ index: Int) -> Duration? { program(index)?.watchdog }

    mutating func handle(program input: WatcherInput, at now: PoolInstant) -> [WatcherAction] {
        switch input {
        case .programDidExec(let id, let generation, let failure):
            guard let index = current(id, generation), let program = program(index), slots[index].state.hasProcess else { return [] }
            if let failure {
                // The trampoline exits 127 next; its exit is classified with this as the reason.
                slots[index].report = .crash(failure)
                return [.emit(.workerSpawnFailed(id, group: groupName(index), error: failure))]
            }
            return program.readiness == .started ? becomeReady(index, at: now) : []
        case .programDidNotify(let id, let generation, let message):
            guard let index = current(id, generation), let program = program(index), slots[index].state.hasProcess else { return [] }
            // STATUS= is shown as a log line of the worker by the loop (it stamps the time).
            var actions: [WatcherAction] = []
            if message.isReady && program.readiness == .notify { actions += becomeReady(index, at: now) }
            if message.isWatchdogBeat, let watchdog = program.watchdog, slots[index].state == .ready {
                slots[index].watchdogAt = now + watchdog
            }
            if message.triggersWatchdog && slots[index].state == .ready {
                actions += killNow(index, why: "it asked for it with WATCHDOG=trigger")
            }
            if message.isStopping && slots[index].state == .ready {
                // Leaving by itself: no new connections, and killed should it not leave.
                let timeout = pool.groups[slots[index].groupIndex].stopTimeout
                slots[index].state = .stopping
                slots[index].watchdogAt = nil
                slots[index].killAt = now + timeout
                slots[index].killWhy = "it said STOPPING=1 and did not exit within \(DurationParser.format(timeout))"
            }
            return actions
        case .probeDidSucceed(let id, let generation):
            guard let index = current(id, generation) else { return [] }
            return becomeReady(index, at: now)
        case .probeDidFail(let id, let generation, let why):
            guard mode == .running, let index = current(id, generation), slots[index].state == .ready else { return [] }
            let actions = stop(index, reason: .restart, at: now)
            slots[index].stopMessage = "its readiness probe failed: \(why)"
            return actions
        default:
            return []
        }
    }
}

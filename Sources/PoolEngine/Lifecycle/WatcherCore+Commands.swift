// Commands are checked here and nowhere else: the caller's answer is a `.reply` action the
// loop delivers once the effect is applied and published.
extension WatcherCore {
    mutating func handle(_ command: WatcherCommand, reply: ReplyToken, at now: PoolInstant) -> [WatcherAction] {
        if let refusal = check(command) { return [.reply(reply, .failure(refusal))] }
        var actions: [WatcherAction] = []
        switch command {
        case .scale(let groupID, let target):
            // An operator's size is the size: nothing added on demand is shed from it later.
            onDemandExtra[groupID] = 0
            actions += scale(groupID, to: target, at: now)
        case .restartWorker(let id, let hard):
            let index = id.rawValue - 1
            switch slots[index].state {
            case .starting, .ready:
                actions += stop(index, reason: .restart, at: now, hard: hard)
            case .backoff, .failed, .finished, .stopped:
                // An operator's "try again now": revive the slot at once.
                slots[index].isDesired = true
                slots[index].backoffUntil = nil
                slots[index].rapidExits = 0
                slots[index].restartTimes = []
                slots[index].restarts += 1
                actions += spawn(index, at: now)
            case .stopping:
                if hard { actions += killNow(index, why: "a hard restart does not wait") }
            }
        case .restartGroup(let groupID, let hard):
            // The group's workers are all being replaced: a roll of it has nothing left to do.
            actions += endRoll(groupID, code: .failed, why: "a restart of the group replaced its workers", at: now)
            // A restart may be for a new binary or environment, which the standby would not have.
            if let groupIndex = pool.groupIndex(.id(groupID)) { actions += discardStandbys(ofGroup: groupIndex) }
            for index in slots.indices where pool.groups[slots[index].groupIndex].id == groupID {
                if slots[index].state == .starting || slots[index].state == .ready {
                    actions += stop(index, reason: .restart, at: now, hard: hard)
                }
            }
        case .stopWorker(let id):
            let index = id.rawValue - 1
            slots[index].isDesired = false
            actions += stop(index, reason: .stopped, at: now)
        case .killWorker(let id):
            actions += killNow(id.rawValue - 1, why: "an operator killed it")
        case .rollingRestart(let groupID):
            // Answered when the roll ends, not now.
            return beginRoll(groupID, reply: reply)
        case .apply(let change):
            actions += apply(change, at: now)
        }
        return actions + [.reply(reply, .success(0))]
    }

    /// Why `command` cannot be carried out now, if it cannot.
    func check(_ command: WatcherCommand) -> CommandError? {
        switch command {
        case .scale(let groupID, let target):
            if let refusal = checkGroup(groupID) { return refusal }
            let group = pool.group(groupID)!
            if target < group.minWorkers || target > group.maxWorkers {
                return CommandError(
                    .outOfRange,
                    "cannot scale group '\(group.name)' to \(target): allowed range is \(group.minWorkers)...\(group.maxWorkers)")
            }
            if let refusal = checkNotHeld(groupID) { return refusal }
            if rolls[groupID] != nil {
                // The roll's spare counts as one of the group's while it starts: a new size would
                // be off by one once the roll retires the worker it replaces.
                return CommandError(.busy, "a rolling restart of '\(group.name)' is under way; scale it once the roll is over")
            }
            return nil
        case .restartGroup(let groupID, _):
            return checkGroup(groupID)
        case .rollingRestart(let groupID):
            if let refusal = checkGroup(groupID) { return refusal }
            if rolls[groupID] != nil {
                return CommandError(.busy, "a rolling restart of '\(pool.group(groupID)!.name)' is already under way")
            }
            return nil
        case .restartWorker(let id, _):
            guard let slot = slot(id) else { return noSuchWorker(id) }
            if let refusal = checkNotHeld(pool.groups[slot.groupIndex].id) { return refusal }
            return mode == .running ? nil : notRunning
        case .stopWorker(let id):
            guard slot(id) != nil else { return noSuchWorker(id) }
            return mode == .running ? nil : notRunning
        case .apply(let change):
            return check(apply: change)
        case .killWorker(let id):
            guard let slot = slot(id) else { return noSuchWorker(id) }
            if !slot.state.hasProcess {
                return CommandError(.noProcess, "worker \(id) has no process (it is \(slot.state.rawValue))")
            }
            return nil
        }
    }

    /// A group waiting for others starts no worker, by command or otherwise, until they are there.
    private func checkNotHeld(_ groupID: GroupID) -> CommandError? {
        guard let index = pool.groups.firstIndex(where: { $0.id == groupID }), held.contains(index) else { return nil }
        return CommandError(.busy, "group '\(pool.groups[index].name)' waits for \(waitDescription(index)) before it starts")
    }

    private func checkGroup(_ groupID: GroupID) -> CommandError? {
        guard pool.group(groupID) != nil else { return CommandError(.noSuchGroup, "no group with id \(groupID)") }
        return mode == .running ? nil : notRunning
    }

    private var notRunning: CommandError { CommandError(.notRunning, "the pool is not running (it is \(mode))") }

    private func noSuchWorker(_ id: WorkerID) -> CommandError {
        CommandError(.noSuchWorker, "no worker with id \(id); ids run from 1 to \(slots.count)")
    }
}

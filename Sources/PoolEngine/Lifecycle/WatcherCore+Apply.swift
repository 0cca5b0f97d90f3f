// `pooltop apply`: the core takes the new description and moves the slots toward it. Limits
// take effect at once (a group is scaled into its new range), groups whose workers read what
// changed are rolled, new groups start after the groups they wait for, and removed groups
// stop, the groups that waited for them first. Their slots stay theirs, so no slot id, record
// or running-jobs table moves while other processes read them.
extension WatcherCore {
    /// Why `change` cannot be made now, if it cannot.
    func check(apply change: PoolChange) -> CommandError? {
        guard mode == .running else { return CommandError(.notRunning, "the pool is not running (it is \(mode))") }
        if let refusal = change.refusals.first {
            return CommandError(.cannotApply, refusal.description)
        }
        guard change.base == pool else {
            return CommandError(.busy, "the pool changed since this plan was made (another apply came first); apply the file again")
        }
        for group in change.groups(.roll) + change.groups(.update) + change.groups(.stop) where rolls[group.id] != nil {
            return CommandError(.busy, "a rolling restart of '\(group.name)' is under way; apply once it is over")
        }
        return nil
    }

    mutating func apply(_ change: PoolChange, at now: PoolInstant) -> [WatcherAction] {
        // Told first: the scaling, rolls and starts that follow are its consequences.
        var actions: [WatcherAction] = [.emit(.poolApplied(change.groups.filter { $0.action != .unchanged }))]
        let started = change.groups(.start)
        pool = change.next
        for group in started {
            let groupIndex = pool.groups.firstIndex { $0.id == group.id }!
            // New groups take the slots after every existing one: a slot's index stays its id - 1.
            for id in group.workerIDs {
                precondition(id.rawValue == slots.count + 1, "apply gave group '\(group.name)' slot \(id) out of order")
                slots.append(WorkerSlot(id: id, groupIndex: groupIndex))
            }
            scalingEvents.append(0)
        }
        for group in change.groups(.update) + change.groups(.roll) {
            // A new range scales the group into it; an operator's size within it is kept.
            let desired = desiredCount(group.id)
            let target = min(max(desired, group.minWorkers), group.maxWorkers)
            let groupIndex = pool.groups.firstIndex { $0.id == group.id }!
            if target != desired && !held.contains(groupIndex) { actions += scale(group.id, to: target, at: now) }
            onDemandExtra[group.id] = min(onDemandExtra[group.id, default: 0], max(0, target - group.minWorkers))
        }
        for group in change.groups(.roll) where desiredCount(group.id) > 0 {
            actions += beginRoll(group.id, reply: nil)
        }
        for group in change.groups(.stop) {
            let groupIndex = pool.groups.firstIndex { $0.id == group.id }!
            held.remove(groupIndex)
            blocked.remove(groupIndex)
            onDemandExtra[group.id] = nil
            for index in slots.indices where slots[index].groupIndex == groupIndex {
                slots[index].isDesired = false
                // A slot backing off has no process: it simply stays down.
                if slots[index].state == .backoff {
                    slots[index].state = .stopped
                    slots[index].backoffUntil = nil
                }
            }
        }
        for group in started {
            let groupIndex = pool.groups.firstIndex { $0.id == group.id }!
            if group.after.isEmpty {
                actions += startGroup(groupIndex, at: now)
            } else {
                held.insert(groupIndex)
                actions.append(.emit(.groupWaiting(group: group.name, for: waitDescription(groupIndex))))
            }
        }
        return actions
    }

    /// Asks a removed group's workers to stop once no removed group that waited for it still
    /// has a process: the reverse of the start order, as when the pool stops.
    mutating func retireInOrder(at now: PoolInstant) -> [WatcherAction] {
        guard mode == .running else { return [] }
        var actions: [WatcherAction] = []
        for groupIndex in pool.groups.indices where pool.groups[groupIndex].retired && !retirementIssued.contains(groupIndex) {
            let id = pool.groups[groupIndex].id
            let waiting = pool.groups.indices.filter { other in
                pool.groups[other].retired && pool.groups[other].after.contains { $0.group == id }
            }
            let dependentsGone = waiting.allSatisfy { dependent in
                retirementIssued.contains(dependent) && !slots.contains { $0.groupIndex == dependent && $0.state.hasProcess }
            }
            guard dependentsGone else { continue }
            retirementIssued.insert(groupIndex)
            for index in slots.indices where slots[index].groupIndex == groupIndex {
                actions += stop(index, reason: .stopped, at: now)
            }
        }
        return actions
    }
}

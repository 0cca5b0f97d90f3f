// Rolling restarts move on from the slots' states alone: after every input the core looks at
// each roll's slots and takes every step they allow. No timer of their own: the start and stop
// timeouts of the slots end a replacement that hangs, and that ends the roll.
extension WatcherCore {
    /// Whether `id` is a replacement a roll is starting: a scale-down must not take it.
    func isRollSpare(_ id: WorkerID) -> Bool {
        rolls.values.contains { roll in
            if case .startingSpare(let spare, _, _) = roll.phase { return spare == id }
            return false
        }
    }

    mutating func beginRoll(_ groupID: GroupID, reply: ReplyToken?) -> [WatcherAction] {
        let group = pool.group(groupID)!
        // Workers already on their way out are replaced (or not) by whatever stopped them.
        let running = slots.filter { group.owns($0.id) && ($0.state == .starting || $0.state == .ready) && $0.isDesired }
        rolls[groupID] = RollingRestart(
            group: groupID, reply: reply, running: running.map { .init(id: $0.id, generation: $0.generation) })
        // The first step is taken by `advanceRolls` at the end of this input.
        return [.emit(.groupRolling(group: group.name, .started(workers: running.count)))]
    }

    /// Takes every step the slots allow, for every roll.
    mutating func advanceRolls(at now: PoolInstant) -> [WatcherAction] {
        guard !rolls.isEmpty else { return [] }
        if mode != .running {
            return endRolls(code: .notRunning, why: "the pool is \(mode == .restarting ? "restarting" : "stopping")", at: now)
        }
        var actions: [WatcherAction] = []
        for groupID in rolls.keys.sorted() {
            while var roll = rolls[groupID] {
                let before = roll
                let (outcome, more) = step(&roll, at: now)
                actions += more
                switch outcome {
                case .wait:
                    rolls[groupID] = roll
                case .moved:
                    rolls[groupID] = roll
                    precondition(roll != before, "a roll step that moved must change the roll")
                    continue
                case .finished:
                    rolls[groupID] = nil
                    actions.append(.emit(.groupRolling(group: groupName(of: groupID), .finished(replaced: roll.replaced))))
                    if let reply = roll.reply { actions.append(.reply(reply, .success(roll.replaced))) }
                case .failed(let why):
                    rolls[groupID] = nil
                    actions += fail(roll, code: .failed, why: why, at: now)
                }
                break
            }
        }
        return actions
    }

    /// Ends every roll with a failure (the pool stops or restarts).
    mutating func endRolls(code: CommandError.Code, why: String, at now: PoolInstant) -> [WatcherAction] {
        rolls.keys.sorted().flatMap { endRoll($0, code: code, why: why, at: now) }
    }

    /// Ends the roll of a group, if one runs, with a failure.
    mutating func endRoll(_ groupID: GroupID, code: CommandError.Code, why: String, at now: PoolInstant) -> [WatcherAction] {
        guard let roll = rolls.removeValue(forKey: groupID) else { return [] }
        return fail(roll, code: code, why: why, at: now)
    }

    private enum StepOutcome {
        case wait
        case moved
        case finished
        case failed(String)
    }

    private mutating func step(_ roll: inout RollingRestart, at now: PoolInstant) -> (StepOutcome, [WatcherAction]) {
        switch roll.phase {
        case .next:
            // A process that already left (stopped, scaled down, crashed and replaced) needs no replacing.
            while let process = roll.pending.first {
                roll.pending.removeFirst()
                let index = process.id.rawValue - 1
                let slot = slots[index]
                guard slot.generation == process.generation, slot.isDesired, slot.state == .starting || slot.state == .ready
                else { continue }
                let group = pool.groups[slot.groupIndex]
                if let spare = slots.firstIndex(where: { group.owns($0.id) && !$0.isDesired && $0.state == .stopped }) {
                    slots[spare].isDesired = true
                    slots[spare].rapidExits = 0
                    slots[spare].restartTimes = []
                    let actions = spawn(spare, at: now)
                    roll.phase = .startingSpare(spare: slots[spare].id, generation: slots[spare].generation, replacing: process.id)
                    return (.moved, actions)
                }
                // The slot stays wanted, so its exit starts the replacement at once.
                roll.phase = .restartingInPlace(process.id, after: process.generation)
                return (.moved, stop(index, reason: .restart, at: now))
            }
            return (.finished, [])

        case .startingSpare(let spare, let generation, let replacing):
            let slot = slots[spare.rawValue - 1]
            if slot.generation == generation && slot.state == .starting { return (.wait, []) }
            guard slot.generation == generation, slot.state == .ready, slot.isDesired else {
                return (
                    .failed("the replacement for worker \(replacing) in slot \(spare) did not start (\(slot.state.rawValue))"),
                    []
                )
            }
            // The replacement serves: the worker it replaces is no longer wanted and leaves.
            let index = replacing.rawValue - 1
            let old = slots[index]
            var actions: [WatcherAction] = []
            if old.isDesired {
                slots[index].isDesired = false
                actions += stop(index, reason: .restart, at: now)
            }
            if slots[index].state.hasProcess {
                roll.phase = .retiring(replacing, generation: slots[index].generation, replacement: spare)
                return (.moved, actions)
            }
            return (.moved, actions + replaced(&roll, replacing, by: spare))

        case .retiring(let id, let generation, let replacement):
            let slot = slots[id.rawValue - 1]
            // One extra worker at a time: the next replacement starts once this one has left.
            if slot.generation == generation && slot.state.hasProcess { return (.wait, []) }
            return (.moved, replaced(&roll, id, by: replacement))

        case .restartingInPlace(let id, let generation):
            let slot = slots[id.rawValue - 1]
            if slot.state == .ready && slot.generation > generation { return (.moved, replaced(&roll, id, by: id)) }
            if slot.state == .starting || slot.state == .stopping { return (.wait, []) }
            if slot.state == .stopped && !slot.isDesired {
                // An operator stopped it meanwhile: nothing to replace.
                roll.phase = .next
                return (.moved, [])
            }
            return (.failed("the replacement of worker \(id) did not start (\(slot.state.rawValue))"), [])
        }
    }

    private mutating func replaced(_ roll: inout RollingRestart, _ id: WorkerID, by replacement: WorkerID) -> [WatcherAction] {
        roll.replaced += 1
        roll.phase = .next
        return [
            .emit(
                .groupRolling(
                    group: groupName(of: roll.group), .replaced(id, by: replacement, done: roll.replaced, of: roll.total)))
        ]
    }

    /// Answers a roll that stopped; a replacement it was starting is given back as a spare.
    private mutating func fail(_ roll: RollingRestart, code: CommandError.Code, why: String, at now: PoolInstant) -> [WatcherAction] {
        var actions: [WatcherAction] = []
        if case .startingSpare(let spare, _, _) = roll.phase, mode == .running {
            let index = spare.rawValue - 1
            if slots[index].isDesired {
                slots[index].isDesired = false
                actions += stop(index, reason: .stopped, at: now)
            }
        }
        let name = groupName(of: roll.group)
        let message =
            "rolling restart of '\(name)' stopped after \(roll.replaced) of \(roll.total): \(why); the rest were left running"
        actions.append(.emit(.groupRolling(group: name, .failed(replaced: roll.replaced, of: roll.total, why: why))))
        if let reply = roll.reply { actions.append(.reply(reply, .failure(CommandError(code, message)))) }
        return actions
    }

    private func groupName(of groupID: GroupID) -> String { pool.group(groupID)?.name ?? "\(groupID)" }
}

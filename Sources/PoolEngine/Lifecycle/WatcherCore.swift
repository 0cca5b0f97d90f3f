/// The watcher's decisions, pure: events and the time in, actions out. No clock reads,
/// no syscalls, so every transition is tested with a manual clock.
/// The states and transitions are drawn in `docs/worker-lifecycle.md`.
struct WatcherCore: Sendable {
    enum Mode: Hashable, Sendable {
        case idle
        case running
        /// A hard restart: every worker stops, then every slot that should run starts again.
        case restarting
        case stopping
        case finished
    }

    /// Changed only by `apply` (``PoolChange``).
    var pool: PoolDescription
    /// Written only by the core and its extensions (commands, rolling restarts).
    var slots: [WorkerSlot]
    /// Set by the core and its extensions only.
    var mode: Mode = .idle
    private(set) var hardRestarts = 0
    /// When each group last grew on request, for the rate limit and the shrink back to min.
    private(set) var lastScaleUp: [GroupID: PoolInstant] = [:]
    /// Workers each group gained on demand and has not shed since; only these shrink when idle.
    var onDemandExtra: [GroupID: Int] = [:]
    /// Scaling by request adds at most one worker per group this often.
    static let scaleUpInterval: Duration = .milliseconds(200)
    private(set) var softRestarts = 0
    /// Scale operations that changed each group's desired count, by group index.
    var scalingEvents: [Int]
    /// The failure the pool ends with, once there is one.
    var failure: PoolFailure?
    /// Rolling restarts under way, one per group at most.
    var rolls: [GroupID: RollingRestart] = [:]
    /// Groups (by index) waiting for the groups they name in `after`; none of their workers runs.
    var held: Set<Int> = []
    /// Held groups whose dependency can no longer be met (they will not start).
    var blocked: Set<Int> = []
    /// While stopping: the groups asked to stop (in reverse start order).
    var stopIssued: Set<Int> = []
    /// Groups `apply` removed whose workers were asked to stop (once the groups that waited
    /// for them had stopped).
    var retirementIssued: Set<Int> = []
    /// Workers with work in flight at the last sample: a scale-down stops them last.
    var busy: Set<WorkerID> = []
    /// Standby processes (groups with `standby: true`), alive or being killed.
    var standbys: [StandbyProcess] = []
    /// The last standby generation handed out.
    var standbyGenerations = 0
    /// Groups whose last standby died on its own: none again until one of their workers is ready.
    var standbyPaused: Set<Int> = []
    /// Whether a fork server's children can be watched like spawned ones: the kernel gives their
    /// exit status through a pidfd to a watcher that is not their parent (Linux 6.15 on). The
    /// loop sets it; the core never looks at the system.
    var canFork = false
    /// Recycle quotas and idle shrinking, decided from the samples.
    private var quotas = QuotaTracker()
    /// Where the quotas' per-process jitter factors come from.
    private var jitter: JitterSource

    /// How long after a control channel closes a still-running process is killed.
    static let lostChannelGrace: Duration = .seconds(1)

    /// - Parameter jitter: the source of recycle quotas' jitter; tests fix it, the loop seeds it.
    init(pool: PoolDescription, jitter: JitterSource = .fixed(0.5)) {
        self.pool = pool
        self.jitter = jitter
        var slots: [WorkerSlot] = []
        for (index, group) in pool.groups.enumerated() {
            for id in group.workerIDs { slots.append(WorkerSlot(id: id, groupIndex: index)) }
        }
        self.slots = slots
        scalingEvents = Array(repeating: 0, count: pool.groups.count)
    }

    func slot(_ id: WorkerID) -> WorkerSlot? {
        let index = id.rawValue - 1
        return slots.indices.contains(index) ? slots[index] : nil
    }

    /// The earliest deadline the loop must wake up for, if any.
    var nextDeadline: PoolInstant? {
        // Asked after every turn of the loop: no array per slot, only comparisons.
        var earliest: PoolInstant?
        func consider(_ deadline: PoolInstant?) {
            if let deadline, earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
        }
        for slot in slots {
            consider(slot.killAt)
            consider(slot.backoffUntil)
            consider(slot.watchdogAt)
            // Only a ready worker is checked for a hang (a stopping one has its stop timeout).
            if slot.state == .ready && !slot.hung { consider(slot.hangAt) }
        }
        return earliest
    }

    /// Desired workers per group, in group order.
    func desiredCount(_ group: GroupID) -> Int {
        slots.filter { pool.groups[$0.groupIndex].id == group && $0.isDesired }.count
    }

    mutating func handle(_ input: WatcherInput, at now: PoolInstant) -> [WatcherAction] {
        var actions: [WatcherAction] = []
        switch input {
        case .poolDidStart:
            guard mode == .idle else { return [] }
            mode = .running
            actions += holdDependentGroups()
            for groupIndex in pool.groups.indices where !held.contains(groupIndex) {
                actions += startGroup(groupIndex, at: now)
            }
        case .processDidSpawn(let id, let generation, let pid):
            guard let index = current(id, generation) else { return [] }
            slots[index].pid = pid
            actions.append(
                .emit(.workerStarting(id, group: groupName(index), pid: pid, generation: generation)))
        case .spawnDidFail(let id, let generation, _) where id.standbyGeneration != nil:
            standbyEnded(generation)
        case .spawnDidFail(let id, let generation, let error):
            guard let index = current(id, generation) else { return [] }
            actions.append(.emit(.workerSpawnFailed(id, group: groupName(index), error: error)))
            slots[index].report = .crash(error)
            actions += exited(index, status: nil, at: now)
        case .workerDidBecomeReady(let id, let generation):
            guard let index = current(id, generation) else { return [] }
            actions += becomeReady(index, at: now)
        case .workerDidReport(let id, let generation, let report):
            guard let index = current(id, generation) else { return [] }
            slots[index].report = report
        case .channelDidClose(let id, let generation):
            guard let index = current(id, generation), slots[index].state.hasProcess,
                slots[index].killedBecause == nil
            else { return [] }
            // The process usually exits right after closing its channel; kill it only if it lingers.
            let deadline = now + Self.lostChannelGrace
            if slots[index].killAt == nil || deadline < slots[index].killAt! {
                slots[index].killAt = deadline
                slots[index].killWhy = "its control channel closed and it did not exit"
            }
        case .processDidExit(let id, let generation, _) where id.standbyGeneration != nil:
            standbyEnded(generation)
        case .processDidExit(let id, let generation, let status):
            guard let index = current(id, generation), slots[index].state.hasProcess else { return [] }
            actions += exited(index, status: status, at: now)
        case .clockDidAdvance:
            for index in slots.indices {
                if let killAt = slots[index].killAt, killAt <= now, slots[index].state.hasProcess {
                    slots[index].killAt = nil
                    let why = slots[index].killWhy ?? "deadline passed"
                    slots[index].killedBecause = why
                    actions.append(.emit(.workerKilled(slots[index].id, group: groupName(index), pid: slots[index].pid, why: why)))
                    actions.append(.kill(slots[index].id, generation: slots[index].generation))
                }
                if let due = slots[index].watchdogAt, due <= now, slots[index].state == .ready {
                    actions += hang(index, why: "hung: no WATCHDOG=1 within its watchdog, \(DurationParser.format(watchdog(index) ?? .zero))", at: now)
                }
                if let until = slots[index].backoffUntil, until <= now, slots[index].state == .backoff {
                    slots[index].backoffUntil = nil
                    if mode == .running && slots[index].isDesired {
                        slots[index].restarts += 1
                        actions += spawn(index, at: now)
                    } else {
                        slots[index].state = .stopped
                    }
                }
            }
        case .stopRequested(let reason):
            switch mode {
            case .finished:
                return []
            case .stopping:
                // A second request: do not wait for the stop timeout, nor for a fork server
                // told to go to see its children out (one stopped under a debugger never would).
                for index in slots.indices where slots[index].state.hasProcess {
                    slots[index].killAt = now
                    slots[index].killWhy = "a second stop request does not wait"
                }
                let forkServers = standbys.filter(\.forkServer).map { WatcherAction.kill(.standby($0.generation), generation: $0.generation) }
                return forkServers + handle(.clockDidAdvance, at: now)
            case .idle, .running, .restarting:
                mode = .stopping
                actions.append(.emit(.poolStopping(reason: reason)))
                // Dependents first: `stopInOrder` (after this switch) asks each group once the
                // groups that waited for it have stopped; held groups have nothing to stop.
                stopIssued = []
            }
        case .restartRequested(let hard):
            guard mode == .running else { return [] }
            actions.append(.emit(.poolRestarting(hard: hard)))
            if hard {
                hardRestarts += 1
                mode = .restarting
                // Everything stops; then the start order applies again.
                actions += holdDependentGroups()
                for index in slots.indices {
                    // Slots given up on get another chance; those that terminated themselves stay
                    // stopped, and so do those of groups `apply` removed.
                    slots[index].restartsAfterHardRestart =
                        (slots[index].isDesired || slots[index].state == .failed) && !pool.groups[slots[index].groupIndex].retired
                    if slots[index].state == .failed { slots[index].state = .stopped }
                    actions += stop(index, reason: .restart, at: now)
                }
            } else {
                softRestarts += 1
                actions += discardStandbys(ofGroup: nil)
                // Every worker is being replaced anyway; a roll would only replace them again.
                actions += endRolls(code: .failed, why: "a soft restart of the pool replaced every worker", at: now)
                for index in slots.indices where slots[index].state == .starting || slots[index].state == .ready {
                    actions += stop(index, reason: .restart, at: now)
                }
            }
        case .command(let command, let reply):
            actions += handle(command, reply: reply, at: now)
        case .workersSampled(let samples):
            busy = Set(samples.filter { $0.value.isBusy }.keys)
            var tracker = quotas
            var source = jitter
            let inputs = tracker.evaluate(self, samples: samples, at: now) { source.next() }
            quotas = tracker
            jitter = source
            for input in inputs { actions += handle(input, at: now) }
        case .workerRecycleRequested(let id, let generation, let quota):
            guard mode == .running, let index = current(id, generation), slots[index].state == .ready else { return [] }
            actions += stop(index, reason: .quota, at: now)
            slots[index].stopMessage = "recycled: \(quota)"
        case .scaleUpRequested(let groupID):
            guard mode == .running, let group = pool.group(groupID),
                let groupIndex = pool.groups.firstIndex(where: { $0.id == groupID }), !held.contains(groupIndex)
            else { return [] }
            if let last = lastScaleUp[groupID], now.duration(since: last) < Self.scaleUpInterval { return [] }
            let desired = desiredCount(groupID)
            guard desired < group.maxWorkers else { return [] }
            lastScaleUp[groupID] = now
            onDemandExtra[groupID, default: 0] += 1
            actions += scale(groupID, to: desired + 1, at: now)
        case .shrinkRequested(let groupID):
            // A roll's spare counts as one of the group's while it starts: shrink once the roll is over.
            guard mode == .running, let group = pool.group(groupID), onDemandExtra[groupID, default: 0] > 0,
                rolls[groupID] == nil
            else { return [] }
            onDemandExtra[groupID, default: 0] -= 1
            let desired = desiredCount(groupID)
            guard desired > group.minWorkers else { return [] }
            actions += scale(groupID, to: desired - 1, at: now)
        case .programDidExec, .programDidNotify, .probeDidSucceed, .probeDidFail:
            actions += handle(program: input, at: now)
        case .heartbeatsRead(let heartbeats):
            actions += handle(heartbeats: heartbeats, at: now)
        case .backtraceCaptured(let id, let generation, let text):
            actions += backtraceCaptured(id, generation: generation, text)
        }
        actions += advanceRolls(at: now)
        actions += releaseHeldGroups(at: now)
        actions += stopInOrder(at: now)
        actions += retireInOrder(at: now)
        actions += keepStandbys()
        actions += settle(at: now)
        return actions
    }

    // MARK: - Transitions

    func current(_ id: WorkerID, _ generation: Int) -> Int? {
        let index = id.rawValue - 1
        guard slots.indices.contains(index), slots[index].generation == generation else { return nil }
        return index
    }

    func groupName(_ index: Int) -> String { pool.groups[slots[index].groupIndex].name }

    mutating func spawn(_ index: Int, at now: PoolInstant) -> [WatcherAction] {
        slots[index].generation += 1
        slots[index].state = .starting
        slots[index].pid = 0
        slots[index].startedAt = now
        if slots[index].firstStartedAt == nil { slots[index].firstStartedAt = now }
        slots[index].readyAt = nil
        slots[index].stopReason = nil
        slots[index].stopMessage = nil
        slots[index].report = nil
        slots[index].killedBecause = nil
        slots[index].watchdogAt = nil
        slots[index].hangAt = nil
        slots[index].hung = false
        slots[index].backoffUntil = nil
        slots[index].killAt = now + pool.groups[slots[index].groupIndex].startTimeout
        slots[index].killWhy = "it did not become ready within its start timeout"
        return [startProcess(index)]
    }

    /// SIGKILLs the slot's process now, recording why.
    mutating func killNow(_ index: Int, why: String) -> [WatcherAction] {
        slots[index].killAt = nil
        slots[index].watchdogAt = nil
        slots[index].killedBecause = why
        return [
            .emit(.workerKilled(slots[index].id, group: groupName(index), pid: slots[index].pid, why: why)),
            .kill(slots[index].id, generation: slots[index].generation),
        ]
    }

    mutating func stop(_ index: Int, reason: ExitReason, at now: PoolInstant, hard: Bool = false) -> [WatcherAction] {
        switch slots[index].state {
        case .starting where hard, .ready where hard:
            slots[index].state = .stopping
            slots[index].stopReason = reason
            return [.emit(.workerStopRequested(slots[index].id, group: groupName(index), reason: reason))]
                + killNow(index, why: "a hard \(reason.rawValue) does not wait")
        case .starting, .ready:
            let timeout = pool.groups[slots[index].groupIndex].stopTimeout
            slots[index].state = .stopping
            slots[index].stopReason = reason
            slots[index].killAt = now + timeout
            slots[index].killWhy = "it did not stop within \(timeout)"
            let request = StopRequest(reason: reason, timeout: timeout)
            return [
                .emit(.workerStopRequested(slots[index].id, group: groupName(index), reason: reason)),
                .requestStop(slots[index].id, generation: slots[index].generation, request),
            ]
        case .stopping:
            // Already on its way out; a shutdown outranks a restart or a scale-down.
            if reason == .shutdown { slots[index].stopReason = .shutdown }
            return []
        case .backoff:
            slots[index].state = .stopped
            slots[index].backoffUntil = nil
            return []
        case .stopped, .finished, .failed:
            return []
        }
    }

    mutating func scale(_ groupID: GroupID, to target: Int, at now: PoolInstant) -> [WatcherAction] {
        // Commands were checked already; growth on demand and shrinking stay within min...max.
        guard let group = pool.group(groupID), (group.minWorkers...group.maxWorkers).contains(target) else { return [] }
        let indices = slots.indices.filter { pool.groups[slots[$0].groupIndex].id == groupID }
        let current = indices.filter { slots[$0].isDesired }.count
        var actions: [WatcherAction] = []
        if target > current {
            var missing = target - current
            // Lowest ids first; a slot that terminated itself stays out until it is restarted by hand.
            for index in indices where missing > 0 && !slots[index].isDesired && slots[index].state != .finished {
                if slots[index].state == .stopping { continue }
                slots[index].isDesired = true
                missing -= 1
                if slots[index].state == .stopped || slots[index].state == .failed {
                    actions += spawn(index, at: now)
                }
            }
        } else if target < current {
            var surplus = current - target
            // Remove workers that are not serving first (backing off, then starting), then idle ready
            // ones, then busy ones (they finish their work first), highest id first within each.
            let order: [(WorkerState, Bool)] = [
                (.backoff, false), (.failed, false), (.stopped, false), (.starting, false), (.ready, false), (.ready, true),
            ]
            for (state, isBusy) in order {
                for index in indices.reversed()
                where surplus > 0 && slots[index].isDesired && slots[index].state == state
                    && busy.contains(slots[index].id) == isBusy && !isRollSpare(slots[index].id)
                {
                    slots[index].isDesired = false
                    surplus -= 1
                    actions += stop(index, reason: .scaleDown, at: now)
                }
            }
        }
        let now = indices.filter { slots[$0].isDesired }.count
        if now != current {
            if let groupIndex = pool.groups.firstIndex(where: { $0.id == groupID }) { scalingEvents[groupIndex] += 1 }
            actions.insert(.emit(.groupScaled(group: group.name, from: current, to: now)), at: 0)
        }
        return actions
    }

    /// Moves the pool on once its workers have settled: ends a hard restart, or finishes.
    private mutating func settle(at now: PoolInstant) -> [WatcherAction] {
        // A standby is a process too: the pool ends once it has been reaped.
        let anyActive = slots.contains { $0.state.hasProcess || $0.state == .backoff } || !standbys.isEmpty
        switch mode {
        case .restarting:
            guard !slots.contains(where: { $0.state.hasProcess }) else { return [] }
            mode = .running
            var actions: [WatcherAction] = []
            // A held group's slots keep their mark; they start when it is released.
            for groupIndex in pool.groups.indices where !held.contains(groupIndex) {
                actions += startGroup(groupIndex, at: now, revivingOnly: true)
            }
            actions += releaseHeldGroups(at: now)
            return actions + (actions.isEmpty ? settle(at: now) : [])
        case .stopping:
            guard !anyActive else { return [] }
            mode = .finished
            return endRolls(code: .notRunning, why: "the pool stopped", at: now) + [.finish(failure)]
        case .running:
            guard !anyActive else { return [] }
            mode = .finished
            let failed = slots.filter { $0.state == .failed }
            if failure == nil, !held.isEmpty {
                let waiting = held.sorted().map { "'\(pool.groups[$0].name)' (waiting for \(waitDescription($0)))" }
                failure = PoolFailure(
                    code: .workersFailed,
                    message: "every worker stopped and group(s) \(waiting.joined(separator: ", ")) never started",
                    worker: nil, group: nil)
            }
            if failure == nil, !failed.isEmpty {
                let ids = failed.map { "\($0.id)" }.joined(separator: ", ")
                failure = PoolFailure(
                    code: .workersFailed,
                    message: "every worker stopped and the pool gave up on worker(s) \(ids)",
                    worker: nil, group: nil)
            }
            return endRolls(code: .notRunning, why: "the pool stopped", at: now) + [.finish(failure)]
        case .idle, .finished:
            return []
        }
    }
}

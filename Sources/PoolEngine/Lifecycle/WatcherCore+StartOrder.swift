// Start order between groups (`after:`): a group waits, with no worker started, until every
// group it names has reached its condition; the pool stops in the reverse order. Decided from
// the slots' states after every input, like rolling restarts: no timer of its own.
extension WatcherCore {
    /// How a dependency stands.
    enum DependencyState: Equatable {
        case met
        case pending
        /// It can no longer be met (a one-shot group that did not exit 0).
        case failed(String)
    }

    /// Holds every group that waits for others (at start, and again after a hard restart).
    mutating func holdDependentGroups() -> [WatcherAction] {
        var actions: [WatcherAction] = []
        held = []
        blocked = []
        for (index, group) in pool.groups.enumerated() where !group.after.isEmpty && !group.retired {
            held.insert(index)
            actions.append(.emit(.groupWaiting(group: group.name, for: waitDescription(index))))
        }
        return actions
    }

    /// Starts every held group whose dependencies are met.
    mutating func releaseHeldGroups(at now: PoolInstant) -> [WatcherAction] {
        guard mode == .running, !held.isEmpty else { return [] }
        var actions: [WatcherAction] = []
        var progressed = true
        // One release can meet another group's `started` condition at once.
        while progressed {
            progressed = false
            for index in held.sorted() {
                let states = pool.groups[index].after.map { dependencyState($0) }
                if let failure = states.compactMap({ if case .failed(let why) = $0 { why } else { nil } }).first {
                    if blocked.insert(index).inserted {
                        actions.append(.emit(.groupWaiting(group: pool.groups[index].name, for: "nothing more: \(failure); it will not start")))
                    }
                    continue
                }
                guard states.allSatisfy({ $0 == .met }) else { continue }
                held.remove(index)
                actions += startGroup(index, at: now)
                progressed = true
            }
        }
        return actions
    }

    /// The fewest workers a group must start at once for its fork server to start ahead of them
    /// (decision 0028 measured 2 and 4).
    static let forkAheadMinimum = 4

    /// Starts a group: the slots a hard restart stopped (each one a restart), else, unless
    /// `revivingOnly`, its minimum (the lowest ids of its block).
    mutating func startGroup(_ groupIndex: Int, at now: PoolInstant, revivingOnly: Bool = false) -> [WatcherAction] {
        let indices = slots.indices.filter { slots[$0].groupIndex == groupIndex }
        let revived = indices.filter { slots[$0].restartsAfterHardRestart }
        if revived.isEmpty && revivingOnly { return [] }
        let starting = revived.isEmpty ? Array(indices.prefix(pool.groups[groupIndex].minWorkers)) : revived
        // A group that starts 4 workers or more starts its fork server first and forks all but
        // its first worker, which is spawned beside the starting fork server rather than waiting
        // for it (decision 0028). Fewer are spawned, as the fork server would cost more than it
        // saves; it comes once one of them is ready.
        var actions = starting.count >= Self.forkAheadMinimum ? startForkServerAhead(groupIndex) : []
        for index in starting {
            if slots[index].restartsAfterHardRestart { slots[index].restarts += 1 }
            slots[index].restartsAfterHardRestart = false
            slots[index].isDesired = true
            slots[index].rapidExits = 0
            var started = spawn(index, at: now)
            if index == starting.first, case .forkWorker(let id, let generation, _)? = started.first {
                started = [.spawn(id, generation: generation)]
            }
            actions += started
        }
        return actions
    }

    func dependencyState(_ dependency: ResolvedDependency) -> DependencyState {
        guard let groupIndex = pool.groups.firstIndex(where: { $0.id == dependency.group }) else { return .met }
        if held.contains(groupIndex) { return .pending }
        let group = pool.groups[groupIndex]
        let members = slots.filter { $0.groupIndex == groupIndex }
        switch dependency.condition {
        case .started:
            let started = members.filter { $0.state != .stopped || $0.exitedAt != nil }.count
            return started >= group.minWorkers ? .met : .pending
        case .ready:
            return members.filter { $0.state == .ready }.count >= group.minWorkers ? .met : .pending
        case .completed:
            if members.contains(where: { $0.state.hasProcess || $0.state == .backoff }) { return .pending }
            let ran = members.filter { $0.lastExit != nil }
            if ran.count < group.minWorkers { return .pending }
            if let bad = ran.first(where: { ![.cleanExit, .terminate].contains($0.lastExit?.reason) }) {
                return .failed("group '\(group.name)' did not complete: worker \(bad.id) exited \(bad.lastExit?.reason.rawValue ?? "?")")
            }
            return .met
        }
    }

    /// What a held group waits for, for events and `status`: `cache (ready), migrate (completed)`.
    func waitDescription(_ groupIndex: Int) -> String {
        pool.groups[groupIndex].after.compactMap { dependency in
            pool.group(dependency.group).map { "\($0.name) (\(dependency.condition.rawValue))" }
        }.joined(separator: ", ")
    }

    /// The dependency a held group still waits for, if it waits.
    func waitingFor(_ groupIndex: Int) -> ResolvedDependency? {
        guard held.contains(groupIndex) else { return nil }
        return pool.groups[groupIndex].after.first { dependencyState($0) != .met }
    }

    /// The pool stops in reverse start order: a group is asked to stop once every group that
    /// waited for it has stopped.
    mutating func stopInOrder(at now: PoolInstant) -> [WatcherAction] {
        guard mode == .stopping else { return [] }
        var actions: [WatcherAction] = []
        var progressed = true
        while progressed {
            progressed = false
            for groupIndex in pool.groups.indices where !stopIssued.contains(groupIndex) {
                let id = pool.groups[groupIndex].id
                let dependents = pool.groups.indices.filter { pool.groups[$0].after.contains { $0.group == id } }
                let dependentsDone = dependents.allSatisfy { dependent in
                    stopIssued.contains(dependent)
                        && !slots.contains { $0.groupIndex == dependent && ($0.state.hasProcess || $0.state == .backoff) }
                }
                guard dependentsDone else { continue }
                stopIssued.insert(groupIndex)
                for index in slots.indices where slots[index].groupIndex == groupIndex {
                    actions += stop(index, reason: .shutdown, at: now)
                }
                progressed = true
            }
        }
        return actions
    }
}

/// A process started like a worker of a group with `standby: true`, already past `exec` and the
/// binary's own start, waiting for a bootstrap: the group's next spawn hands it a slot instead
/// of starting a process (decision 0023).
struct StandbyProcess: Hashable, Sendable {
    var groupIndex: Int
    /// A fork server (decision 0028): it stays, and forks a child for each slot it is given,
    /// instead of taking one slot itself.
    var forkServer = false
    /// Unique for the pool's life; the loop knows the process as ``WorkerID/standby(_:)``.
    var generation: Int
    /// Killed because its group no longer wants it: it only waits to be reaped.
    var discarded = false
}

extension WorkerID {
    /// The id under which the loop watches standby process `generation`: negative, so that it
    /// is never a slot's (slot ids start at 1) and every slot lookup of it finds nothing.
    static func standby(_ generation: Int) -> WorkerID { WorkerID(-generation) }

    /// The standby generation this id stands for, if it is a standby's.
    var standbyGeneration: Int? { rawValue < 0 ? -rawValue : nil }
}

extension WatcherCore {
    /// The slot's new process: the group's standby when it has one, else a fork of its fork
    /// server, else a spawn.
    mutating func startProcess(_ index: Int) -> WatcherAction {
        let id = slots[index].id
        let generation = slots[index].generation
        let groupIndex = slots[index].groupIndex
        if wantsStandby(groupIndex, forkServer: false), let standby = liveStandby(ofGroup: groupIndex, forkServer: false) {
            let taken = standbys.remove(at: standby)
            return .promoteStandby(id, generation: generation, standby: taken.generation)
        }
        if wantsStandby(groupIndex, forkServer: true), let server = liveStandby(ofGroup: groupIndex, forkServer: true) {
            return .forkWorker(id, generation: generation, server: standbys[server].generation)
        }
        return .spawn(id, generation: generation)
    }

    /// The index in `standbys` of the group's standby or fork server that was not discarded.
    private func liveStandby(ofGroup groupIndex: Int, forkServer: Bool) -> Int? {
        standbys.firstIndex { $0.groupIndex == groupIndex && $0.forkServer == forkServer && !$0.discarded }
    }

    /// Records a new standby or fork server of the group and asks the loop to start it.
    private mutating func startStandby(ofGroup groupIndex: Int, forkServer: Bool) -> WatcherAction {
        standbyGenerations += 1
        standbys.append(StandbyProcess(groupIndex: groupIndex, forkServer: forkServer, generation: standbyGenerations))
        return .spawnStandby(groupIndex: groupIndex, generation: standbyGenerations, forkServer: forkServer)
    }

    /// A standby or fork server of this group fits what the group is now: it is on, and nothing
    /// is replacing the group's workers (a roll or a restart may be for a new binary or
    /// environment, which a process started earlier would not have). A group with no live slot
    /// (every worker ended for good, or it was scaled to 0) wants neither: a pool whose workers
    /// have all ended must not wait on one; `starting` is for a group about to start its slots.
    func wantsStandby(_ groupIndex: Int, forkServer: Bool, starting: Bool = false) -> Bool {
        let group = pool.groups[groupIndex]
        let asked = forkServer ? group.forkServer && canFork : group.standby
        return asked && !group.retired && group.program == nil && mode == .running && !held.contains(groupIndex)
            && rolls[group.id] == nil && (starting || slots.contains { $0.groupIndex == groupIndex && $0.state.isLive })
    }

    /// Ends the live standby and fork server of the group, or of every group (a restart of
    /// their workers replaces them with new ones); `forkServer` narrows it to one of the two.
    /// The loop kills a standby; a fork server is told to go, and leaves once its children have
    /// (they stay its children, not orphans).
    mutating func discardStandbys(ofGroup groupIndex: Int?, forkServer: Bool? = nil) -> [WatcherAction] {
        var actions: [WatcherAction] = []
        for index in standbys.indices
        where !standbys[index].discarded && (groupIndex == nil || standbys[index].groupIndex == groupIndex)
            && (forkServer == nil || standbys[index].forkServer == forkServer)
        {
            standbys[index].discarded = true
            let generation = standbys[index].generation
            actions.append(.kill(.standby(generation), generation: generation))
        }
        return actions
    }

    /// After every input: discards standbys and fork servers their group no longer wants, and
    /// starts one of each for each group that wants one, has none, and has a ready worker, once
    /// no worker of the pool is starting. Waiting for a ready worker keeps a binary that cannot
    /// start from looping through them; waiting until none starts keeps the new process off the
    /// CPU a worker is starting on (a promoted one, or the pool's others at its start).
    mutating func keepStandbys() -> [WatcherAction] {
        // Most pools keep none: then there is nothing to look at after every input.
        guard !standbys.isEmpty || pool.groups.contains(where: { $0.standby || ($0.forkServer && canFork) }) else { return [] }
        var actions: [WatcherAction] = []
        // Asked only when a group lacks one: this runs after every input of every pool.
        var anyStarting: Bool?
        for groupIndex in pool.groups.indices {
            for forkServer in [false, true] {
                guard wantsStandby(groupIndex, forkServer: forkServer) else {
                    actions += discardStandbys(ofGroup: groupIndex, forkServer: forkServer)
                    continue
                }
                guard !standbyPaused.contains(groupIndex), liveStandby(ofGroup: groupIndex, forkServer: forkServer) == nil else { continue }
                // Ready in the group; starting anywhere: a pool's start is not slowed by the
                // groups' standbys and fork servers starting beside its workers (decision 0028).
                let starting = anyStarting ?? slots.contains { $0.state == .starting }
                anyStarting = starting
                guard !starting, slots.contains(where: { $0.groupIndex == groupIndex && $0.state == .ready }) else { continue }
                actions.append(startStandby(ofGroup: groupIndex, forkServer: forkServer))
            }
        }
        return actions
    }

    /// When a group starts many workers at once (`startGroup`), its fork server comes before
    /// them, and all but the first are its forks: a large group's cold start costs two spawns
    /// and a fork per further worker instead of a spawn each (decision 0028). Not for a group
    /// whose last fork server died on its own: that one waits for a ready worker, as after any
    /// such death, so that a binary that cannot start does not loop through fork servers.
    mutating func startForkServerAhead(_ groupIndex: Int) -> [WatcherAction] {
        guard wantsStandby(groupIndex, forkServer: true, starting: true), !standbyPaused.contains(groupIndex),
            liveStandby(ofGroup: groupIndex, forkServer: true) == nil
        else { return [] }
        return [startStandby(ofGroup: groupIndex, forkServer: true)]
    }

    /// A standby's or fork server's process ended, or could not be started. One that was not
    /// discarded died on its own: its group gets no other until one of its workers is ready again.
    mutating func standbyEnded(_ generation: Int) {
        guard let index = standbys.firstIndex(where: { $0.generation == generation }) else { return }
        let standby = standbys.remove(at: index)
        if !standby.discarded { standbyPaused.insert(standby.groupIndex) }
    }
}

/// What `pooltop apply` does to a running pool: the difference between the running description
/// and the one a file describes, group by group, and what cannot be done live. Pure: made by
/// ``plan(running:candidate:)`` from two descriptions, carried out by the watcher core.
///
/// - `update`: limits and policies (`min`, `max`, `restart`, timeouts, `onUncaughtError`,
///   `scaling`, `recycle`, `after`) take effect at once; a new `min` or `max` scales the group
///   into its range.
/// - `roll`: anything a worker reads when it starts (its entry point or command, environment,
///   working directory, job groups, pickup, job limits…) rolls the group, one worker at a time.
/// - `start`: a new group starts (after the groups it names in `after`).
/// - `stop`: a removed group stops, groups that waited for it first; its slots stay reserved.
///
/// A group's listeners changing rolls it too: each replacement gets sockets for the new set,
/// and sockets no longer listed are closed once the last worker that held them has left.
///
/// Refused, with the pool untouched: a group's `kind` changing, an address another group still
/// serves, a `max` beyond the
/// slots the group was given when it was added, a change of a job group's concurrency that
/// would move its running-jobs tables, and more new groups than shared memory kept room for.
public struct PoolChange: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable, Codable {
        case unchanged
        case update
        case roll
        case start
        case stop
    }

    /// One group's part of the change.
    public struct GroupChange: Sendable, Hashable, Codable {
        public var group: String
        public var action: Action
        /// What differs, one phrase each: `min 2 → 3`, `command changed`.
        public var changes: [String]
        /// The definition hash the group will have (the running one for `unchanged` and `stop`),
        /// as `status` shows it.
        public var definition: String

        init(group: String, action: Action, changes: [String], definition: UInt64) {
            self.group = group
            self.action = action
            self.changes = changes
            self.definition = GroupDescription.formatDefinition(definition)
        }
    }

    public var groups: [GroupChange]
    /// Why the change cannot be applied live, with the key path in the file; empty when it can.
    public var refusals: [ConfigurationError]
    /// The running description the plan was made against: the core refuses the change when
    /// the pool no longer has it (another `apply` came first).
    let base: PoolDescription
    /// The description once applied.
    let next: PoolDescription

    /// One line for logs and the console: `web update (min 2 → 3); api roll (command changed)`.
    public static func summary(_ changes: [GroupChange]) -> String {
        let parts = changes.filter { $0.action != .unchanged }.map { change in
            "\(change.group) \(change.action.rawValue)" + (change.changes.isEmpty ? "" : " (\(change.changes.joined(separator: ", ")))")
        }
        return parts.isEmpty ? "nothing changed" : parts.joined(separator: "; ")
    }

    /// Whether anything would change.
    public var isEmpty: Bool { groups.allSatisfy { $0.action == .unchanged } && base.stopTimeout == next.stopTimeout }

    /// Groups by what happens to them, as the core needs them.
    func groups(_ action: Action) -> [GroupDescription] {
        let names = Set(self.groups.filter { $0.action == action }.map(\.group))
        if action == .stop { return base.activeGroups.filter { names.contains($0.name) } }
        return next.activeGroups.filter { names.contains($0.name) }
    }

    /// The plan for turning `running` into `candidate` (a freshly validated description, whose
    /// ids and slots are its own): groups are matched by name.
    static func plan(running: PoolDescription, candidate: PoolDescription) -> PoolChange {
        var next = running
        next.stopTimeout = candidate.stopTimeout
        var refusals: [ConfigurationError] = []
        var changes: [GroupChange] = []
        // Candidate ids to the ids they have (or get) in the running pool.
        var ids: [GroupID: GroupID] = [:]
        var added: [Int] = []
        for (index, group) in candidate.groups.enumerated() {
            if let existing = running.group(.name(group.name)) {
                ids[group.id] = existing.id
            } else {
                ids[group.id] = GroupID(running.groups.count + added.count + 1)
                added.append(index)
            }
        }
        var addedSlots = 0
        var addedTableBytes = 0
        for (index, group) in candidate.groups.enumerated() {
            let path = "groups[\(index)]"
            var wanted = group
            wanted.id = ids[group.id]!
            wanted.jobGroups = group.jobGroups.map { ids[$0]! }
            wanted.after = group.after.map { ResolvedDependency(group: ids[$0.group]!, condition: $0.condition) }
            guard let existing = running.group(.name(group.name)) else {
                wanted.firstWorkerID = WorkerID(next.slotCount + 1)
                wanted.slots = wanted.maxWorkers
                addedSlots += wanted.slots
                let table = RunningJobsTable.capacity(for: wanted)
                if table > 0 { addedTableBytes += wanted.slots * (RunningJobsTable.headerWords * 8 + table * RunningJobsTable.entryBytes) }
                next.groups.append(wanted)
                changes.append(GroupChange(group: wanted.name, action: .start, changes: ["new group"], definition: wanted.definitionHash))
                continue
            }
            wanted.firstWorkerID = existing.firstWorkerID
            wanted.slots = existing.slots
            refusals += refusalsOfChange(from: existing, to: wanted, path: path)
            let described = describeChange(from: existing, to: wanted)
            next.groups[running.groups.firstIndex { $0.id == existing.id }!] = wanted
            changes.append(described)
        }
        // An address another group serves now cannot be bound until that group lets it go.
        for (index, group) in candidate.groups.enumerated() {
            for (position, listener) in group.listeners.enumerated() {
                guard let owner = running.activeGroups.first(where: { old in
                    old.name != group.name && old.listeners.contains { $0.address == listener.address }
                }) else { continue }
                let removed = candidate.group(.name(owner.name)) == nil
                refusals.append(
                    ConfigurationError(
                        path: "groups[\(index)].listen[\(position)]",
                        message: "\(listener) is still served by group '\(owner.name)', which this change \(removed ? "removes" : "moves it from"); apply that first, then give the address to '\(group.name)'"))
            }
        }
        for group in running.activeGroups where candidate.group(.name(group.name)) == nil {
            let index = running.groups.firstIndex { $0.id == group.id }!
            next.groups[index].retired = true
            next.groups[index].minWorkers = 0
            next.groups[index].maxWorkers = 0
            changes.append(GroupChange(group: group.name, action: .stop, changes: ["removed from the file"], definition: group.definitionHash))
        }
        // The reserve shrinks by what the new groups take: the segment's size stays as it was.
        if added.count > running.reserve.groups {
            refusals.append(
                ConfigurationError(
                    path: "groups[\(added[running.reserve.groups])]",
                    message: "the pool has room for \(running.reserve.groups) more group(s) and this change adds \(added.count); restart the pool to add them"))
        }
        if addedSlots > running.reserve.slots {
            refusals.append(
                ConfigurationError(
                    path: "groups[\(added.last ?? 0)].max",
                    message: "the new groups need \(addedSlots) worker slots and the pool has \(running.reserve.slots) left; restart the pool, or give them a smaller max"))
        }
        if addedTableBytes > running.reserve.runningJobBytes {
            refusals.append(
                ConfigurationError(
                    path: "groups[\(added.last ?? 0)].jobs",
                    message: "the new job groups need \(addedTableBytes) bytes of running-jobs tables and the pool has \(running.reserve.runningJobBytes) left; restart the pool, or lower their max or jobs.maxConcurrent"))
        }
        next.reserve.groups = max(0, running.reserve.groups - added.count)
        next.reserve.slots = max(0, running.reserve.slots - addedSlots)
        next.reserve.runningJobBytes = max(0, running.reserve.runningJobBytes - addedTableBytes)
        return PoolChange(groups: changes, refusals: refusals, base: running, next: next)
    }

    /// What cannot change on a running group.
    private static func refusalsOfChange(from old: GroupDescription, to new: GroupDescription, path: String) -> [ConfigurationError] {
        var refusals: [ConfigurationError] = []
        if old.kind != new.kind {
            refusals.append(
                ConfigurationError(
                    path: "\(path).kind",
                    message: "group '\(old.name)' is a \(old.kind.rawValue) group and cannot become a \(new.kind.rawValue) one while it runs; add it under another name (and remove this one), or restart the pool"))
        }
        for (position, listener) in new.listeners.enumerated() {
            // The kernel keeps one reuseport group per address: old and new sockets of a kept
            // address share it while the group rolls, so they must agree on what they are.
            guard let kept = old.listeners.first(where: { $0.address == listener.address }) else { continue }
            if kept.shared != listener.shared {
                refusals.append(
                    ConfigurationError(
                        path: "\(path).listen[\(position)].shared",
                        message: "\(listener) cannot switch between one shared socket and a socket per worker while it is served; remove the listener in one apply and add it back in the next, or restart the pool"))
            }
            if kept.name != listener.name {
                refusals.append(
                    ConfigurationError(
                        path: "\(path).listen[\(position)].name",
                        message: "\(listener) cannot be renamed ('\(kept.name)' to '\(listener.name)') while it is served; restart the pool, or move it to another address"))
            }
        }
        if new.maxWorkers > old.slots {
            refusals.append(
                ConfigurationError(
                    path: "\(path).max",
                    message: "group '\(old.name)' has \(old.slots) worker slots (its max when it was added); a max of \(new.maxWorkers) needs a restart of the pool"))
        }
        if RunningJobsTable.capacity(for: old) != RunningJobsTable.capacity(for: new) {
            refusals.append(
                ConfigurationError(
                    path: "\(path).jobs.maxConcurrent",
                    message: "a new jobs.maxConcurrent for job group '\(old.name)' resizes its running-jobs tables in shared memory, which senders read while it runs; restart the pool to change it"))
        }
        return refusals
    }

    /// Whether the change is limits and policies only (applied at once) or needs new workers.
    private static func describeChange(from old: GroupDescription, to new: GroupDescription) -> GroupChange {
        var phrases: [String] = []
        func compare<T: Equatable>(_ key: String, _ path: KeyPath<GroupDescription, T>, show: Bool = false) {
            guard old[keyPath: path] != new[keyPath: path] else { return }
            phrases.append(show ? "\(key) \(old[keyPath: path]) → \(new[keyPath: path])" : "\(key) changed")
        }
        compare("min", \.minWorkers, show: true)
        compare("max", \.maxWorkers, show: true)
        compare("restart", \.restart)
        compare("stopTimeout", \.stopTimeout, show: true)
        compare("startTimeout", \.startTimeout, show: true)
        compare("onUncaughtError", \.onUncaughtError)
        compare("scaling", \.scaling)
        compare("recycle", \.recycle)
        compare("after", \.after)
        compare("standby", \.standby, show: true)
        compare("forkServer", \.forkServer, show: true)
        // Every other field is read by a worker when it starts: only new workers see a change.
        var liveOnly = old
        liveOnly.minWorkers = new.minWorkers
        liveOnly.maxWorkers = new.maxWorkers
        liveOnly.restart = new.restart
        liveOnly.stopTimeout = new.stopTimeout
        liveOnly.startTimeout = new.startTimeout
        liveOnly.onUncaughtError = new.onUncaughtError
        liveOnly.scaling = new.scaling
        liveOnly.recycle = new.recycle
        liveOnly.after = new.after
        liveOnly.standby = new.standby
        liveOnly.forkServer = new.forkServer
        let rolls = liveOnly != new
        if rolls {
            let before = phrases.count
            if old.program?.arguments != new.program?.arguments || old.entryPoint != new.entryPoint {
                phrases.append(new.program == nil ? "entryPoint changed" : "command changed")
            }
            if old.runner.environment != new.runner.environment { phrases.append("env changed") }
            if old.program?.environmentFile != new.program?.environmentFile || old.environmentFileDigest != new.environmentFileDigest {
                phrases.append("envFile changed")
            }
            if old.program?.workingDirectory != new.program?.workingDirectory { phrases.append("workingDirectory changed") }
            if old.jobGroups != new.jobGroups { phrases.append("jobGroups changed") }
            if old.listeners != new.listeners { phrases.append("listen changed") }
            if old.settings != new.settings { phrases.append("settings changed") }
            if phrases.count == before { phrases.append("worker settings changed") }
        }
        let action: Action = rolls ? .roll : phrases.isEmpty ? .unchanged : .update
        return GroupChange(group: new.name, action: action, changes: phrases, definition: new.definitionHash)
    }
}

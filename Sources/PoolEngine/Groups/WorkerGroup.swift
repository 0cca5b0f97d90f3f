/// A group of worker processes that share an entry point, a kind, limits and strategies.
///
/// Describe groups before calling ``WorkerPool/run()``; they are frozen from then on.
/// ```swift
/// pool.describeGroup(WorkerGroup(entryPoint: "http", kind: .reactor, minWorkers: 4, jobGroups: ["jobs"]))
/// ```
public struct WorkerGroup: Sendable {
    /// The name the worker's entry point was registered under (see ``EntryPoints``).
    public var entryPoint: String
    public var kind: WorkerKind
    /// Workers started at boot, and the floor for scaling down.
    public var minWorkers: Int
    /// Slots allocated up front, and the ceiling for scaling up; 0 means "the same as `minWorkers`".
    public var maxWorkers: Int
    /// A unique name; empty means derived from the entry point.
    public var name: String
    /// The groups this group may send jobs to, by name or id.
    public var jobGroups: [GroupReference]
    /// How workers are launched (the seed's runner strategy).
    public var runner: WorkerRunner
    /// Whether and when a worker that exits comes back.
    public var restart: RestartStrategy
    /// How long a stopping worker may take before it is killed; nil means the pool's `stopTimeout`.
    public var stopTimeout: Duration?
    /// How long a starting worker may take to become ready before it is killed as a boot failure.
    public var startTimeout: Duration
    /// What an uncaught error from the entry point means.
    public var onUncaughtError: UncaughtErrorPolicy
    public var pickup: (any PickupStrategy)?
    /// Scaling by request and shrinking when idle.
    public var scaling: ScalingPolicy
    /// The job executor's limits; job groups get the defaults when nil.
    public var jobExecutor: JobExecutorConfiguration?
    /// Recycling by quota (the seed's auto-restart strategy).
    public var recycle: RecyclePolicy?
    /// The sockets the group serves (see ``Listener``): amphp-pool's socket strategy, done by the
    /// watcher (`docs/reactors.md`). Reactor and service groups may have them.
    public var listeners: [Listener]
    /// How the group's workers wait for the answers of jobs they send (``JobWaitPolicy``):
    /// `suspend` by default, which never holds a Swift concurrency thread.
    public var jobWait: JobWaitPolicy = .suspend
    /// Groups that must reach a state before this one starts; the pool stops in reverse order.
    public var after: [GroupDependency] = []
    /// A program run instead of an entry point (`entryPoint` is then left empty); service and
    /// reactor groups only.
    public var program: ExternalProgram?
    /// How long a ready Swift worker's heartbeat (advanced by its event loop's thread) may stand
    /// still before the worker counts as hung: its threads' backtraces are captured and it is
    /// killed, exit reason `hang`. Nil turns the check off. A program's hang check is its
    /// ``ExternalProgram/watchdog`` instead.
    public var hangTimeout: Duration? = .seconds(30)
    /// The entry point's own settings (pool.yaml's `settings:`, see ``SettingValue``).
    public var settings: [String: SettingValue] = [:]
    /// Keep one process of the group started ahead, past `exec` and the binary's start, waiting
    /// to take the next slot that needs a process: a crashed or recycled worker's replacement is
    /// then ready in about half the time (decision 0023). Costs one idle process per group.
    /// Entry points of this binary only; a reactor's standby gets its slot's sockets when it
    /// takes the slot.
    public var standby = false
    /// Keep a fork server: one process of the group past `exec` and the binary's start,
    /// single-threaded, that forks a child for each slot that needs a process. It comes once a
    /// worker of the group is ready, or first when the group starts 4 workers or more at once.
    /// A fork skips the loader and the runtime's start, so a replacement is ready in about the
    /// time of a standby's (decision 0028). The children share the fork server's address layout
    /// and Swift's hashing seed; turn it off where that matters. Costs one idle process per
    /// group; ignored for a program (`command:`) and on kernels before Linux 6.15, which cannot
    /// give a watcher the exit status of a process it did not start.
    public var forkServer = true

    public init(
        entryPoint: String,
        kind: WorkerKind,
        minWorkers: Int = 1,
        maxWorkers: Int = 0,
        name: String = "",
        jobGroups: [GroupReference] = [],
        runner: WorkerRunner = .sameExecutable,
        restart: RestartStrategy = .always(),
        stopTimeout: Duration? = nil,
        startTimeout: Duration = .seconds(60),
        onUncaughtError: UncaughtErrorPolicy = .stopPool,
        pickup: (any PickupStrategy)? = nil,
        scaling: ScalingPolicy = .byRequest,
        jobExecutor: JobExecutorConfiguration? = nil,
        recycle: RecyclePolicy? = nil,
        listeners: [Listener] = [],
        jobWait: JobWaitPolicy = .suspend,
        after: [GroupDependency] = []
    ) {
        self.jobWait = jobWait
        self.after = after
        self.entryPoint = entryPoint
        self.kind = kind
        self.minWorkers = minWorkers
        self.maxWorkers = maxWorkers
        self.name = name
        self.jobGroups = jobGroups
        self.runner = runner
        self.restart = restart
        self.stopTimeout = stopTimeout
        self.startTimeout = startTimeout
        self.onUncaughtError = onUncaughtError
        self.pickup = pickup
        self.scaling = scaling
        self.jobExecutor = jobExecutor
        self.recycle = recycle
        self.listeners = listeners
    }
}

/// A frozen group as every process sees it: ids assigned, names resolved, every strategy
/// parameter included. Sent to each worker in its bootstrap message.
public struct GroupDescription: Hashable, Sendable, Codable {
    public var id: GroupID
    public var name: String
    public var kind: WorkerKind
    public var entryPoint: String
    public var minWorkers: Int
    /// The ceiling for scaling; at most ``slots``. `pooltop apply` may change it within them.
    public var maxWorkers: Int
    /// The first slot id of the group; the group owns `firstWorkerID ..< firstWorkerID + slots`.
    public var firstWorkerID: WorkerID
    /// Slots allocated to the group when it was added: its `max` then. Fixed for the group's
    /// life, so that no slot id, shared-memory record or running-jobs table ever moves.
    public var slots: Int
    /// Resolved `jobGroups`.
    public var jobGroups: [GroupID]
    public var runner: WorkerRunner
    public var restart: RestartStrategy
    public var stopTimeout: Duration
    public var startTimeout: Duration
    public var onUncaughtError: UncaughtErrorPolicy
    /// Descriptors of the pluggable strategies, keyed by slot (`pickup`).
    public var strategies: [String: StrategyDescriptor]
    /// The job executor's limits, for groups whose workers run jobs (every job group).
    public var jobExecutor: JobExecutorConfiguration?
    public var scaling: ScalingPolicy
    public var recycle: RecyclePolicy?
    /// The group's listeners, names resolved (`listen0`, `listen1`, … when not given).
    public var listeners: [Listener] = []
    /// How its workers wait for their jobs' answers.
    public var jobWait: JobWaitPolicy = .suspend
    /// Resolved `after`: what must hold before the group starts.
    public var after: [ResolvedDependency] = []
    /// The program its workers run, when not a Swift entry point.
    public var program: ExternalProgram?
    /// How long a ready worker's heartbeat may stand still (nil: not checked; always nil for a
    /// program, whose check is its watchdog).
    public var hangTimeout: Duration?
    /// A digest of the program's envFile entries when the pool read it: an edited file makes
    /// a different definition, which `pooltop apply` rolls.
    public var environmentFileDigest: UInt64?
    /// The entry point's own settings, as checked (``SettingsCheck``).
    public var settings: [String: SettingValue] = [:]
    /// Whether the group keeps a standby process (``WorkerGroup/standby``); only the watcher acts on it.
    public var standby = false
    /// Whether the group's workers are forked from a fork server (``WorkerGroup/forkServer``);
    /// only the watcher acts on it.
    public var forkServer = true
    /// Set when `pooltop apply` removed the group: it runs no worker, keeps its slots (ids
    /// never move), and no name lookup finds it, so a new group may take its name.
    public var retired = false

    /// Every slot id the group owns.
    public var workerIDs: [WorkerID] {
        (0..<slots).map { WorkerID(firstWorkerID.rawValue + $0) }
    }

    /// Whether `id` belongs to this group.
    public func owns(_ id: WorkerID) -> Bool {
        id.rawValue >= firstWorkerID.rawValue && id.rawValue < firstWorkerID.rawValue + slots
    }
}

/// The whole pool as every process sees it.
public struct PoolDescription: Hashable, Sendable, Codable {
    public var name: String
    public var stopTimeout: Duration
    /// Every group, those `pooltop apply` retired included (see ``GroupDescription/retired``):
    /// a group's index here never changes.
    public var groups: [GroupDescription]
    /// Room kept in shared memory for groups `pooltop apply` adds (see ``PoolReserve``).
    public var reserve = PoolReserve()

    /// The group with this id.
    public func group(_ id: GroupID) -> GroupDescription? { groups.first { $0.id == id } }

    /// The group with this name, or with this id when `reference` is an id.
    public func group(_ reference: GroupReference) -> GroupDescription? {
        groupIndex(reference).map { groups[$0] }
    }

    /// Where ``group(_:)-(GroupReference)`` finds the group in ``groups``.
    func groupIndex(_ reference: GroupReference) -> Int? {
        switch reference {
        case .id(let id): return groups.firstIndex { $0.id == id }
        case .name(let name): return groups.firstIndex { $0.name == name && !$0.retired }
        }
    }

    /// The groups that run: every group but those `pooltop apply` removed.
    public var activeGroups: [GroupDescription] { groups.filter { !$0.retired } }

    /// The group that owns this slot.
    public func group(owning id: WorkerID) -> GroupDescription? { groups.first { $0.owns(id) } }

    /// Slots in use: the sum of every group's ``GroupDescription/slots``.
    public var slotCount: Int { groups.reduce(0) { $0 + $1.slots } }

    /// Group records and slot records shared memory has room for: those in use and the reserve.
    public var groupCapacity: Int { groups.count + reserve.groups }
    public var slotCapacity: Int { slotCount + reserve.slots }
}

/// What a pool's shared memory keeps free for groups added while it runs (`pooltop apply`):
/// the segment is created once and never moves, so its size is fixed at start. A group the
/// reserve has no room for is refused by `apply`, naming what is missing.
public struct PoolReserve: Hashable, Sendable, Codable {
    /// Group records kept free.
    public var groups: Int
    /// Worker slots kept free.
    public var slots: Int
    /// Bytes kept free for the running-jobs tables of added job groups' slots.
    public var runningJobBytes: Int

    /// 8 groups and 64 slots, with running-jobs tables for 64 job-worker slots at the default
    /// 16 concurrent jobs: about 100 KiB of shared memory.
    public init(groups: Int = 8, slots: Int = 64, runningJobBytes: Int = 64 * 528) {
        self.groups = groups
        self.slots = slots
        self.runningJobBytes = runningJobBytes
    }
}
